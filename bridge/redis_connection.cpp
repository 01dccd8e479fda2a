#include "bridge/redis_connection.h"

#include <hiredis/adapters/libevent.h>

#include <cstdlib>

#include "bridge/reconnect_backoff.h"
#include "util/log.h"

namespace comet {

RedisConnection::RedisConnection(event_base* base, const RedisAddress& address, std::string role,
                                 bool subscriber)
    : base_(base), address_(address), role_(std::move(role)), subscriber_(subscriber) {
  retry_event_ = evtimer_new(base_, on_retry, this);
  watch_event_ = evtimer_new(base_, on_watch, this);
  reconnect_event_ = evtimer_new(base_, on_reconnect, this);
}

RedisConnection::~RedisConnection() {
  stop();
  event_free(retry_event_);
  event_free(watch_event_);
  event_free(reconnect_event_);
}

void RedisConnection::set_handlers(std::function<void()> on_ready, std::function<void()> on_lost) {
  on_ready_ = std::move(on_ready);
  on_lost_ = std::move(on_lost);
}

void RedisConnection::start() {
  stopped_ = false;
  connect();
}

void RedisConnection::stop() {
  stopped_ = true;
  ready_ = false;
  announced_ = false;
  evtimer_del(retry_event_);
  evtimer_del(watch_event_);
  evtimer_del(reconnect_event_);
  drop_sentinel();
  if (context_ != nullptr) {
    redisAsyncContext* ac = context_;
    context_ = nullptr;
    ac->data = nullptr;  // its callbacks must not touch us any more
    redisAsyncFree(ac);
  }
}

void RedisConnection::reconnect() {
  if (stopped_ || context_ == nullptr) return;
  timeval now{0, 0};
  evtimer_add(reconnect_event_, &now);
}

void RedisConnection::on_reconnect(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RedisConnection*>(arg);
  if (self->stopped_ || self->context_ == nullptr) return;
  self->drop_connection("reconnecting to find the master");
}

// Frees the context at once (redisAsyncDisconnect would wait for replies that may never
// come): its pending callbacks get no reply. Never from inside one of its callbacks.
void RedisConnection::drop_connection(const char* why) {
  redisAsyncContext* ac = context_;
  context_ = nullptr;
  ac->data = nullptr;
  redisAsyncFree(ac);
  connection_lost(why);
}

void RedisConnection::arm_watch(int64_t ms) {
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(watch_event_, &tv);
}

// Sentinel: a lookup, connect or ROLE that takes too long means the node (or the
// sentinel) is unreachable; otherwise the next ROLE check.
void RedisConnection::on_watch(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RedisConnection*>(arg);
  if (self->stopped_) return;
  if (self->sentinel_ != nullptr) {
    LOG_ERROR("bridge", "redis %s: no answer from the sentinel within 2 s; trying the next",
              self->role_.c_str());
    self->drop_sentinel();
    ++self->sentinel_index_;
    self->schedule_retry();
    return;
  }
  if (self->context_ == nullptr) return;
  if (!self->ready_ || self->role_outstanding_) {
    self->drop_connection(self->ready_ ? "no answer to ROLE within a second"
                                       : "no connection or ROLE answer within 2 s");
    return;
  }
  if (self->subscriber_) return;
  self->role_outstanding_ = true;
  self->command(on_role_reply, self, {"ROLE"});
  self->arm_watch(1000);
}

void RedisConnection::connect() {
  if (address_.uses_sentinel()) {
    ask_sentinel();
    return;
  }
  connect_to(address_.host, address_.port);
}

// ---- Sentinel: where is the master? ------------------------------------------------

void RedisConnection::ask_sentinel() {
  const auto& [host, port] = address_.sentinels[sentinel_index_ % address_.sentinels.size()];
  redisAsyncContext* ac = redisAsyncConnect(host.c_str(), port);
  if (ac == nullptr || ac->err) {
    LOG_ERROR("bridge", "redis %s: cannot reach sentinel %s:%d: %s", role_.c_str(), host.c_str(),
              port, ac ? ac->errstr : "out of memory");
    if (ac != nullptr) redisAsyncFree(ac);
    ++sentinel_index_;
    schedule_retry();
    return;
  }
  ac->data = this;
  redisLibeventAttach(ac, base_);
  redisAsyncSetConnectCallback(ac, on_sentinel_connect);
  redisAsyncSetDisconnectCallback(ac, on_sentinel_disconnect);
  sentinel_ = ac;
  arm_watch(2000);
  // Queued until connected, in order.
  if (!address_.sentinel_password.empty()) {
    if (address_.sentinel_username.empty())
      redisAsyncCommand(ac, nullptr, nullptr, "AUTH %b", address_.sentinel_password.data(),
                        address_.sentinel_password.size());
    else
      redisAsyncCommand(ac, nullptr, nullptr, "AUTH %b %b", address_.sentinel_username.data(),
                        address_.sentinel_username.size(), address_.sentinel_password.data(),
                        address_.sentinel_password.size());
  }
  redisAsyncCommand(ac, on_master_address, this, "SENTINEL get-master-addr-by-name %b",
                    address_.master_name.data(), address_.master_name.size());
}

void RedisConnection::drop_sentinel() {
  if (sentinel_ == nullptr) return;
  redisAsyncContext* ac = sentinel_;
  sentinel_ = nullptr;
  ac->data = nullptr;
  redisAsyncFree(ac);
}

void RedisConnection::on_sentinel_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self == nullptr || status == REDIS_OK) return;
  // hiredis frees the context after a failed connect (and calls no reply callback).
  LOG_ERROR("bridge", "redis %s: sentinel unreachable: %s; trying the next", self->role_.c_str(),
            ac->errstr);
  self->sentinel_ = nullptr;
  // Its queued lookup is answered with no reply while hiredis frees it: not ours any more.
  const_cast<redisAsyncContext*>(ac)->data = nullptr;
  ++self->sentinel_index_;
  self->schedule_retry();
}

