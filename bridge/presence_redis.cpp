#include "bridge/presence_redis.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "bridge/cluster_redis.h"
#include "bridge/presence_redis_call.h"
#include "bridge/redis_bridge.h"
#include "bridge/redis_reply.h"
#include "bridge/standalone_redis.h"
#include "util/log.h"

namespace comet {

using namespace presence_redis_detail;

namespace {

std::string random_instance() {
  std::random_device device;
  char out[17];
  snprintf(out, sizeof out, "%08x%08x", device(), device());
  return out;
}

}  // namespace

PresenceRedis::PresenceRedis(PresenceRegistry& registry, const RedisAddress& address)
    : registry_(registry), address_(address), instance_(random_instance()) {
  base_ = event_base_new();
  std::vector<const char*> scripts{kPresenceJoinScript, kPresenceLeaveScript, kPresenceSweepScript,
                                   kPresenceSlotsScript, kPresenceReadScript};
  auto& listener = static_cast<RedisBackend::Listener&>(*this);
  if (address_.uses_cluster())
    redis_ = std::make_unique<ClusterRedis>(base_, address_, std::move(scripts), health_, listener);
  else
    redis_ =
        std::make_unique<StandaloneRedis>(base_, address_, std::move(scripts), health_, listener);
  publish_ = redis_->sharded() ? "SPUBLISH" : "PUBLISH";
  mailbox_ = std::make_unique<LoopMailbox>(base_);
  refresh_event_ = event_new(base_, -1, EV_PERSIST, on_refresh, this);
  sweep_event_ = event_new(base_, -1, EV_PERSIST, on_sweep, this);
  pending_event_ = event_new(base_, -1, 0, on_pending_leaves, this);
  resubscribe_event_ = event_new(base_, -1, 0, on_resubscribe, this);
  for (int s = 0; s < kScripts; ++s) shas_[s] = script_sha1(script_text(s));
  registry_.set_store(this);
}

PresenceRedis::~PresenceRedis() {
  stop();
  registry_.set_store(nullptr);
  event_free(refresh_event_);
  event_free(sweep_event_);
  event_free(pending_event_);
  event_free(resubscribe_event_);
  mailbox_.reset();
  redis_.reset();
  event_base_free(base_);
}

void PresenceRedis::start() {
  if (started_) return;
  started_ = true;
  const timeval refresh = ms_timeval(kRefreshMs);
  event_add(refresh_event_, &refresh);
  const timeval sweep = ms_timeval(kSweepMs);
  event_add(sweep_event_, &sweep);
  redis_->start();
  thread_ = std::thread([this] { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); });
}

void PresenceRedis::stop() {
  if (!started_) return;
  started_ = false;
  mailbox_->post([this] {
    redis_->stop();
    event_base_loopexit(base_, nullptr);
  });
  thread_.join();
}

void PresenceRedis::add_entry(const std::string& channel, const std::string& user,
                              const std::string& info_json) {
  mailbox_->post([this, channel, user, info_json] {
    auto& users = local_[channel];
    const bool first = users.empty();
    Local& local = users[user];
    local.info = info_json;
    // Back before its leave could be sent: the leave is dropped (its entry stays).
    auto pending = pending_leaves_.find(channel);
    if (pending != pending_leaves_.end()) {
      auto it = pending->second.find(user);
      if (it != pending->second.end()) {
        local.stored = it->second;
        pending->second.erase(it);
        if (pending->second.empty()) pending_leaves_.erase(pending);
      }
    }
    if (!first) {
      join(channel, user, info_json, local.stored);
      return;
    }
    // The channel's first member here: its slot is listed for the sweepers before the
    // entry exists, so that this sidecar dying right after the join cannot leave an entry
    // that no sweep would ever visit.
    follow(channel);
    touch_slots({channel_slot(channel)}, [this, channel, user] {
      auto users = local_.find(channel);
      if (users == local_.end()) return;  // left meanwhile: its leave went already
      auto it = users->second.find(user);
      if (it != users->second.end()) join(channel, user, it->second.info, it->second.stored);
    });
  });
}

