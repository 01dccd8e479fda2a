#include "presence/presence_registry.h"

#include <rapidjson/document.h>

#include <algorithm>

#include "presence/presence_notices.h"
#include "util/clock.h"
#include "util/prometheus.h"

namespace comet {
namespace {

PresenceEventSink* g_sink = nullptr;

}  // namespace

const char* presence_event_kind_name(PresenceEvent::Kind kind) {
  switch (kind) {
    case PresenceEvent::kChannelOccupied:
      return "channel_occupied";
    case PresenceEvent::kChannelVacated:
      return "channel_vacated";
    case PresenceEvent::kMemberAdded:
      return "member_added";
    case PresenceEvent::kMemberRemoved:
      return "member_removed";
  }
  return "unknown";
}

void set_presence_event_sink(PresenceEventSink* sink) { g_sink = sink; }
PresenceEventSink* presence_event_sink() { return g_sink; }

std::string member_identity_error(const MemberIdentity& who) {
  if (who.user.empty()) return "presence channel needs a user id (token sub or auth-url user)";
  if (who.user.size() > kMaxMemberIdBytes) return "presence user id over 128 bytes";
  if (who.info_json.empty()) return "";
  if (who.info_json.size() > kMaxMemberInfoBytes) return "presence member info over 1 KiB";
  // Both sources give compact JSON already (the token's claim is re-serialized, the
  // auth-url answer too); this only guards the object rule.
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(who.info_json.data(), who.info_json.size());
  if (doc.HasParseError() || !doc.IsObject()) return "presence member info must be a JSON object";
  return "";
}

void PresenceRegistry::attach(Inbox* inbox) {
  std::lock_guard<std::mutex> lock(mutex_);
  inboxes_.push_back(inbox);
}

void PresenceRegistry::detach(Inbox* inbox) {
  std::lock_guard<std::mutex> lock(mutex_);
  inboxes_.erase(std::remove(inboxes_.begin(), inboxes_.end(), inbox), inboxes_.end());
}

void PresenceRegistry::post(const MessagePtr& notice) {
  for (Inbox* inbox : inboxes_) inbox->post(notice);
}

void PresenceRegistry::emit(PresenceEvent::Kind kind, const std::string& channel,
                            const std::string& user, const std::string& info_json) {
  events_[kind].fetch_add(1, std::memory_order_relaxed);
  if (g_sink == nullptr) return;
  const bool member_event =
      kind == PresenceEvent::kMemberAdded || kind == PresenceEvent::kMemberRemoved;
  g_sink->on_presence_event(PresenceEvent{
      kind, channel, member_event ? user : std::string(),
      member_event ? (info_json.empty() ? std::string("{}") : info_json) : std::string(),
      wall_clock_ms()});
}

void PresenceRegistry::join(const std::string& channel, ChannelState& state,
                            const std::string& user, const Member& member, int64_t) {
  total_members_.fetch_add(1, std::memory_order_relaxed);
  if (store_ != nullptr) {
    store_->add_entry(channel, user, member.info_json);  // the store decides and announces
    return;
  }
  if (state.members.size() == 1) emit(PresenceEvent::kChannelOccupied, channel, user, "");
  emit(PresenceEvent::kMemberAdded, channel, user, member.info_json);
  post(make_presence_notice(channel, join_notice_json(channel, user, member.info_json), "join"));
}

void PresenceRegistry::leave(const std::string& channel, ChannelState& state,
                             const std::string& user, int64_t) {
  auto it = state.members.find(user);
  const std::string info = std::move(it->second.info_json);
  state.members.erase(it);
  state.members_cache.reset();
  total_members_.fetch_sub(1, std::memory_order_relaxed);
  if (store_ != nullptr) {
    store_->remove_entry(channel, user);
    // The channel's view is kept while this sidecar has members there (the store follows
    // the channel's notices only then).
    if (state.members.empty()) channels_.erase(channel);
    return;
  }
  emit(PresenceEvent::kMemberRemoved, channel, user, info);
  post(make_presence_notice(channel, leave_notice_json(channel, user), "leave"));
  if (state.members.empty()) {
    emit(PresenceEvent::kChannelVacated, channel, user, "");
    channels_.erase(channel);  // `state` is gone from here on
  }
}

void PresenceRegistry::connect(const std::string& channel, const MemberIdentity& who,
                               int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  ChannelState& state = channels_[channel];
  ++state.connections;
  auto [it, added] = state.members.try_emplace(who.user);
  Member& member = it->second;
  if (!added && member.connections == 0) {
    --waiting_;  // back within the grace: no leave, no join
    any_waiting_.store(waiting_ != 0, std::memory_order_relaxed);
    member.leave_at_ms = 0;
  }
  ++member.connections;
  if (added) {
    // The info is the first connection's until the member leaves (as presence_join.lua
    // keeps it across sidecars, and as Pusher does): a later tab with other info
    // changes nothing, so every list, notice and event agrees on one info per member.
    member.info_json = who.info_json;
    state.members_cache.reset();
    join(channel, state, who.user, member, now_ms);
  }
}

void PresenceRegistry::disconnect(const std::string& channel, const std::string& user,
                                  int64_t now_ms, int64_t min_grace_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) return;
  ChannelState& state = ch->second;
  auto it = state.members.find(user);
  if (it == state.members.end() || it->second.connections == 0) return;
  --state.connections;
  if (--it->second.connections != 0) return;
  const int64_t grace = std::max(grace_ms_, min_grace_ms);
  if (grace <= 0) {
    leave(channel, state, user, now_ms);
    return;
  }
  it->second.leave_at_ms = now_ms + grace;
  ++waiting_;
  any_waiting_.store(true, std::memory_order_relaxed);
}

