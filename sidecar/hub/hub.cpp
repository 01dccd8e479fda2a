#include "hub/hub.h"

#include <algorithm>
#include <cassert>

namespace comet {

const char* reset_reason_name(ResetReason reason) {
  switch (reason) {
    case ResetReason::kHistoryExpired:
      return "history-expired";
    case ResetReason::kEpochChanged:
      return "epoch-changed";
  }
  return "unknown";
}

Channel& Hub::channel_for(std::string_view name) {
  auto it = channels_.find(std::string(name));
  if (it != channels_.end()) return *it->second;
  auto ch = std::make_unique<Channel>(std::string(name));
  Channel& ref = *ch;
  channels_.emplace(ref.name(), std::move(ch));
  return ref;
}

const Channel* Hub::find(std::string_view name) const {
  auto it = channels_.find(std::string(name));
  return it == channels_.end() ? nullptr : it->second.get();
}

const Channel* Hub::find_trimmed(std::string_view name) {
  auto it = channels_.find(std::string(name));
  if (it == channels_.end()) return nullptr;
  trim_history(*it->second, monotonic_ms());
  return it->second.get();
}

void Hub::trim_history(Channel& ch, int64_t now_ms) {
  while (ch.history_.size() > limits_.history_size) ch.history_.pop_front();
  while (!ch.history_.empty() &&
         now_ms - ch.history_.front()->published_ms > limits_.history_age_ms)
    ch.history_.pop_front();
}

void Hub::subscribe(Subscription& sub, std::string_view channel, const Position* from,
                    bool replay_now) {
  assert(!delivering_ && sub.owner != nullptr && sub.channel == nullptr);
  Channel& ch = channel_for(channel);
  trim_history(ch, monotonic_ms());
  sub.channel = &ch;
  sub.slot = ch.subscribers_.size();
  ch.subscribers_.push_back(&sub);
  ++subscription_count_;
  if (ch.subscribers_.size() == 1 && observer_ != nullptr) observer_->on_first_subscriber(ch.name_);
  sub.awaiting_replay = !replay_now;
  // A cursor ahead of this worker: a message may still be on its way, or the source of
  // truth lost what the client saw (a failover). Only a read of it can tell.
  if (!ch.syncing_ && from != nullptr && observer_ != nullptr && !ch.epoch_.empty() &&
      from->epoch == ch.epoch_ && from->id > ch.last_id_) {
    ch.syncing_ = true;
    if (!observer_->reread(ch.name_)) ch.syncing_ = false;
  }
  if (ch.syncing_) {
    sub.pending = true;
    sub.has_from = from != nullptr;
    sub.position = from != nullptr ? *from : Position{};
    return;
  }
  position_subscriber(sub, from);
  if (replay_now) replay(sub);
}

void Hub::position_subscriber(Subscription& sub, const Position* from) {
  Channel& ch = *sub.channel;
  if (from == nullptr) {
    sub.position = ch.head();
    return;
  }
  sub.position = *from;
  // A cursor taken before the channel had any message ("@.0") continues in whatever
  // epoch the channel has now, provided nothing it should have seen was dropped.
  const bool fresh_cursor = from->epoch.empty() && from->id == 0;
  if (fresh_cursor) sub.position.epoch = ch.epoch_;
  if (ch.epoch_.empty()) {
    // This worker has never seen a message on the channel. A cursor naming an epoch
    // means the client saw messages this process no longer knows about.
    if (!fresh_cursor) {
      sub.position = Position{};
      sub.owner->on_reset(sub, ResetReason::kEpochChanged);
    }
    return;
  }
  if (sub.position.epoch != ch.epoch_) {
    sub.position = Position{ch.epoch_, ch.oldest_id() - 1};
    sub.owner->on_reset(sub, ResetReason::kEpochChanged);
  } else {
    reset_if_expired(sub);
  }
}

void Hub::reset_if_expired(Subscription& sub) {
  const uint64_t oldest = sub.channel->oldest_id();
  // Written as "id < oldest - 1" so a cursor id of UINT64_MAX cannot wrap around.
  if (sub.position.id < oldest - 1) {
    sub.position.id = oldest - 1;
    sub.owner->on_reset(sub, ResetReason::kHistoryExpired);
  }
}

bool Hub::replay(Subscription& sub) {
  assert(!delivering_);
  Channel& ch = *sub.channel;
  if (sub.pending) return true;
  // An owner not ready to take anything (a stream whose response has not started, a
  // congested socket) keeps the subscription waiting even when there is nothing to
  // replay, or live messages would reach it first.
  if (!sub.owner->can_take_more()) {
    sub.awaiting_replay = true;
    return false;
  }
  sub.awaiting_replay = false;
  if (sub.position.epoch != ch.epoch_) return true;
  // History may have moved on since the subscription was positioned (replay_now = false,
  // or a paused replay) while messages arrived: judge the position again.
  reset_if_expired(sub);
  if (sub.position.id >= ch.last_id_) return true;  // up to date, or ahead of this worker
  // History ids increase strictly: find the first message after the position by binary
  // search, so a poll near the head costs O(log n), not a walk over the whole history.
  auto first = std::upper_bound(ch.history_.begin(), ch.history_.end(), sub.position.id,
                                [](uint64_t id, const MessagePtr& m) { return id < m->id; });
  for (auto it = first; it != ch.history_.end(); ++it) {
    const MessagePtr& m = *it;
    if (!sub.owner->can_take_more()) {
      sub.awaiting_replay = true;
      return false;
    }
    sub.position.id = m->id;
    sub.owner->on_message(sub, m);
  }
  return true;
}

void Hub::unsubscribe(Subscription& sub) {
  assert(!delivering_);
  Channel* ch = sub.channel;
  if (ch == nullptr) return;
  auto& subs = ch->subscribers_;
  Subscription* moved = subs.back();
  subs[sub.slot] = moved;
  moved->slot = sub.slot;
  subs.pop_back();
  sub.channel = nullptr;
  sub.pending = false;
  --subscription_count_;
  if (subs.empty() && observer_ != nullptr) observer_->on_last_subscriber(ch->name_);
}

void Hub::start_new_epoch(Channel& ch, const std::string& epoch, uint64_t start_id) {
  // The channel's sequence restarted (embedded bus restarted, or Redis lost its data):
  // old ids mean nothing now, so drop them and tell every subscriber.
  const bool had_epoch = !ch.epoch_.empty();
  ch.epoch_ = epoch;
  ch.last_id_ = start_id;
  ch.history_.clear();
  for (Subscription* sub : ch.subscribers_) {
    if (sub->pending) continue;
    const bool was_fresh = sub->position.epoch.empty() && sub->position.id == 0;
    sub->position = Position{epoch, start_id};
    if (had_epoch || !was_fresh) sub->owner->on_reset(*sub, ResetReason::kEpochChanged);
  }
}

void Hub::publish(const MessagePtr& message) {
  Channel& ch = channel_for(message->channel);
  delivering_ = true;
  if (message->id != 0) {
    if (message->epoch != ch.epoch_) {
      start_new_epoch(ch, message->epoch, 0);
    } else if (message->id <= ch.last_id_) {
      delivering_ = false;
      return;  // already seen (a retry or a gap fill overlapping live delivery)
    }
    ch.last_id_ = message->id;
    ch.history_.push_back(message);
    trim_history(ch, message->published_ms);
  }
  for (Subscription* sub : ch.subscribers_) {
    if (sub->pending || sub->awaiting_replay) {
      // A message waits in history for the replay; a notice is gone for this one.
      if (message->notice) sub->missed_notice = true;
      continue;
    }
    if (message->id != 0) {
      if (message->id <= sub->position.id) continue;  // the client already has it
      sub->position.id = message->id;
    }
    sub->owner->on_message(*sub, message);
  }
  delivering_ = false;
}

void Hub::adopt_head(std::string_view channel, const Position& head) {
  Channel& ch = channel_for(channel);
  if (!ch.epoch_.empty()) return;
  ch.epoch_ = head.epoch;
  ch.last_id_ = head.id;
  // Subscribers that joined before the channel had an epoch start from this head.
  for (Subscription* sub : ch.subscribers_)
    if (!sub->pending && sub->position.epoch.empty() && sub->position.id == 0) sub->position = head;
}

void Hub::begin_sync(std::string_view channel) { channel_for(channel).syncing_ = true; }

void Hub::skip_to(Channel& ch, uint64_t id) {
  // Messages up to `id` exist but are gone from the source of truth too (trimmed):
  // drop what we hold and tell every subscriber that was still waiting for them.
  ch.history_.clear();
  ch.last_id_ = id;
  for (Subscription* sub : ch.subscribers_) {
    if (sub->pending || sub->position.id >= id) continue;
    sub->position = Position{ch.epoch_, id};
    sub->owner->on_reset(*sub, ResetReason::kHistoryExpired);
  }
}

bool Hub::finish_sync(std::string_view channel, const std::string& epoch, uint64_t head_id,
                      const std::vector<MessagePtr>& entries) {
  assert(!delivering_);
  Channel& ch = channel_for(channel);
  if (!epoch.empty() && epoch != ch.epoch_) {
    // The epoch-changed reset tells subscribers they lost continuity; they start at the
    // oldest message Redis holds in the new epoch, not at 0: a fenced epoch goes on from
    // the old sequence (its first id is not 1), and a second reset (history-expired) for
    // ids that never existed in it would say nothing new.
    const uint64_t start = entries.empty() ? head_id : entries.front()->id - 1;
    delivering_ = true;
    start_new_epoch(ch, epoch, start);
    delivering_ = false;
  }
  if (!ch.epoch_.empty()) {
    uint64_t next = ch.last_id_ + 1;
    for (const MessagePtr& m : entries) {
      if (m->id < next) continue;
      if (m->id > next) skip_to(ch, m->id - 1);
      publish(m);
      next = m->id + 1;
    }
    if (head_id > ch.last_id_) skip_to(ch, head_id);
  }
  bool read_again = false;
  for (Subscription* sub : ch.subscribers_) {
    if (sub->pending && sub->has_from && !sub->ahead_seen && !ch.epoch_.empty() &&
        sub->position.epoch == ch.epoch_ && sub->position.id > ch.last_id_) {
      sub->ahead_seen = true;
      read_again = true;
    }
  }
  if (read_again) return true;
  ch.syncing_ = false;
  for (size_t i = 0; i < ch.subscribers_.size(); ++i) {
    Subscription& sub = *ch.subscribers_[i];
    if (!sub.pending) continue;
    sub.pending = false;
    const bool still_ahead = sub.ahead_seen && sub.has_from && sub.position.epoch == ch.epoch_ &&
                             sub.position.id > ch.last_id_;
    sub.ahead_seen = false;
    if (still_ahead) {
      // Ahead of Redis at a read made after it came: Redis lost what this client saw (a
      // failover), or the cursor is made up. This client alone starts again from the
      // head, told so; the channel is not fenced on a client's word.
      sub.position = ch.head();
      sub.owner->on_reset(sub, ResetReason::kEpochChanged);
      sub.owner->on_ready(sub);
      replay(sub);
      continue;
    }
    const Position requested = sub.position;
    position_subscriber(sub, sub.has_from ? &requested : nullptr);
    sub.owner->on_ready(sub);
    replay(sub);
  }
  return false;
}

namespace {

// One message under one id: same text, and the same publish time when both know it.
bool same_message(const Message& a, const Message& b) {
  return a.data == b.data && a.event == b.event &&
         (a.origin_ms == 0 || b.origin_ms == 0 || a.origin_ms == b.origin_ms);
}

}  // namespace

const Message* Channel::message_at(uint64_t id) const {
  auto it = std::lower_bound(history_.begin(), history_.end(), id,
                             [](const MessagePtr& m, uint64_t wanted) { return m->id < wanted; });
  return it != history_.end() && (*it)->id == id ? it->get() : nullptr;
}

bool Hub::contradicted_by(std::string_view channel, const std::string& epoch, uint64_t head_id,
                          const std::vector<MessagePtr>& entries) const {
  const Channel* ch = find(channel);
  if (ch == nullptr || ch->epoch_.empty() || epoch != ch->epoch_) return false;
  if (head_id < ch->last_id_) return true;
  const Message* mine = ch->message_at(ch->last_id_);
  if (mine == nullptr) return false;  // skipped over, or trimmed: nothing to compare
  for (const MessagePtr& theirs : entries) {
    if (theirs->id == mine->id) return !same_message(*mine, *theirs);
  }
  // Not among the entries although the head is past it: trimmed from the stream (this
  // worker was away for longer than the history), which is not a contradiction.
  return false;
}

bool Hub::conflicts(const Message& m) const {
  const Channel* ch = find(m.channel);
  if (ch == nullptr || m.id == 0 || m.epoch != ch->epoch_ || m.id > ch->last_id_) return false;
  const Message* mine = ch->message_at(m.id);
  return mine != nullptr && !same_message(*mine, m);
}

void Hub::fail_pending(std::string_view channel) {
  assert(!delivering_);
  auto it = channels_.find(std::string(channel));
  if (it == channels_.end()) return;
  std::vector<Subscription*> waiting;
  for (Subscription* sub : it->second->subscribers_)
    if (sub->pending) waiting.push_back(sub);
  delivering_ = true;  // owners drop them later, never from inside the call
  for (Subscription* sub : waiting) sub->owner->on_unavailable(*sub);
  delivering_ = false;
}

void Hub::sweep(int64_t now_ms) {
  for (auto it = channels_.begin(); it != channels_.end();) {
    Channel& ch = *it->second;
    trim_history(ch, now_ms);
    if (ch.history_.empty() && ch.subscribers_.empty())
      it = channels_.erase(it);
    else
      ++it;
  }
}

}  // namespace comet