void PresenceRedis::remove_entry(const std::string& channel, const std::string& user) {
  mailbox_->post([this, channel, user] {
    bool stored = false;
    auto it = local_.find(channel);
    if (it != local_.end()) {
      auto entry = it->second.find(user);
      if (entry != it->second.end()) {
        stored = entry->second.stored;
        it->second.erase(entry);
      }
      if (it->second.empty()) {
        local_.erase(it);
        const std::string name = events_channel(channel);
        subscriptions_.erase(name);
        follows_.erase(channel);
        redis_->unsubscribe({name});
      }
    }
    leave(channel, user, stored);
  });
}

// One read() in flight: the replies still owed and what arrived so far.
struct PresenceRedis::Read {
  ReadDone done;
  std::vector<Members> members;
  size_t owed = 0;
  bool ok = true;
};

struct PresenceRedis::ReadSlot {
  std::shared_ptr<Read> read;
  size_t index;
};

void PresenceRedis::read(std::vector<std::string> channels, ReadDone done) {
  mailbox_->post([this, channels = std::move(channels), done = std::move(done)]() mutable {
    auto read = std::make_shared<Read>();
    read->done = std::move(done);
    read->members.resize(channels.size());
    for (size_t i = 0; i < channels.size(); ++i) {
      const std::string key = channel_key(channels[i], ":info");
      auto slot = std::make_unique<ReadSlot>(ReadSlot{read, i});
      if (!redis_->command(key, on_read_reply, slot.get(), {"HGETALL", key})) {
        read->ok = false;
        continue;
      }
      slot.release();
      ++read->owed;
    }
    if (read->owed == 0) read->done(read->ok, std::move(read->members));
  });
}

void PresenceRedis::on_read_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<ReadSlot> slot(static_cast<ReadSlot*>(privdata));
  auto* r = static_cast<redisReply*>(reply);
  Read& read = *slot->read;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) {
    read.ok = false;
  } else {
    for (size_t i = 0; i + 1 < r->elements; i += 2)
      read.members[slot->index].emplace_back(text_at(r, i), text_at(r, i + 1));
  }
  if (--read.owed == 0) read.done(read.ok, std::move(read.members));
}

void PresenceRedis::follow(const std::string& channel) {
  follows_[channel] = Follow{};
  const std::string name = events_channel(channel);
  subscriptions_[name] = Subscription::kWanted;
  on_subscriber_ready();
}

void PresenceRedis::eval(int script, std::vector<std::string> keys, std::vector<std::string> argv,
                         redisCallbackFn* callback, std::unique_ptr<Call> call) {
  std::vector<std::string_view> args;
  args.reserve(3 + keys.size() + argv.size());
  if (call->retried) {
    args.push_back("EVAL");
    args.push_back(script_text(script));
  } else {
    args.push_back("EVALSHA");
    args.push_back(shas_[script]);
  }
  const std::string key_count = std::to_string(keys.size());
  args.push_back(key_count);
  for (const std::string& k : keys) args.push_back(k);
  for (const std::string& a : argv) args.push_back(a);
  call->keys = std::move(keys);
  call->argv = std::move(argv);
  // A call without a callback (a "done" or a "touch") still needs its reply, for NOSCRIPT.
  if (callback == nullptr) callback = on_slots_reply;
  if (redis_->command(call->keys[0], callback, call.get(), args)) {
    call.release();
    return;
  }
  // Not sent (Redis unreachable): joins are made up by the next refresh (or the
  // reconnection), leaves wait for the reconnection; the next sweep makes up sweeps.
  if (call->script == kLeave) pending_leaves_[call->channel][call->user] = call->argv[3] == "1";
  if (call->then) call->then();
}

void PresenceRedis::eval_on_channel(int script, std::vector<std::string> argv,
                                    redisCallbackFn* callback, std::unique_ptr<Call> call) {
  const std::string& channel = call->channel;
  // presence_join.lua's KEYS; the notices' channel goes as an argument (not a key).
  std::vector<std::string> keys{channel_key(channel, ""),
                                channel_key(channel, ":info"),
                                channel_key(channel, ":count"),
                                channel_key(channel, ":swept"),
                                due_index_key(channel_slot(channel)),
                                channel_key(channel, ":version")};
  argv.push_back(publish_);
  argv.push_back(events_channel(channel));
  eval(script, std::move(keys), std::move(argv), callback, std::move(call));
}

