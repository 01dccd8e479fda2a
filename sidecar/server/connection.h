#pragma once
// One client TCP connection on a worker: reads and parses requests (keep-alive,
// pipelining), hands them to the router, and owns the session a long-lived request
// turns into. Freed only by the worker's reaper, never from inside a callback chain.

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include <memory>
#include <string_view>

#include "hub/message.h"
#include "server/client_port.h"
#include "server/session.h"

namespace comet {

namespace http {
class RequestParser;
struct Request;
}  // namespace http
class Worker;

class Connection final : public ClientPort {
 public:
  /** Takes ownership of fd (non-blocking, accepted). */
  Connection(Worker& worker, evutil_socket_t fd, bool peer_is_loopback);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /** Starts reading requests. */
  void start();

  Worker& worker() { return worker_; }

  // ClientPort (see server/client_port.h for each contract).
  void write(std::string_view bytes) override;
  void write_shared(const MessagePtr& message, std::string_view part) override;
  bool check_output_limit() override;
  bool output_congested() const override;
  void watch_drain() override;
  void begin_session(std::unique_ptr<Session> session) override;
  void end_session(bool keep_alive) override;
  void defer() override;
  void set_streaming(bool streaming) override;
  void set_read_timeout(ReadTimeout timeout) override;
  void pause_reading() override;
  void close_after_flush() override;
  void close_now(const char* why) override;
  bool closing() const override { return closing_; }
  bool peer_is_loopback() const override { return peer_is_loopback_; }

  /** The current session, if any. */
  Session* session() { return session_.get(); }
  /** Writes queued output straight to the socket (the worker calls it once per loop turn). */
  void flush_output();

  // Used by the worker.
  void run_deferred();
  void run_heartbeat();
  /** Goodbye to the client, then close after flushing (graceful stop). */
  void shutdown();
  Connection* prev_ = nullptr;
  Connection* next_ = nullptr;
  size_t streaming_slot_ = 0;
  bool streaming_ = false;
  bool deferred_ = false;

 private:
  static void on_readable(evutil_socket_t fd, short what, void* arg);
  static void on_writable(evutil_socket_t fd, short what, void* arg);

  void handle_input(std::string_view fresh);
  void handle_peer_eof();
  void process_requests(std::string_view fresh = {});
  /** Routes one parsed request; false when the loop over pipelined requests must stop. */
  bool handle_request(http::Request& request);
  void answer_parse_error();
  void set_reading(bool reading);
  /** One write of queued output; false (and closing) when the socket failed. */
  bool write_to_socket();
  /** After the client's EOF: a held session's read timeout runs on as a plain timer. */
  void keep_timeout_after_eof();
  void set_writing(bool writing, const timeval* timeout);
  void after_session_call();
  bool finish_ended_session();
  void handle_timeout();
  /** Which timer the read event runs with (nullptr = none). */
  void use_read_timeout(const timeval* timeout);

  Worker& worker_;
  evutil_socket_t fd_;
  // Own events and buffers instead of a bufferevent: a socket bufferevent asks the
  // kernel how much is readable (ioctl FIONREAD) before every read, a third of the
  // syscalls of a poll request; we read into the worker's scratch buffer instead.
  event read_event_;
  event write_event_;
  evbuffer* input_;
  evbuffer* output_;
  const timeval* read_timeout_ = nullptr;
  std::unique_ptr<http::RequestParser> parser_;
  std::unique_ptr<Session> session_;
  // A request (or a parse error) that arrived while a session taking pipelined requests
  // was busy and is not one it takes: handled once that session ends.
  std::unique_ptr<http::Request> parked_;
  bool parked_error_ = false;
  bool peer_is_loopback_;
  bool closing_ = false;
  bool flushing_ = false;
  bool session_ended_ = false;
  bool keep_alive_after_session_ = false;
  bool request_started_ = false;
  bool drain_watch_ = false;
  bool shutting_down_ = false;
  bool peer_eof_ = false;  // the client half-closed: answer what it sent, then close
  bool reading_ = false;
  bool write_pending_ = false;  // the kernel took less than we had: write_event_ writes the rest

 public:
  // Used by the worker's flush list.
  bool dirty_ = false;
  size_t dirty_slot_ = 0;

 private:
  void output_progress();
};

}  // namespace comet
