#include "bridge/redis_connection.h"

#include <hiredis/adapters/libevent.h>

#include <random>

#include "util/log.h"

namespace comet {

RedisConnection::RedisConnection(event_base* base, const RedisAddress& address, std::string role)
    : base_(base), address_(address), role_(std::move(role)) {
  retry_event_ = evtimer_new(base_, on_retry, this);
}

RedisConnection::~RedisConnection() {
  stop();
  event_free(retry_event_);
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
  evtimer_del(retry_event_);
  if (context_ != nullptr) {
    redisAsyncContext* ac = context_;
    context_ = nullptr;
    ac->data = nullptr;  // its callbacks must not touch us any more
    redisAsyncFree(ac);
  }
}

void RedisConnection::connect() {
  redisAsyncContext* ac = address_.unix_socket
                              ? redisAsyncConnectUnix(address_.path.c_str())
                              : redisAsyncConnect(address_.host.c_str(), address_.port);
  if (ac == nullptr || ac->err) {
    LOG_ERROR("bridge", "redis %s: cannot connect: %s", role_.c_str(),
              ac ? ac->errstr : "out of memory");
    if (ac != nullptr) redisAsyncFree(ac);
    schedule_retry();
    return;
  }
  ac->data = this;
  redisLibeventAttach(ac, base_);
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
  LOG_INFO("bridge", "redis %s: connected", self->role_.c_str());
  self->ready_ = true;
  self->attempts_ = 0;
  if (self->on_ready_) self->on_ready_();
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
  self->ready_ = false;
  if (self->stopped_) return;
  LOG_ERROR("bridge", "redis %s: connection lost%s%s", self->role_.c_str(),
            status == REDIS_OK ? "" : ": ", status == REDIS_OK ? "" : ac->errstr);
  if (self->on_lost_) self->on_lost_();
  self->schedule_retry();
}

void RedisConnection::schedule_retry() {
  if (stopped_) return;
  // 100 ms doubling to 5 s, each delay jittered to 50-100% so that many workers and
  // sidecars do not reconnect in lockstep after a Redis restart.
  static thread_local std::mt19937 rng{std::random_device{}()};
  const int64_t cap = std::min<int64_t>(5000, 100LL << std::min(attempts_, 6));
  const int64_t delay = std::uniform_int_distribution<int64_t>(cap / 2, cap)(rng);
  ++attempts_;
  timeval tv{static_cast<time_t>(delay / 1000), static_cast<suseconds_t>((delay % 1000) * 1000)};
  evtimer_add(retry_event_, &tv);
}

void RedisConnection::on_retry(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RedisConnection*>(arg);
  if (!self->stopped_ && self->context_ == nullptr) self->connect();
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