void PresenceRedis::join(const std::string& channel, const std::string& user,
                         const std::string& info, bool restore) {
  auto call = std::make_unique<Call>(this, kJoin, channel, user, info);
  eval_on_channel(
      kJoin, {instance_, user, info, std::to_string(kEntryTtlMs), channel, restore ? "1" : "0"},
      on_join_reply, std::move(call));
}

void PresenceRedis::leave(const std::string& channel, const std::string& user, bool waited) {
  auto call = std::make_unique<Call>(this, kLeave, channel, user);
  eval_on_channel(kLeave, {instance_, user, channel, waited ? "1" : "0"}, on_leave_reply,
                  std::move(call));
}

void PresenceRedis::send_pending_leaves() {
  auto pending = std::move(pending_leaves_);
  pending_leaves_.clear();
  for (const auto& [channel, users] : pending)
    for (const auto& [user, stored] : users) leave(channel, user, stored);
}

void PresenceRedis::read_snapshot(const std::string& channel, int attempt) {
  auto call = std::make_unique<Call>(this, kRead, channel);
  call->attempt = attempt;
  eval(kRead, {channel_key(channel, ":info"), channel_key(channel, ":version")}, {},
       on_snapshot_reply, std::move(call));
}

void PresenceRedis::retry_leave(const Call& call, bool stored) {
  // Back meanwhile: its entry stays, and no leave is due.
  auto it = local_.find(call.channel);
  if (it != local_.end() && it->second.count(call.user) != 0) return;
  pending_leaves_[call.channel][call.user] = stored;
  // A refresh interval later, as after an outage (on_commands_ready sends them too); a
  // leave that cannot be sent then waits in pending_leaves_ again.
  if (!event_pending(pending_event_, EV_TIMEOUT, nullptr)) {
    const timeval later = ms_timeval(kRefreshMs);
    event_add(pending_event_, &later);
  }
}

bool PresenceRedis::failed(std::unique_ptr<Call>& call, const redisReply* r,
                           redisCallbackFn* callback) {
  if (r == nullptr) {
    // Connection lost (or a Cluster slot busy longer than its retries): the next refresh
    // or sweep makes up a join or sweep; a leave is sent again (as an ordinary one: it
    // may have been applied already).
    if (call->script == kLeave) retry_leave(*call, false);
    return true;
  }
  if (r->type == REDIS_REPLY_ARRAY) return false;
  const std::string_view error = reply_or_error_text(r);
  // Redis lost its script cache (restarted) since the connection loaded the scripts:
  // send the script itself, once.
  if (is_noscript(r) && !call->retried) {
    call->retried = true;
    std::vector<std::string> keys = call->keys;
    std::vector<std::string> argv = call->argv;
    const int script = call->script;
    eval(script, std::move(keys), std::move(argv), callback, std::move(call));
    return true;
  }
  // A leave Redis refused (a Cluster slot migrating, a failover): sent again a refresh
  // interval later, as after an outage.
  if (call->script == kLeave) retry_leave(*call, call->argv[3] == "1");
  LOG_WARN("presence", "%s on %s failed: %.*s", kScriptNames[call->script],
           call->keys.empty() ? "" : call->keys[0].c_str(), static_cast<int>(error.size()),
           error.data());
  redis_->command_failed(error);  // READONLY/LOADING: find the master again
  return true;
}

void PresenceRedis::on_join_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Call> call(static_cast<Call*>(privdata));
  auto* r = static_cast<redisReply*>(reply);
  PresenceRedis& self = *call->self;
  if (self.failed(call, r, on_join_reply)) return;
  // The channel is new in its slot's due index: make sure the slot gets swept.
  if (integer_at(r, 2) == 1) self.touch_slots({channel_slot(call->channel)});
  auto channel = self.local_.find(call->channel);
  if (channel != self.local_.end()) {
    auto local = channel->second.find(call->user);
    if (local != channel->second.end()) local->second.stored = true;
  }
  // 2: an entry put back after Redis lost it: the app heard of this member already.
  if (integer_at(r, 0) != 1) return;
  if (integer_at(r, 1) == 1)
    self.registry_.report_event(PresenceEvent::kChannelOccupied, call->channel, "", "");
  self.registry_.report_event(PresenceEvent::kMemberAdded, call->channel, call->user, call->info);
}

