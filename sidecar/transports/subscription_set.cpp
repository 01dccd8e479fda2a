#include "transports/subscription_set.h"

#include "util/json_escape.h"

namespace comet {

SubscriptionSet::~SubscriptionSet() {
  for (auto& sub : subs_) unsubscribe(*sub);
}

void SubscriptionSet::unsubscribe(Subscription& sub) {
  if (sub.channel == nullptr) return;
  if (memberships_ != nullptr) {
    for (size_t i = 0; i < memberships_->size(); ++i) {
      Membership& m = (*memberships_)[i];
      if (m.channel != sub.channel->name()) continue;
      end_membership(m);
      memberships_->erase(memberships_->begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  worker_.hub.unsubscribe(sub);
  worker_.counters().subscriptions.fetch_sub(1, std::memory_order_relaxed);
}

Subscription* SubscriptionSet::add(const std::string& channel, const std::optional<Position>& from,
                                   const MemberIdentity* who) {
  if (find(channel) != nullptr) return nullptr;
  subs_.push_back(std::make_unique<Subscription>());
  Subscription& sub = *subs_.back();
  sub.owner = &owner_;
  // The bus first brings the hub's view of the channel up to date (when it can at once),
  // so cursors and "now" mean the same on every worker.
  worker_.bus.prepare_subscribe(channel);
  worker_.hub.subscribe(sub, channel, from ? &*from : nullptr, false);
  worker_.counters().subscriptions.fetch_add(1, std::memory_order_relaxed);
  PresenceRegistry* presence = worker_.shared.presence.get();
  if (presence != nullptr && who != nullptr && !who->user.empty() && is_presence_channel(channel)) {
    if (memberships_ == nullptr) memberships_ = std::make_unique<std::vector<Membership>>();
    memberships_->push_back(Membership{channel, who->user});
    presence->connect(channel, *who, monotonic_ms());
  }
  return &sub;
}

void SubscriptionSet::end_membership(Membership& m) {
  if (m.ended) return;
  m.ended = true;
  worker_.shared.presence->disconnect(m.channel, m.user, monotonic_ms(), m.min_grace_ms);
}

void SubscriptionSet::end_memberships() {
  if (memberships_ == nullptr) return;
  for (Membership& m : *memberships_) end_membership(m);
}

void SubscriptionSet::keep_memberships_for(int64_t ms) {
  if (memberships_ == nullptr) return;
  for (Membership& m : *memberships_) m.min_grace_ms = ms;
}

const std::string* SubscriptionSet::member_user(std::string_view channel) const {
  if (memberships_ == nullptr) return nullptr;
  for (const Membership& m : *memberships_)
    if (m.channel == channel) return &m.user;
  return nullptr;
}

void SubscriptionSet::announce_members(Subscription& sub) {
  sub.missed_notice = false;  // the list sent now holds whatever a missed notice said
  if (sub.channel == nullptr || member_user(sub.channel->name()) == nullptr) return;
  announces_members_ = true;
  owner_.on_message(sub, worker_.shared.presence->members_notice(sub.channel->name()));
}

void SubscriptionSet::resend_missed_members(Subscription& sub) {
  // Live again after a pause (a replay that waited for a slow reader, or for the stream
  // to start): join/leave notices of that time were never stored, so the client gets
  // the whole list instead, after the replayed messages and before the next live ones.
  if (!sub.missed_notice || !announces_members_ || sub.pending || sub.awaiting_replay) return;
  announce_members(sub);
}

void SubscriptionSet::announce_members() {
  if (memberships_ == nullptr) return;
  for (size_t i = 0; i < subs_.size(); ++i) announce_members(*subs_[i]);
}

void SubscriptionSet::append_members_field(std::string& out) const {
  if (memberships_ == nullptr || memberships_->empty()) return;
  out += ",\"members\":{";
  for (size_t i = 0; i < memberships_->size(); ++i) {
    if (i != 0) out += ',';
    append_json_string(out, (*memberships_)[i].channel);
    out += ':';
    worker_.shared.presence->append_members_json(out, (*memberships_)[i].channel);
  }
  out += '}';
}

bool SubscriptionSet::replay_all() {
  for (size_t i = 0; i < subs_.size(); ++i) {
    Subscription& sub = *subs_[i];
    if (sub.pending) continue;  // replayed by the hub when its channel has synced
    if (!worker_.hub.replay(sub)) return false;
    resend_missed_members(sub);
  }
  return true;
}

bool SubscriptionSet::replay(Subscription& sub) {
  if (!worker_.hub.replay(sub)) return false;
  resend_missed_members(sub);
  return true;
}

const Subscription* SubscriptionSet::find(std::string_view channel) const {
  for (const auto& sub : subs_)
    if (sub->channel != nullptr && sub->channel->name() == channel) return sub.get();
  return nullptr;
}

bool SubscriptionSet::remove(std::string_view channel) {
  for (size_t i = 0; i < subs_.size(); ++i) {
    if (subs_[i]->channel->name() != channel) continue;
    unsubscribe(*subs_[i]);
    subs_.erase(subs_.begin() + static_cast<std::ptrdiff_t>(i));
    return true;
  }
  return false;
}

bool SubscriptionSet::all_positioned() const {
  for (const auto& sub : subs_)
    if (sub->pending) return false;
  return true;
}

void SubscriptionSet::append_cursor(std::string& out) const {
  std::string cursor;
  for (const auto& sub : subs_) append_cursor_entry(cursor, sub->channel->name(), sub->position);
  out += cursor;
}

void SubscriptionSet::append_cursor_before(std::string& out, const Subscription& sub,
                                           const Message& withheld) const {
  for (const auto& s : subs_) {
    const bool before = s.get() == &sub && withheld.id != 0;  // bare messages move nothing
    append_cursor_entry(out, s->channel->name(),
                        before ? Position{withheld.epoch, withheld.prev_id} : s->position);
  }
}

void append_reset_json(std::string& out, const Subscription& sub, ResetReason reason) {
  out += "{\"type\":\"reset\",\"ch\":";
  append_json_string(out, sub.channel->name());
  out += ",\"reason\":\"";
  out += reset_reason_name(reason);
  out += "\",\"epoch\":";
  append_json_string(out, sub.position.epoch);
  out += ",\"id\":" + std::to_string(sub.position.id) + "}";
}

}  // namespace comet