void RedisConnection::on_sentinel_disconnect(const redisAsyncContext* ac, int) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self != nullptr && self->sentinel_ == ac) self->sentinel_ = nullptr;
}

void RedisConnection::on_master_address(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  auto* self = static_cast<RedisConnection*>(privdata);
  if (ac->data == nullptr) return;  // stopped or failed meanwhile
  self->sentinel_ = nullptr;
  ac->data = nullptr;
  // The lookup is done either way: close this sentinel connection (after the callback;
  // without a reply it is closing already).
  if (r != nullptr) redisAsyncDisconnect(ac);
  int port = 0;
  if (r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
      r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
    port = std::atoi(r->element[1]->str);
  }
  if (port <= 0 || port > 65535) {
    LOG_ERROR("bridge", "redis %s: sentinel does not know master '%s'%s%s", self->role_.c_str(),
              self->address_.master_name.c_str(),
              r != nullptr && r->type == REDIS_REPLY_ERROR ? ": " : "",
              r != nullptr && r->type == REDIS_REPLY_ERROR ? r->str : "");
    ++self->sentinel_index_;
    self->schedule_retry();
    return;
  }
  self->connect_to(std::string(r->element[0]->str, r->element[0]->len), port);
}

void RedisConnection::connect_to(const std::string& host, int port) {
  redisAsyncContext* ac = address_.unix_socket ? redisAsyncConnectUnix(address_.path.c_str())
                                               : redisAsyncConnect(host.c_str(), port);
  if (ac == nullptr || ac->err) {
    LOG_ERROR("bridge", "redis %s: cannot connect: %s", role_.c_str(),
              ac ? ac->errstr : "out of memory");
    if (ac != nullptr) redisAsyncFree(ac);
    schedule_retry();
    return;
  }
  ac->data = this;
  redisLibeventAttach(ac, base_);
  if (address_.checks_role()) arm_watch(2000);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  context_ = ac;
}