void PresenceRedis::on_leave_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Call> call(static_cast<Call*>(privdata));
  auto* r = static_cast<redisReply*>(reply);
  PresenceRedis& self = *call->self;
  if (self.failed(call, r, on_leave_reply) || integer_at(r, 0) != 1) return;
  self.registry_.report_event(PresenceEvent::kMemberRemoved, call->channel, call->user,
                              text_at(r, 2));
  if (integer_at(r, 1) == 1)
    self.registry_.report_event(PresenceEvent::kChannelVacated, call->channel, "", "");
}

void PresenceRedis::on_snapshot_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Call> call(static_cast<Call*>(privdata));
  auto* r = static_cast<redisReply*>(reply);
  PresenceRedis& self = *call->self;
  if (self.failed(call, r, on_snapshot_reply) || r->elements != 2) return;
  auto follow = self.follows_.find(call->channel);
  if (follow == self.follows_.end()) return;  // no longer followed
  // {version, {user, info, ...}} (presence_read.lua)
  const uint64_t version = parse_u64(text_at(r, 0));
  Follow& f = follow->second;
  if (version < f.known) {
    // Older than notices already in the view: applied, it would undo them. When those
    // came after a gap, read again (a few times; the next refresh reads anyway).
    if (!f.synced && call->attempt < 3) self.read_snapshot(call->channel, call->attempt + 1);
    return;
  }
  const redisReply* hash = r->element[1];
  std::vector<std::pair<std::string, std::string>> members;
  for (size_t i = 0; hash->type == REDIS_REPLY_ARRAY && i + 1 < hash->elements; i += 2)
    members.emplace_back(text_at(hash, i), text_at(hash, i + 1));
  f.known = version;
  f.synced = true;
  self.registry_.apply_snapshot(call->channel, members);
}

void PresenceRedis::on_version_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Call> call(static_cast<Call*>(privdata));
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr) return;
  PresenceRedis& self = *call->self;
  if (r->type == REDIS_REPLY_ERROR) {
    self.redis_->command_failed(reply_or_error_text(r));  // READONLY/LOADING: the master moved
    return;
  }
  auto follow = self.follows_.find(call->channel);
  if (follow == self.follows_.end()) return;
  // A number other than the last notice's: a notice was missed (or is on its way). A
  // lower one: Redis went back (restored from an older save, a replica that lagged):
  // the list read now replaces the view, whatever numbers came before.
  const uint64_t version = r->type == REDIS_REPLY_NIL ? 0 : parse_u64(reply_text(r));
  Follow& f = follow->second;
  if (version != f.known) {
    if (version < f.known) f.known = 0;
    f.synced = false;
    self.read_snapshot(call->channel, 0);
  }
}

void PresenceRedis::on_notice(const std::string& channel, uint64_t version, bool joined,
                              const std::string& user, const std::string& info) {
  auto follow = follows_.find(channel);
  if (follow == follows_.end()) return;  // no longer followed
  Follow& f = follow->second;
  if (f.synced && version <= f.known) return;  // in the view already (the list had it)
  registry_.apply_remote(channel, joined, user, info);
  if (f.synced && version != f.known + 1) {
    f.synced = false;  // a gap: a notice was missed
    read_snapshot(channel, 0);
  }
  f.known = std::max(f.known, version);
}

void PresenceRedis::on_refresh(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<PresenceRedis*>(arg);
  // Refreshing is joining again: an entry swept meanwhile (this sidecar was cut off
  // from Redis longer than the ttl) comes back with a join.
  // And the members are read again: a leave published while the pub/sub connection was
  // down (and so missed) is made up within a refresh.
  // And the slots are touched: comet:{presence}:slots may have been lost (Redis restarted
  // empty, a failover to a replica that lagged).
  // Touched first (on one Redis, the same connection keeps the order): a join that puts
  // a swept entry back lands on a listed slot.
  std::vector<int> slots;
  for (const auto& [channel, users] : self->local_) slots.push_back(channel_slot(channel));
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  self->touch_slots(slots);
  for (const auto& [channel, users] : self->local_) {
    for (const auto& [user, local] : users) self->join(channel, user, local.info, local.stored);
    auto subscribed = self->subscriptions_.find(events_channel(channel));
    if (subscribed != self->subscriptions_.end() &&
        subscribed->second == Subscription::kConfirmed) {
      auto follow = self->follows_.find(channel);
      if (follow == self->follows_.end() || !follow->second.synced) {
        self->read_snapshot(channel, 0);
      } else {
        const std::string key = channel_key(channel, ":version");
        auto call = std::make_unique<Call>(self, kRead, channel);
        if (self->redis_->command(key, on_version_reply, call.get(), {"GET", key})) call.release();
      }
    }
  }
}

