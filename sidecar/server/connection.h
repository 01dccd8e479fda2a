#pragma once
// One client TCP connection on a worker: the socket and its output, the session a
// long-lived request turns into, and an HTTP/1 reader (server/http1_reader.h) that
// parses requests and owns pipelining. Implements the ClientPort sessions write
// through. Freed only by the worker's reaper, never from inside a callback chain.

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include <memory>
#include <string_view>

#include "hub/message.h"
#include "server/client_port.h"
#include "server/connection_limits.h"
#include "server/http1_reader.h"
#include "server/session.h"
#include "tls/tls_offload.h"

namespace comet {

class Worker;

class Connection final : public ClientPort, public RequestSink {
 public:
  /** Takes ownership of fd (non-blocking, accepted) and of `tls` (null: plain TCP). */
  Connection(Worker& worker, evutil_socket_t fd, bool peer_is_loopback, bool on_publish_listener,
             Admission admission = Admission::kExempt, uint32_t peer_key = 0, SSL* tls = nullptr);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /** Starts reading requests. */
  void start();

  // ClientPort (see server/client_port.h for each contract).
  void write(std::string_view bytes) override;
  void write_shared(const MessagePtr& message, std::string_view part) override;
  bool check_output_limit() override;
  bool output_congested() const override;
  void watch_drain() override;
  void begin_session(std::unique_ptr<Session> session) override;
  bool serving(const Session* session) const override { return session_.get() == session; }
  void end_session(bool keep_alive) override;
  void defer() override;
  void set_streaming(bool streaming) override;
  void set_read_timeout(ReadTimeout timeout) override;
  void pause_reading() override;
  void close_after_flush() override;
  void close_now(const char* why) override;
  bool closing() const override { return state_ == State::kClosed; }
  bool peer_is_loopback() const override { return peer_is_loopback_; }
  bool on_publish_listener() const override { return on_publish_listener_; }
  bool over_connection_limit() const override { return admission_ == Admission::kOverflow; }
  WorkerContext& worker() override;

  // RequestSink (see server/http1_reader.h): the reader's side.
  bool takes_requests() const override;
  bool ready_for_request() const override { return state_ == State::kOpen && session_ == nullptr; }
  bool in_session() const override { return session_ != nullptr; }
  bool can_take_now(const http::Request& request) const override;
  bool dispatch(http::Request& request) override;
  const http::ParserLimits& parser_limits() const override;

  // ---- for the worker ---------------------------------------------------------------
  /** Writes queued output straight to the socket (once per loop turn). */
  void flush_output();
  void run_deferred();
  void run_heartbeat();
  /** Unsent output bytes, sealed TLS records included (the worker's process-wide budget
      adds them up). */
  size_t unsent() const {
    return evbuffer_get_length(output_) + (tls_offloaded_ ? tls_offload_->unsent() : 0);
  }
  /** Cuts a slow reader (it reconnects and resumes from its cursor). */
  void cut_slow_reader(const char* why);
  /** Goodbye to the client, then close after flushing (graceful stop). */
  void shutdown();

 private:
  friend class Worker;  // its intrusive lists: links_ and in_lists_

  /**
   * The connection's life. A session may exist in kOpen (serving) and kFlushing (its
   * last bytes going out); none is created outside kOpen.
   */
  enum class State : uint8_t {
    kOpen,      // reading requests, or serving a session
    kFlushing,  // not reading; closes once queued output is written
    kClosed,    // freed by the worker at the end of this loop turn
  };
  /** What happens when a session that called end_session returns. */
  enum class SessionEnd : uint8_t { kNone, kKeepAlive, kClose };

  /** Where the worker keeps this connection in its lists (owned by the worker). */
  struct WorkerLinks {
    Connection* prev = nullptr;  // every live connection
    Connection* next = nullptr;
    uint32_t streaming_slot = 0;  // heartbeat list, while streaming
    uint32_t dirty_slot = 0;      // flush list, while dirty
  };
  /** Which of the worker's per-turn lists hold this connection (kept apart from
      WorkerLinks so these bytes fill padding beside the other small fields). */
  struct WorkerFlags {
    bool streaming : 1;
    bool deferred : 1;  // in the deferred list for this turn
    bool dirty : 1;     // in the flush list for this turn
    WorkerFlags() : streaming(false), deferred(false), dirty(false) {}
  };

