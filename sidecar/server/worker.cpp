#include "server/worker.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cstring>

#include "server/connection.h"
#include "util/log.h"

namespace comet {
namespace {

timeval to_timeval(int64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

bool is_loopback(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return addr->sa_family == AF_UNIX;
}

}  // namespace

Worker::Worker(int index, SharedState& shared)
    : index_(index),
      shared_(shared),
      hub_(HubLimits{shared.config.history_size, shared.config.history_age_ms}),
      base_(event_base_new()),
      bus_(shared.bus->connect_worker(base_, hub_)),
      context_{shared, hub_, *bus_} {
  const Config& c = shared_.config;
  timeval tv = to_timeval(c.request_timeout_ms);
  request_timeout_ = event_base_init_common_timeout(base_, &tv);
  parser_limits_.max_header_bytes = c.max_header_bytes;
  parser_limits_.max_url_bytes = c.max_url_bytes;
  parser_limits_.max_body_bytes = c.max_message_bytes;
  parser_limits_.require_host = true;
  tv = to_timeval(c.poll_timeout_ms);
  poll_timeout_ = event_base_init_common_timeout(base_, &tv);
  // A WebSocket peer answers our pings, so three silent heartbeats mean it is gone.
  tv = to_timeval(c.heartbeat_ms * 3);
  ws_idle_timeout_ = event_base_init_common_timeout(base_, &tv);

  // The wake-up is used for stopping only (the bus link has its own).
  stop_wakeup_ = std::make_unique<LoopWakeup>(base_, [this] {
    if (stopping_.load()) begin_drain();
  });
  housekeeping_event_ = event_new(base_, -1, 0, on_housekeeping, this);
  // Heartbeats are spread over the interval (a slice of the streams every tick): 100K
  // pings written in one loop turn would stall every delivery behind them for a second.
  const uint64_t tick_ms = std::min<uint64_t>(c.heartbeat_ms, kHeartbeatTickMs);
  heartbeat_slices_ = std::max<uint64_t>(1, c.heartbeat_ms / tick_ms);
  heartbeat_event_ = event_new(base_, -1, EV_PERSIST, on_heartbeat, this);
  tv = to_timeval(tick_ms);
  event_add(heartbeat_event_, &tv);
  budget_event_ = event_new(base_, -1, EV_PERSIST, on_output_budget, this);
  tv = to_timeval(1000);
  event_add(budget_event_, &tv);
  sweep_event_ = event_new(base_, -1, EV_PERSIST, on_sweep, this);
  tv = to_timeval(10 * 1000);
  event_add(sweep_event_, &tv);
  resume_accept_event_ = event_new(base_, -1, 0, on_resume_accept, this);
  flush_event_ = event_new(base_, -1, 0, on_flush, this);
  if (!c.auth_url.empty()) {
    auth_url_ = std::make_unique<AuthUrlClient>(base_, c);
    context_.auth_url = auth_url_.get();
  }
  if (shared.presence != nullptr) {
    presence_ = std::make_unique<PresenceLink>(*shared.presence, base_, hub_);
    context_.presence = presence_.get();
  }
}

Worker::~Worker() {
  close_all();
  retired_sessions_.clear();
  auth_url_.reset();  // after the sessions that may hold its questions
  presence_.reset();  // after the sessions (they leave the registry), before the base
  bus_.reset();       // before the event base its connections and events live on
  if (listener_ != nullptr) evconnlistener_free(listener_);
  if (publish_listener_ != nullptr) evconnlistener_free(publish_listener_);
  stop_wakeup_.reset();
  event_free(housekeeping_event_);
  event_free(heartbeat_event_);
  event_free(sweep_event_);
  event_free(budget_event_);
  shared_.counters.unsent_bytes.fetch_sub(reported_unsent_, std::memory_order_relaxed);
  event_free(resume_accept_event_);
  event_free(flush_event_);
  event_base_free(base_);
}

evconnlistener* Worker::bind_listener(const std::string& host, uint16_t port,
                                      evconnlistener_cb on_accept_cb, uint16_t& bound_port,
                                      std::string& error) {
  sockaddr_storage storage{};
  int len = 0;
  const std::string address = host.find(':') != std::string::npos
                                  ? "[" + host + "]:" + std::to_string(port)
                                  : host + ":" + std::to_string(port);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    error = "cannot parse listen address '" + address + "' (use a numeric IPv4 or IPv6 address)";
    return nullptr;
  }
  evconnlistener* listener = evconnlistener_new_bind(
      base_, on_accept_cb, this,
      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
      4096, reinterpret_cast<sockaddr*>(&storage), len);
  if (listener == nullptr) {
    error = "cannot listen on " + address + ": " + strerror(errno);
    return nullptr;
  }
  evconnlistener_set_error_cb(listener, on_accept_error);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  getsockname(evconnlistener_get_fd(listener), reinterpret_cast<sockaddr*>(&bound), &bound_len);
  bound_port = bound.ss_family == AF_INET6
                   ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                   : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return listener;
}

uint16_t Worker::listen(const std::string& host, uint16_t port, std::string& error) {
  uint16_t bound = 0;
  listener_ = bind_listener(host, port, on_accept, bound, error);
  return listener_ != nullptr ? bound : 0;
}

uint16_t Worker::listen_publish(const std::string& host, uint16_t port, std::string& error) {
  uint16_t bound = 0;
  publish_listener_ = bind_listener(host, port, on_accept_publish, bound, error);
  return publish_listener_ != nullptr ? bound : 0;
}

void Worker::run() {
  bus_->start();
  event_base_dispatch(base_);
}

void Worker::stop() {
  stopping_.store(true);
  stop_wakeup_->wake();
}

const timeval* Worker::read_timeout(ReadTimeout which) const {
  switch (which) {
    case ReadTimeout::kNone:
      return nullptr;
    case ReadTimeout::kRequest:
      return request_timeout_;
    case ReadTimeout::kPoll:
      return poll_timeout_;
    case ReadTimeout::kWebSocketIdle:
      return ws_idle_timeout_;
  }
  return nullptr;
}

void Worker::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
  static_cast<Worker*>(arg)->accept_connection(fd, addr, false);
}