void RedisConnection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after a failed connect.
    LOG_ERROR("bridge", "redis %s: connect failed: %s", self->role_.c_str(), ac->errstr);
    self->context_ = nullptr;
    self->schedule_retry();
    return;
  }
  // Commands queue in order, so AUTH and SELECT run before anything sent after them.
  if (!self->address_.password.empty()) {
    std::vector<std::string_view> args = {"AUTH"};
    if (!self->address_.username.empty()) args.push_back(self->address_.username);
    args.push_back(self->address_.password);
    self->ready_ = true;
    self->command(on_auth_reply, self, args);
  }
  if (self->address_.db != 0) {
    const std::string db = std::to_string(self->address_.db);
    self->ready_ = true;
    self->command(on_auth_reply, self, {"SELECT", db});
  }
  if (self->address_.checks_role()) {
    // Used only once it says it is the master (Sentinel may hand out an address that
    // was demoted meanwhile, or a restarted old master before it is reconfigured).
    self->ready_ = true;
    self->role_outstanding_ = true;
    self->command(on_role_reply, self, {"ROLE"});
    self->ready_ = false;
    return;
  }
  self->become_ready();
}

void RedisConnection::become_ready() {
  LOG_INFO("bridge", "redis %s: connected", role_.c_str());
  ready_ = true;
  attempts_ = 0;
  announced_ = true;
  if (on_ready_) on_ready_();
}

namespace {

bool is_master_role(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
         r->element[0]->type == REDIS_REPLY_STRING &&
         std::string_view(r->element[0]->str, r->element[0]->len) == "master";
}

}  // namespace

void RedisConnection::on_role_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  auto* self = static_cast<RedisConnection*>(privdata);
  if (r == nullptr || ac->data == nullptr || self->context_ != ac) return;
  self->role_outstanding_ = false;
  if (!is_master_role(r)) {
    // (A cluster node given as a seed may be a replica: the slot map sorts that out.)
    if (self->address_.uses_sentinel())
      LOG_WARN("bridge", "redis %s: %s is not the master (any more); looking it up again",
               self->role_.c_str(), ac->c.tcp.host ? ac->c.tcp.host : "the node");
    else
      LOG_INFO("bridge", "redis %s: not a master (any more)", self->role_.c_str());
    // The sentinel that named it may be cut off from the others: ask another one.
    ++self->sentinel_index_;
    redisAsyncDisconnect(ac);
    return;
  }
  if (!self->ready_) self->become_ready();
  if (self->subscriber_)
    evtimer_del(self->watch_event_);
  else
    self->arm_watch(1000);
}

void RedisConnection::on_auth_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  auto* self = static_cast<RedisConnection*>(privdata);
  if (r == nullptr || ac->data == nullptr || r->type != REDIS_REPLY_ERROR) return;
  LOG_ERROR("bridge", "redis %s: AUTH/SELECT refused: %s", self->role_.c_str(), r->str);
  // Without the right credentials or database every later command would be wrong.
  redisAsyncDisconnect(ac);
}

void RedisConnection::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self == nullptr) return;
  self->context_ = nullptr;  // hiredis frees it after this callback
  self->connection_lost(status == REDIS_OK ? nullptr : ac->errstr);
}

void RedisConnection::connection_lost(const char* why) {
  ready_ = false;
  role_outstanding_ = false;
  evtimer_del(watch_event_);
  evtimer_del(reconnect_event_);
  if (stopped_) return;
  LOG_ERROR("bridge", "redis %s: connection lost%s%s", role_.c_str(), why ? ": " : "",
            why ? why : "");
  // Reported only when it had been reported up (a node refused by ROLE never was).
  const bool was_announced = announced_;
  announced_ = false;
  if (was_announced && on_lost_) on_lost_();
  schedule_retry();
}

void RedisConnection::schedule_retry() {
  if (!stopped_) arm_reconnect_backoff(retry_event_, attempts_);
}

void RedisConnection::on_retry(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RedisConnection*>(arg);
  if (!self->stopped_ && self->context_ == nullptr && self->sentinel_ == nullptr) self->connect();
}

bool RedisConnection::command(redisCallbackFn* callback, void* privdata,
                              const std::vector<std::string_view>& args) {
  if (!ready_ || context_ == nullptr) return false;
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return redisAsyncCommandArgv(context_, callback, privdata, static_cast<int>(args.size()),
                               argv.data(), lengths.data()) == REDIS_OK;
}

}  // namespace comet
