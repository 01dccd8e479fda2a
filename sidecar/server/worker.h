#pragma once
// A worker: one thread, one event_base, its own SO_REUSEPORT listener, its own hub
// slice, its link to the bus and its connections. Nothing on the delivery path is
// shared with other workers; messages arrive through the bus link.

#include <event2/event.h>
#include <event2/listener.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "http/request_parser.h"
#include "hub/hub.h"
#include "presence/presence_link.h"
#include "server/client_port.h"
#include "server/session.h"
#include "server/shared_state.h"
#include "server/worker_context.h"
#include "util/loop_wakeup.h"

namespace comet {

class Connection;

class Worker {
 public:
  /** Connects to the bus through shared.bus (which must be set). */
  Worker(int index, SharedState& shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /**
   * Binds the listener (SO_REUSEPORT, so every worker can bind the same port).
   * Returns the bound port, or 0 with `error` set.
   */
  uint16_t listen(const std::string& host, uint16_t port, std::string& error);
  /** Binds the internal publish listener (--publish-listen) the same way. */
  uint16_t listen_publish(const std::string& host, uint16_t port, std::string& error);

  /** Runs the event loop until stop(); call on the worker's own thread. */
  void run();
  /** Asks the loop to close every connection and return. Callable from any thread. */
  void stop();
  event_base* base() { return base_; }
  SharedState& shared() { return shared_; }
  const Config& config() const { return shared_.config; }
  Hub& hub() { return hub_; }
  int index() const { return index_; }
  /** What sessions and transports use of this worker (config, hub, bus, counters). */
  WorkerContext& context() { return context_; }

  /** Runs conn->run_deferred() at the end of this loop turn. */
  void defer(Connection* conn);
  /**
   * Queues conn for a direct write of its output after the events of this loop turn
   * that are already due (one write per connection per turn, however many messages).
   */
  void mark_dirty(Connection* conn);
  /** Frees conn at the end of this loop turn (after deferred work). */
  void schedule_close(Connection* conn);
  /** Destroys a replaced session at the end of this loop turn (it may be on the stack). */
  void retire_session(std::unique_ptr<Session> session);
  void add_streaming(Connection* conn);
  void remove_streaming(Connection* conn);

  /** Scratch space for socket reads; valid until the next read on this worker. */
  struct ReadBuffer {
    char* data;
    size_t size;
  };
  ReadBuffer read_buffer() { return {read_buffer_.get(), kReadBufferSize}; }

  /** Shared ("common") timeouts: libevent keeps one queue per duration, O(1) per connection. */
  const timeval* request_timeout() const { return request_timeout_; }
  /** The shared timeout for `which` (nullptr for kNone). */
  const timeval* read_timeout(ReadTimeout which) const;
  /** Request parser limits from the config, shared by this worker's connections. */
  const http::ParserLimits& parser_limits() const { return parser_limits_; }

 private:
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void on_accept_publish(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len,
                                void* arg);
  void accept_connection(evutil_socket_t fd, sockaddr* addr, bool publish_listener);
  evconnlistener* bind_listener(const std::string& host, uint16_t port, evconnlistener_cb on_accept,
                                uint16_t& bound_port, std::string& error);
  static void on_accept_error(evconnlistener*, void* arg);
  static void on_housekeeping(evutil_socket_t, short, void* arg);
  static void on_heartbeat(evutil_socket_t, short, void* arg);
  static void on_sweep(evutil_socket_t, short, void* arg);
  /**
   * Once a second: adds up this worker's unsent output for the process-wide budget
   * (--max-output-total-bytes), cuts its slowest readers while the process is over it,
   * and gives freed memory back to the system (malloc_trim) after connections closed.
   */
  static void on_output_budget(evutil_socket_t, short, void* arg);
  static void on_resume_accept(evutil_socket_t, short, void* arg);
  static void on_flush(evutil_socket_t, short, void* arg);

  void begin_drain();
  void close_all();
  void free_connection(Connection* conn);

  int index_;
  SharedState& shared_;
  Hub hub_;
  event_base* base_ = nullptr;
  std::unique_ptr<Bus> bus_;  // this worker's link to the bus; before the base is freed
  WorkerContext context_;
  evconnlistener* listener_ = nullptr;
  evconnlistener* publish_listener_ = nullptr;
  std::unique_ptr<AuthUrlClient> auth_url_;  // when --auth-url is set
  std::unique_ptr<PresenceLink> presence_;   // when shared.presence is set
  std::vector<std::unique_ptr<Session>> retired_sessions_;
  std::unique_ptr<LoopWakeup> stop_wakeup_;  // Worker::stop() from the main thread
  event* housekeeping_event_ = nullptr;
  event* heartbeat_event_ = nullptr;
  event* sweep_event_ = nullptr;
  event* budget_event_ = nullptr;
  size_t reported_unsent_ = 0;    // this worker's share in counters.unsent_bytes
  size_t closed_since_trim_ = 0;  // connections freed since the last malloc_trim
  event* resume_accept_event_ = nullptr;
  event* flush_event_ = nullptr;
  std::vector<Connection*> dirty_;
  std::vector<Connection*> flush_batch_;  // swapped with dirty_ so neither reallocates
  static constexpr size_t kReadBufferSize = 64 * 1024;
  std::unique_ptr<char[]> read_buffer_{new char[kReadBufferSize]};
  const timeval* request_timeout_ = nullptr;
  const timeval* poll_timeout_ = nullptr;
  const timeval* ws_idle_timeout_ = nullptr;
  http::ParserLimits parser_limits_;

  std::atomic<bool> stopping_{false};
  bool draining_ = false;

  Connection* connections_ = nullptr;  // intrusive list of every live connection
  size_t connection_count_ = 0;
  std::vector<Connection*> streaming_;
  static constexpr uint64_t kHeartbeatTickMs = 100;
  uint64_t heartbeat_slices_ = 1;  // ticks per heartbeat interval
  uint64_t heartbeat_tick_ = 0;    // position in the interval, 0 .. heartbeat_slices_ - 1
  size_t heartbeat_next_ = 0;      // where the next tick's share starts in streaming_
  std::vector<Connection*> deferred_;
  std::vector<Connection*> graveyard_;
};

}  // namespace comet