void Worker::on_accept_publish(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int,
                               void* arg) {
  static_cast<Worker*>(arg)->accept_connection(fd, addr, true);
}

void Worker::accept_connection(evutil_socket_t fd, sockaddr* addr, bool publish_listener) {
  Worker* self = this;
  uint32_t peer_key = 0;
  Admission admission = Admission::kExempt;
  if (!publish_listener && shared_.limits != nullptr) {
    admission = shared_.limits->admit(addr, peer_key);
    if (admission == Admission::kRefused) {
      // Over a cap and its overflow band: close at once, never queue or spin.
      evutil_closesocket(fd);
      return;
    }
  }
  // Push messages are small and latency matters more than packet count.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // The kernel's send buffer grows to 4 MiB per socket on its own, outside every output
  // limit: a reader that stops would hold that much kernel memory each. Capped at the
  // output limit (the kernel doubles the value given).
  const int sndbuf = static_cast<int>(
      std::min<size_t>(std::max<size_t>(config().max_output_bytes / 2, 64 * 1024), 1 << 30));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  // TLS on the public listener (the publish listener stays plain: loopback, internal).
  SSL* tls = nullptr;
  if (!publish_listener && shared_.tls != nullptr) {
    tls = shared_.tls->accept(fd);
    if (tls == nullptr) {
      LOG_ERROR("server", "cannot start TLS on an accepted connection (out of memory?)");
      if (shared_.limits != nullptr) shared_.limits->release(admission, peer_key);
      evutil_closesocket(fd);
      return;
    }
  }
  auto* conn =
      new Connection(*self, fd, is_loopback(addr), publish_listener, admission, peer_key, tls);
  conn->links_.next = self->connections_;
  if (self->connections_ != nullptr) self->connections_->links_.prev = conn;
  self->connections_ = conn;
  ++self->connection_count_;
  self->shared_.counters.connections.fetch_add(1, std::memory_order_relaxed);
  conn->start();
}