void PresenceRegistry::sweep(int64_t now_ms) {
  if (!any_waiting_.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::pair<std::string, std::string>> due;  // channel, user
  for (const auto& [channel, state] : channels_)
    for (const auto& [user, member] : state.members)
      if (member.connections == 0 && member.leave_at_ms <= now_ms) due.emplace_back(channel, user);
  for (const auto& [channel, user] : due) {
    --waiting_;
    leave(channel, channels_.find(channel)->second, user, now_ms);
  }
  any_waiting_.store(waiting_ != 0, std::memory_order_relaxed);
}

void PresenceRegistry::leave_all(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (store_ != nullptr) return;
  std::vector<std::pair<std::string, std::string>> everyone;  // channel, user
  for (const auto& [channel, state] : channels_)
    for (const auto& [user, member] : state.members) everyone.emplace_back(channel, user);
  for (const auto& [channel, user] : everyone)
    leave(channel, channels_.find(channel)->second, user, now_ms);
  waiting_ = 0;
  any_waiting_.store(false, std::memory_order_relaxed);
}

void PresenceRegistry::append_members_locked(std::string& out, const std::string& channel) const {
  out += '[';
  auto ch = channels_.find(channel);
  if (ch != channels_.end()) {
    bool first = true;
    // With a store: every sidecar's members, plus local ones whose join is still on its
    // way through the store.
    for (const auto& [user, info] : ch->second.global) {
      if (!first) out += ',';
      first = false;
      append_member_json(out, user, info);
    }
    for (const auto& [user, member] : ch->second.members) {
      if (ch->second.global.count(user) != 0) continue;
      if (!first) out += ',';
      first = false;
      append_member_json(out, user, member.info_json);
    }
  }
  out += ']';
}

void PresenceRegistry::apply_remote(const std::string& channel, bool joined,
                                    const std::string& user, const std::string& info_json) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) return;  // no local subscriber: nobody to tell
  ChannelState& state = ch->second;
  if (joined) {
    state.global[user] = info_json;
    state.members_cache.reset();
    post(make_presence_notice(channel, join_notice_json(channel, user, info_json), "join"));
  } else if (state.global.erase(user) != 0 || state.members.count(user) == 0) {
    state.members_cache.reset();
    post(make_presence_notice(channel, leave_notice_json(channel, user), "leave"));
  }
}