  static void on_readable(evutil_socket_t fd, short what, void* arg);
  static void on_writable(evutil_socket_t fd, short what, void* arg);
  /** Reads through TLS (the handshake first); the plain read is in on_readable. */
  void read_tls();
  /** After a TLS 1.3 handshake: moves to our record layer and frees the SSL. */
  void offload_tls();

  void handle_input(std::string_view fresh);
  void handle_peer_eof();
  void handle_timeout();
  /** Arms or disarms the read event (re-arming restarts its timeout). */
  void set_reading(bool reading);
  /**
   * While a request is partly received, its read timeout is a deadline from the
   * request's first byte (--request-timeout), not an idle timer that every byte restarts.
   */
  void arm_request_deadline();
  /**
   * Input backpressure: stops reading while the client leaves more than half of
   * --max-output-bytes unread; output_progress reads (and parses) again once it drains.
   */
  void wait_for_output_drain();
  void resume_input_after_drain();
  /** After the client's EOF: a held session's read timeout runs on as a plain timer. */
  void keep_timeout_after_eof();
  void set_writing(bool writing, const timeval* timeout);
  /** One write of queued output; false (and closed) when the socket failed. */
  bool write_to_socket();
  /** After a write: stop the write event, finish a flush, or call a drain watcher back. */
  void output_progress();
  /** After any call into the session: destroys it if it ended, then goes on reading. */
  void after_session_call();
  /** Destroys an ended session; true when the connection reads requests again. */
  bool finish_ended_session();

  // Members are ordered so the small ones fill what would be padding: every byte here
  // is paid once per subscriber (docs/performance.md measures it).
  Worker& worker_;
  evutil_socket_t fd_;
  State state_ = State::kOpen;
  SessionEnd session_end_ = SessionEnd::kNone;
  ReadTimeout read_timeout_ = ReadTimeout::kRequest;  // the worker holds the timevals
  Admission admission_;                               // how the connection limits took it in
  // Independent of the state (bit fields: one byte for all of them):
  bool peer_is_loopback_ : 1;
  bool on_publish_listener_ : 1;
  bool reading_ : 1;           // the read event is armed
  bool write_pending_ : 1;     // the kernel took less than we had: write_event_ writes the rest
  bool drain_watch_ : 1;       // call Session::on_drain once output falls to a quarter
  bool shutting_down_ : 1;     // the goodbye was sent
  bool input_waits_ : 1;       // not reading until the client takes its output in
  bool deadline_armed_ : 1;    // the read event times out at the request's deadline
  bool over_soft_limit_ : 1;   // over --max-output-soft-bytes at the last heartbeat
  bool tls_read_blocked_ : 1;  // TLS: a read (handshake) waits for the socket to be writable
  bool tls_offloaded_ : 1;     // TLS 1.3 after the handshake: tls_offload_, not tls_
  WorkerFlags in_lists_;
  uint32_t peer_key_;  // its address's key in the connection limits (0 = not counted)
  // Own events and buffers instead of a bufferevent: a socket bufferevent asks the
  // kernel how much is readable (ioctl FIONREAD) before every read, a third of the
  // syscalls of a poll request; we read into the worker's scratch buffer instead.
  event read_event_;
  event write_event_;
  evbuffer* output_;
  // TLS: OpenSSL during the handshake and for TLS 1.2, our record layer after a TLS 1.3
  // handshake (tls/tls_offload.h). One pointer either way: both null for plain TCP.
  union {
    SSL* tls_;
    TlsOffload* tls_offload_;  // owned, when tls_offloaded_
  };
  Http1Reader reader_;
  std::unique_ptr<Session> session_;
  WorkerLinks links_;
};

}  // namespace comet