void Worker::on_accept_error(evconnlistener* listener, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  const int err = EVUTIL_SOCKET_ERROR();
  LOG_WARN("server", "accept failed: %s; pausing accepts for 1s",
           evutil_socket_error_to_string(err));
  // Usually EMFILE: stop accepting for a moment instead of spinning on the listener.
  evconnlistener_disable(listener);
  timeval tv = to_timeval(1000);
  event_add(self->resume_accept_event_, &tv);
}

void Worker::on_resume_accept(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  if (self->stopping_.load()) return;
  if (self->listener_ != nullptr) evconnlistener_enable(self->listener_);
  if (self->publish_listener_ != nullptr) evconnlistener_enable(self->publish_listener_);
}

void Worker::defer(Connection* conn) {
  if (conn->in_lists_.deferred) return;
  conn->in_lists_.deferred = true;
  deferred_.push_back(conn);
  event_active(housekeeping_event_, 0, 0);
}

void Worker::mark_dirty(Connection* conn) {
  if (conn->in_lists_.dirty) return;
  conn->in_lists_.dirty = true;
  conn->links_.dirty_slot = static_cast<uint32_t>(dirty_.size());
  dirty_.push_back(conn);
  // Activated events run in order, so this runs after every event already due in this
  // turn (the epoll batch that caused these writes) and batches their output.
  if (dirty_.size() == 1) event_active(flush_event_, 0, 0);
}

void Worker::on_flush(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  std::vector<Connection*>& batch = self->flush_batch_;
  batch.swap(self->dirty_);
  for (Connection* conn : batch) {
    if (conn == nullptr) continue;  // freed meanwhile
    conn->in_lists_.dirty = false;
    conn->flush_output();
  }
  batch.clear();
}

void Worker::retire_session(std::unique_ptr<Session> session) {
  retired_sessions_.push_back(std::move(session));
  event_active(housekeeping_event_, 0, 0);
}

void Worker::schedule_close(Connection* conn) {
  graveyard_.push_back(conn);
  event_active(housekeeping_event_, 0, 0);
}

void Worker::on_housekeeping(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  // Deferred work may defer or close more connections; loop until both lists are empty.
  while (!self->deferred_.empty() || !self->graveyard_.empty()) {
    std::vector<Connection*> batch;
    batch.swap(self->deferred_);
    for (Connection* conn : batch) {
      conn->in_lists_.deferred = false;
      if (!conn->closing()) conn->run_deferred();
    }
    std::vector<Connection*> dead;
    dead.swap(self->graveyard_);
    for (Connection* conn : dead) self->free_connection(conn);
    self->retired_sessions_.clear();
  }
}

void Worker::free_connection(Connection* conn) {
  if (conn->in_lists_.streaming) remove_streaming(conn);
  if (conn->in_lists_.dirty) dirty_[conn->links_.dirty_slot] = nullptr;
  if (conn->links_.prev != nullptr)
    conn->links_.prev->links_.next = conn->links_.next;
  else
    connections_ = conn->links_.next;
  if (conn->links_.next != nullptr) conn->links_.next->links_.prev = conn->links_.prev;
  --connection_count_;
  ++closed_since_trim_;
  shared_.counters.connections.fetch_sub(1, std::memory_order_relaxed);
  if (shared_.limits != nullptr) shared_.limits->release(conn->admission_, conn->peer_key_);
  delete conn;
  if (draining_ && connection_count_ == 0) event_base_loopbreak(base_);
}

void Worker::add_streaming(Connection* conn) {
  conn->in_lists_.streaming = true;
  conn->links_.streaming_slot = static_cast<uint32_t>(streaming_.size());
  streaming_.push_back(conn);
}

void Worker::remove_streaming(Connection* conn) {
  Connection* moved = streaming_.back();
  streaming_[conn->links_.streaming_slot] = moved;
  moved->links_.streaming_slot = conn->links_.streaming_slot;
  streaming_.pop_back();
  conn->in_lists_.streaming = false;
}