void PresenceRegistry::apply_snapshot(
    const std::string& channel, const std::vector<std::pair<std::string, std::string>>& members) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) return;
  ChannelState& state = ch->second;
  std::unordered_map<std::string, std::string> global;
  global.reserve(members.size());
  for (const auto& [user, info] : members) global.emplace(user, info);
  // Members that vanished from the store (a leave missed while the pub/sub connection
  // was down, or Redis restarted without them): gone from the view, with a leave notice.
  // A local member stays listed (its entry is on its way back), so no leave for it.
  for (const auto& [user, info] : state.global) {
    if (global.count(user) != 0) continue;
    state.members_cache.reset();
    if (state.members.count(user) == 0)
      post(make_presence_notice(channel, leave_notice_json(channel, user), "leave"));
  }
  for (const auto& [user, info] : global) {
    auto known = state.global.find(user);
    if (known != state.global.end() && known->second == info) continue;
    state.members_cache.reset();
    // A subscriber's list may have been made before the snapshot came: announce the
    // members it could not show (a join of a member already listed is harmless). Local
    // members too: with a store their joins reach the other local subscribers only
    // through Redis pub/sub, which may not have been subscribed yet.
    post(make_presence_notice(channel, join_notice_json(channel, user, info), "join"));
  }
  state.global.swap(global);
}

void PresenceRegistry::report_event(PresenceEvent::Kind kind, const std::string& channel,
                                    const std::string& user, const std::string& info_json) {
  std::lock_guard<std::mutex> lock(mutex_);
  emit(kind, channel, user, info_json);
}

void PresenceRegistry::append_members_json(std::string& out, const std::string& channel) const {
  std::lock_guard<std::mutex> lock(mutex_);
  append_members_locked(out, channel);
}

MessagePtr PresenceRegistry::members_notice(const std::string& channel) {
  // Built under the lock (about a millisecond for 10,000 members) and kept until the
  // next change: a reconnect storm of N subscribers builds it once, not N times.
  std::lock_guard<std::mutex> lock(mutex_);
  auto ch = channels_.find(channel);
  if (ch != channels_.end() && ch->second.members_cache != nullptr) return ch->second.members_cache;
  std::string members;
  append_members_locked(members, channel);
  MessagePtr notice =
      make_presence_notice(channel, members_notice_json(channel, members), "members");
  if (ch != channels_.end()) ch->second.members_cache = notice;
  return notice;
}

size_t PresenceRegistry::member_count(const std::string& channel) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) return 0;
  size_t n = ch->second.global.size();
  for (const auto& [user, member] : ch->second.members) n += ch->second.global.count(user) == 0;
  return n;
}

bool PresenceRegistry::full_for(const std::string& channel, const std::string& user,
                                size_t max_members) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) return max_members == 0;
  const ChannelState& state = ch->second;
  if (state.members.count(user) != 0 || state.global.count(user) != 0) return false;
  // Cheap bounds first: the exact count walks the local members.
  if (state.global.size() + state.members.size() < max_members) return false;
  size_t n = state.global.size();
  for (const auto& [local, member] : state.members) n += state.global.count(local) == 0;
  return n >= max_members;
}

size_t PresenceRegistry::connection_count(const std::string& channel) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto ch = channels_.find(channel);
  return ch == channels_.end() ? 0 : ch->second.connections;
}

void append_presence_metrics(std::string& out, const PresenceRegistry& registry) {
  append_metric(out, "comet_presence_members", "gauge",
                "Presence members tracked by this sidecar (in their grace period included).",
                std::to_string(registry.total_members()));
  append_metric_header(out, "comet_presence_events_total", "counter",
                       "Presence events produced (join/leave transitions, after the grace).");
  for (int k = 0; k < 4; ++k) {
    const auto kind = static_cast<PresenceEvent::Kind>(k);
    out += std::string("comet_presence_events_total{kind=\"") + presence_event_kind_name(kind) +
           "\"} " + std::to_string(registry.events(kind)) + "\n";
  }
}

}  // namespace comet
