#include "bridge/redis_push_connection.h"

#include <event2/buffer.h>

#include "bridge/cluster_slots.h"
#include "bridge/reconnect_backoff.h"
#include "util/log.h"

namespace comet {
namespace {

bool is_pong(const redisReply* r) {
  auto is = [](const redisReply* s) {
    return s != nullptr && (s->type == REDIS_REPLY_STATUS || s->type == REDIS_REPLY_STRING) &&
           std::string_view(s->str, s->len) == (s->type == REDIS_REPLY_STATUS ? "PONG" : "pong");
  };
  // "+PONG" outside pub/sub mode, ["pong", ""] inside it.
  return is(r) || (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && is(r->element[0]));
}

}  // namespace

RedisPushConnection::RedisPushConnection(event_base* base, std::string host, int port,
                                         std::string username, std::string password)
    : base_(base),
      host_(std::move(host)),
      port_(port),
      username_(std::move(username)),
      password_(std::move(password)),
      name_(node_name(host_, port_)) {
  tick_event_ = event_new(base_, -1, 0, on_tick, this);
  retry_event_ = evtimer_new(base_, on_retry, this);
}

RedisPushConnection::~RedisPushConnection() {
  stop();
  event_free(tick_event_);
  event_free(retry_event_);
}

void RedisPushConnection::set_handlers(std::function<void()> on_ready,
                                       std::function<void(const redisReply*)> on_reply,
                                       std::function<void()> on_lost) {
  on_ready_ = std::move(on_ready);
  on_reply_ = std::move(on_reply);
  on_lost_ = std::move(on_lost);
}

void RedisPushConnection::start() {
  stopped_ = false;
  connect();
}

void RedisPushConnection::stop() {
  stopped_ = true;
  ready_ = false;
  evtimer_del(tick_event_);
  evtimer_del(retry_event_);
  if (bev_ != nullptr) bufferevent_free(bev_);
  bev_ = nullptr;
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = nullptr;
}

void RedisPushConnection::connect() {
  bev_ = bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE);
  reader_ = redisReaderCreate();
  pings_outstanding_ = 0;
  awaiting_auth_ = false;
  bufferevent_setcb(bev_, on_read, nullptr, on_event, this);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  timeval deadline{2, 0};
  evtimer_add(tick_event_, &deadline);
  // No DNS base: a name is resolved at once (cluster nodes announce addresses).
  if (bufferevent_socket_connect_hostname(bev_, nullptr, AF_UNSPEC, host_.c_str(), port_) != 0)
    drop("cannot connect");
}

void RedisPushConnection::on_event(bufferevent*, short what, void* arg) {
  auto* self = static_cast<RedisPushConnection*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    self->connected();
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
    self->drop(what & BEV_EVENT_EOF ? "closed by the server" : "socket error");
}

void RedisPushConnection::connected() {
  if (password_.empty()) {
    become_ready();
    return;
  }
  std::vector<std::string_view> auth = {"AUTH"};
  if (!username_.empty()) auth.push_back(username_);
  auth.push_back(password_);
  awaiting_auth_ = true;
  write_command(auth);
}

void RedisPushConnection::become_ready() {
  LOG_INFO("bridge", "redis shard subscriber %s: connected", name_.c_str());
  ready_ = true;
  attempts_ = 0;
  timeval second{1, 0};
  evtimer_add(tick_event_, &second);
  if (on_ready_) on_ready_();
}

void RedisPushConnection::on_tick(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RedisPushConnection*>(arg);
  if (self->stopped_ || self->bev_ == nullptr) return;
  if (!self->ready_) {
    self->drop("no connection within 2 s");
    return;
  }
  if (self->pings_outstanding_ >= 2) {
    self->drop("no answer to PING within 2 s");
    return;
  }
  ++self->pings_outstanding_;
  self->write_command({"PING"});
  timeval second{1, 0};
  evtimer_add(self->tick_event_, &second);
}

void RedisPushConnection::on_read(bufferevent* bev, void* arg) {
  auto* self = static_cast<RedisPushConnection*>(arg);
  evbuffer* input = bufferevent_get_input(bev);
  const size_t n = evbuffer_get_length(input);
  if (redisReaderFeed(self->reader_, reinterpret_cast<const char*>(evbuffer_pullup(input, -1)),
                      n) != REDIS_OK) {
    self->drop("reader error");
    return;
  }
  evbuffer_drain(input, n);
  for (;;) {
    void* reply = nullptr;
    if (self->reader_ == nullptr) return;  // dropped by a handler
    if (redisReaderGetReply(self->reader_, &reply) != REDIS_OK) {
      self->drop("protocol error");
      return;
    }
    if (reply == nullptr) return;
    auto* r = static_cast<redisReply*>(reply);
    if (self->awaiting_auth_) {
      self->awaiting_auth_ = false;
      if (r->type == REDIS_REPLY_ERROR) {
        LOG_ERROR("bridge", "redis shard subscriber %s: AUTH refused: %s", self->name_.c_str(),
                  r->str);
        freeReplyObject(r);
        self->drop("AUTH refused");
        return;
      }
      freeReplyObject(r);
      self->become_ready();
      continue;
    }
    if (self->pings_outstanding_ > 0 && is_pong(r)) {
      --self->pings_outstanding_;
    } else if (self->on_reply_) {
      self->on_reply_(r);
    }
    freeReplyObject(r);
  }
}

bool RedisPushConnection::send(const std::vector<std::string_view>& args) {
  if (!ready_) return false;
  return write_command(args);
}

bool RedisPushConnection::write_command(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* command = nullptr;
  const int length =
      redisFormatCommandArgv(&command, static_cast<int>(args.size()), argv.data(), lengths.data());
  if (length < 0) return false;
  const bool ok = bufferevent_write(bev_, command, static_cast<size_t>(length)) == 0;
  redisFreeCommand(command);
  return ok;
}

void RedisPushConnection::drop(const char* why) {
  const bool was_ready = ready_;
  ready_ = false;
  evtimer_del(tick_event_);
  if (bev_ != nullptr) bufferevent_free(bev_);
  bev_ = nullptr;
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = nullptr;
  if (stopped_) return;
  LOG_ERROR("bridge", "redis shard subscriber %s: connection lost: %s", name_.c_str(), why);
  if (was_ready && on_lost_) on_lost_();
  schedule_retry();
}

void RedisPushConnection::schedule_retry() {
  if (!stopped_) arm_reconnect_backoff(retry_event_, attempts_);
}

void RedisPushConnection::on_retry(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RedisPushConnection*>(arg);
  if (!self->stopped_ && self->bev_ == nullptr) self->connect();
}

}  // namespace comet