void PresenceRedis::on_pubsub(std::string_view kind, std::string_view name,
                              std::string_view payload) {
  const std::string channel = followed_channel(name);
  if (channel.empty()) return;
  if (kind == "subscribe") {
    auto it = subscriptions_.find(std::string(name));
    if (it == subscriptions_.end()) return;
    it->second = Subscription::kConfirmed;
    // Subscribed: from here on no join or leave is missed; read who is there already
    // (the list replaces this sidecar's view: leaves missed while unsubscribed show).
    // The numbers start again from this list (Redis may have gone back meanwhile).
    follows_[channel] = Follow{};
    read_snapshot(channel, 0);
    return;
  }
  if (kind != "message" || payload.size() < 5) return;
  // "j<version>:<length>:<user><info>" or "l<version>:<length>:<user>" (presence_join.lua,
  // presence_leave.lua, presence_sweep.lua).
  const char type = payload[0];
  const size_t colon = payload.find(':');
  const size_t colon2 = colon == std::string_view::npos ? colon : payload.find(':', colon + 1);
  if ((type != 'j' && type != 'l') || colon2 == std::string_view::npos) return;
  const uint64_t version = parse_u64(payload.substr(1, colon - 1));
  const std::string_view length_text = payload.substr(colon + 1, colon2 - colon - 1);
  const size_t length = static_cast<size_t>(parse_u64(length_text));
  if (version == 0 || length_text.empty() || length > payload.size() - colon2 - 1) return;
  const std::string user(payload.substr(colon2 + 1, length));
  const std::string info(type == 'j' ? payload.substr(colon2 + 1 + length) : std::string_view());
  on_notice(channel, version, type == 'j', user, info);
}

void PresenceRedis::on_subscriptions_lost(const std::vector<std::string>* names) {
  // Notices may be missed until subscribed again: the list is read then.
  if (names == nullptr) {
    for (auto& [channel, follow] : follows_) follow.synced = false;
    for (auto& [name, state] : subscriptions_) state = Subscription::kWanted;
    return;
  }
  for (const std::string& name : *names) {
    auto it = subscriptions_.find(name);
    if (it != subscriptions_.end()) it->second = Subscription::kWanted;
    auto follow = follows_.find(followed_channel(name));
    if (follow != follows_.end()) follow->second.synced = false;
  }
  // Asked again from the loop, not from here: this may be inside the backend's
  // subscribe() (a name it could not place), which must not be entered again.
  event_active(resubscribe_event_, 0, 0);
}

void PresenceRedis::on_subscriber_ready() {
  // Each name on its own: can_subscribe() also starts the connection to its node (a
  // Cluster master); a name whose node is not ready waits for the next call.
  std::vector<std::string> names;
  for (auto& [name, state] : subscriptions_) {
    if (state != Subscription::kWanted || !redis_->can_subscribe(name)) continue;
    state = Subscription::kSent;
    names.push_back(name);
  }
  if (!names.empty()) redis_->subscribe(names);
}

void PresenceRedis::on_resubscribe(evutil_socket_t, short, void* arg) {
  static_cast<PresenceRedis*>(arg)->on_subscriber_ready();
}

void PresenceRedis::on_pending_leaves(evutil_socket_t, short, void* arg) {
  static_cast<PresenceRedis*>(arg)->send_pending_leaves();
}

void PresenceRedis::on_commands_ready() {
  // A (re)connected Redis may have lost our entries (restarted without its data): join
  // them again now rather than at the next refresh. The leaves that waited go a refresh
  // interval later (a user that joins again meanwhile has none waiting): by then the
  // other sidecars have put their entries back too, so that a leave whose entry Redis
  // lost decides channel_vacated on the channel's real members.
  on_refresh(-1, 0, this);
  if (!pending_leaves_.empty()) {
    const timeval later = ms_timeval(kRefreshMs);
    event_add(pending_event_, &later);
  }
}

}  // namespace comet