void Worker::on_heartbeat(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  const size_t total = self->streaming_.size();
  if (total == 0) return;
  // This tick's share, walking round the list. Streams that join or leave meanwhile
  // shift the list (swap-removal), so one may now and then wait a tick longer or get a
  // second heartbeat; both are harmless. A heartbeat may cut off a slow reader, which
  // only marks it closing: the list itself changes only in housekeeping.
  const uint64_t tick = self->heartbeat_tick_;
  self->heartbeat_tick_ = (tick + 1) % self->heartbeat_slices_;
  const size_t share =
      (tick + 1) * total / self->heartbeat_slices_ - tick * total / self->heartbeat_slices_;
  for (size_t k = 0; k < share; ++k) {
    if (self->heartbeat_next_ >= total) self->heartbeat_next_ = 0;
    Connection* conn = self->streaming_[self->heartbeat_next_++];
    if (!conn->closing()) conn->run_heartbeat();
  }
}

#if defined(__SANITIZE_ADDRESS__)
// From the sanitizer runtime (sanitizer/allocator_interface.h, which GCC does not ship).
extern "C" void __sanitizer_purge_allocator();
#endif

namespace {

// ASan replaces malloc: glibc's malloc_trim would then set up glibc's own (unused)
// allocator lazily, racily between workers; ASan's allocator has its own purge.
void give_memory_back() {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_purge_allocator();
#else
  malloc_trim(0);
#endif
}

}  // namespace

void Worker::on_output_budget(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  Counters& counters = self->shared_.counters;
  size_t mine = 0;
  for (Connection* c = self->connections_; c != nullptr; c = c->links_.next) mine += c->unsent();
  counters.unsent_bytes.fetch_add(mine - self->reported_unsent_, std::memory_order_relaxed);
  self->reported_unsent_ = mine;

  const size_t budget = self->config().max_output_total_bytes;
  const size_t total = counters.unsent_bytes.load(std::memory_order_relaxed);
  if (budget != 0 && total > budget) {
    // Over the process budget: this worker sheds its share, slowest readers (the most
    // unsent) first. They reconnect and resume from their cursors: nothing is lost.
    const size_t share = budget / static_cast<size_t>(std::max(1, self->config().workers));
    std::vector<Connection*> backlog;
    for (Connection* c = self->connections_; c != nullptr; c = c->links_.next)
      if (!c->closing() && c->unsent() > 0) backlog.push_back(c);
    std::sort(backlog.begin(), backlog.end(),
              [](const Connection* a, const Connection* b) { return a->unsent() > b->unsent(); });
    for (Connection* c : backlog) {
      if (mine <= share) break;
      mine -= c->unsent();
      counters.output_budget_cuts.fetch_add(1, std::memory_order_relaxed);
      c->cut_slow_reader("over --max-output-total-bytes, the slowest reader first");
    }
  }
  // Freed buffers stay in malloc's arenas (RSS never falls after a burst of slow
  // readers) unless given back; a trim costs a walk of the heap, so only after frees.
  if (self->closed_since_trim_ >= 64 || (self->closed_since_trim_ > 0 && mine == 0)) {
    self->closed_since_trim_ = 0;
    give_memory_back();
    counters.memory_trims.fetch_add(1, std::memory_order_relaxed);
  }
}

void Worker::on_sweep(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->hub_.sweep(monotonic_ms());
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  // Close the listening sockets, not just stop accepting: a connection the kernel would
  // still complete on them would be reset unanswered at exit, which a proxy cannot
  // safely retry for a publish; a refused connect it retries on another instance.
  if (listener_ != nullptr) evconnlistener_free(listener_);
  if (publish_listener_ != nullptr) evconnlistener_free(publish_listener_);
  listener_ = nullptr;
  publish_listener_ = nullptr;
  for (Connection* conn = connections_; conn != nullptr; conn = conn->links_.next) conn->shutdown();
  if (connection_count_ == 0) {
    event_base_loopbreak(base_);
    return;
  }
  // Goodbyes get this long to reach clients; whatever is left is closed by close_all().
  timeval deadline = to_timeval(1000);
  event_base_loopexit(base_, &deadline);
}

void Worker::close_all() {
  if (listener_ != nullptr) evconnlistener_disable(listener_);
  if (publish_listener_ != nullptr) evconnlistener_disable(publish_listener_);
  for (Connection* conn = connections_; conn != nullptr; conn = conn->links_.next) conn->shutdown();
  on_housekeeping(-1, 0, this);
  while (connections_ != nullptr) free_connection(connections_);
}

}  // namespace comet
