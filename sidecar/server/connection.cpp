#include "server/connection.h"

#include <event2/buffer.h>
#include <sys/socket.h>

#include <cerrno>

#include "http/response.h"
#include "server/router.h"
#include "server/worker.h"
#include "tls/tls_io.h"
#include "util/log.h"

namespace comet {
namespace {

// Messages below this size are copied into the socket buffer: a copy of a few hundred
// bytes costs less than the chain allocation and reference count of a shared reference.
constexpr size_t kShareThreshold = 16 * 1024;

void release_shared(const void*, size_t, void* extra) { delete static_cast<MessagePtr*>(extra); }

// event_add with a null timeout keeps a timeout set earlier; clear it explicitly.
void add_event(event* ev, const timeval* timeout) {
  event_add(ev, timeout);
  if (timeout == nullptr) event_remove_timer(ev);
}

}  // namespace

Connection::Connection(Worker& worker, evutil_socket_t fd, bool peer_is_loopback,
                       bool on_publish_listener, Admission admission, uint32_t peer_key, SSL* tls)
    : worker_(worker),
      fd_(fd),
      admission_(admission),
      peer_is_loopback_(peer_is_loopback),
      on_publish_listener_(on_publish_listener),
      reading_(false),
      write_pending_(false),
      drain_watch_(false),
      shutting_down_(false),
      input_waits_(false),
      deadline_armed_(false),
      over_soft_limit_(false),
      tls_read_blocked_(false),
      tls_offloaded_(false),
      peer_key_(peer_key),
      output_(evbuffer_new()),
      tls_(tls),
      reader_(*this) {
  event_assign(&read_event_, worker_.base(), fd_, EV_READ | EV_PERSIST, on_readable, this);
  event_assign(&write_event_, worker_.base(), fd_, EV_WRITE | EV_PERSIST, on_writable, this);
}

Connection::~Connection() {
  // The session unsubscribes in its destructor; it may still queue output.
  session_.reset();
  event_del(&read_event_);
  event_del(&write_event_);
  evbuffer_free(output_);
  if (tls_offloaded_) {
    tls_offload_->close(fd_);  // close_notify, or the alert an error calls for (one try)
    delete tls_offload_;
  } else if (tls_ != nullptr) {
    // close_notify when the handshake was done (one try: the socket is non-blocking).
    if (SSL_is_init_finished(tls_)) SSL_shutdown(tls_);
    SSL_free(tls_);
  }
  evutil_closesocket(fd_);
}

void Connection::start() {
  read_timeout_ = ReadTimeout::kRequest;
  set_reading(true);
}

WorkerContext& Connection::worker() { return worker_.context(); }

const http::ParserLimits& Connection::parser_limits() const { return worker_.parser_limits(); }

// ---- reading -------------------------------------------------------------------------

void Connection::set_reading(bool reading) {
  if (reading) {
    // Re-adding also restarts the timeout (a persistent event restarts it on every read).
    add_event(&read_event_, worker_.read_timeout(read_timeout_));
    // Bytes TLS already decrypted (read while input was paused) raise no readiness.
    if (tls_ != nullptr && !tls_offloaded_ && SSL_pending(tls_) > 0)
      event_active(&read_event_, EV_READ, 0);
  } else if (reading_) {
    event_del(&read_event_);
  }
  reading_ = reading;
  deadline_armed_ = false;
}

void Connection::arm_request_deadline() {
  if (!reading_ || session_ != nullptr || read_timeout_ != ReadTimeout::kRequest) return;
  const int64_t started = reader_.request_started() ? reader_.request_started_ms() : 0;
  if (started == 0) {
    // Between requests: back to the shared keep-alive idle timeout.
    if (deadline_armed_) set_reading(true);
    return;
  }
  const int64_t left = started + worker_.config().request_timeout_ms - monotonic_ms();
  const timeval tv = {static_cast<time_t>(left > 0 ? left / 1000 : 0),
                      static_cast<suseconds_t>(left > 0 ? (left % 1000) * 1000 : 0)};
  // A persistent event re-arms with the last timeout given: re-given after every read.
  event_add(&read_event_, &tv);
  deadline_armed_ = true;
}

void Connection::pause_reading() {
  set_reading(false);
  input_waits_ = false;  // the session resumes it, not the drain
}

void Connection::wait_for_output_drain() {
  if (state_ != State::kOpen || !reading_) return;
  set_reading(false);
  input_waits_ = true;
  // Not reading means no read timeout: a client that takes nothing in for
  // --request-timeout is closed by the write timeout instead.
  if (write_pending_) set_writing(true, worker_.request_timeout());
}

void Connection::resume_input_after_drain() {
  input_waits_ = false;
  if (state_ != State::kOpen || reader_.peer_closed()) return;
  if (write_pending_) set_writing(true, nullptr);
  set_reading(true);
  if (session_ == nullptr) {
    reader_.resume();  // requests that waited in the buffer
  } else if (session_->takes_more_requests()) {
    reader_.on_bytes({});
  } else if (reader_.has_buffered()) {
    session_->on_input(reader_.buffered());  // frames that waited (WebSocket)
    after_session_call();
    if (!closing() && output_congested()) wait_for_output_drain();
  }
  arm_request_deadline();
}

void Connection::set_read_timeout(ReadTimeout timeout) {
  read_timeout_ = timeout;
  if (reading_)
    set_reading(true);  // re-arms with the new timeout
  else if (reader_.peer_closed())
    keep_timeout_after_eof();
}

void Connection::keep_timeout_after_eof() {
  // Nothing more to read (the socket stays readable at EOF), but a held session's timeout
  // (a long-poll's) still applies: keep the read event as a plain timer.
  if (session_ == nullptr || read_timeout_ == ReadTimeout::kNone || state_ != State::kOpen) return;
  if (event_get_fd(&read_event_) != -1) {
    event_del(&read_event_);
    event_assign(&read_event_, worker_.base(), -1, EV_PERSIST, on_readable, this);
  }
  set_reading(true);
}

void Connection::on_readable(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->state_ != State::kOpen) return;
  if (what & EV_TIMEOUT) {
    self->handle_timeout();
    return;
  }
  if (self->tls_ != nullptr) {
    self->read_tls();
    return;
  }
  // One read per readiness (level-triggered: the rest comes on the next turn), so one
  // busy client cannot starve the others.
  Worker::ReadBuffer scratch = self->worker_.read_buffer();
  const ssize_t n = recv(self->fd_, scratch.data, scratch.size, 0);
  if (n > 0) {
    self->handle_input(std::string_view(scratch.data, static_cast<size_t>(n)));
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n == 0) {
    self->handle_peer_eof();
    return;
  }
  self->close_now("socket error");
}

void Connection::read_tls() {
  if (!reading_) return;  // a read asked for by read_tls itself, since paused
  if (!tls_offloaded_ && !SSL_is_init_finished(tls_)) {
    // The handshake alone first (SSL_read would go on to read application records):
    // a TLS 1.3 connection leaves OpenSSL right after it, with its next record unread.
    const TlsIo step = tls_handshake(tls_);
    if (step == TlsIo::kWantWrite) {
      tls_read_blocked_ = true;  // a flight the kernel did not take: on once it can write
      set_writing(true, nullptr);
      return;
    }
    if (step == TlsIo::kWantRead) return;
    if (step == TlsIo::kClosed) {
      handle_peer_eof();
      return;
    }
    if (step == TlsIo::kError) {
      close_now("TLS handshake failed");
      return;
    }
    offload_tls();
  }
  Worker::ReadBuffer scratch = worker_.read_buffer();
  size_t got = 0;
  bool more = false;
  const TlsIo state = tls_offloaded_
                          ? tls_offload_->read(fd_, scratch.data, scratch.size, got, more)
                          : tls_read(tls_, scratch.data, scratch.size, got, more);
  // A KeyUpdate asked for ours: it goes out with the next flush, even with no output.
  if (tls_offloaded_ && tls_offload_->wants_write() && !write_pending_) worker_.mark_dirty(this);
  if (state == TlsIo::kWantWrite) {
    // A handshake flight the kernel did not take: read again once it can write.
    tls_read_blocked_ = true;
    set_writing(true, nullptr);
    return;
  }
  if (got > 0) {
    handle_input(std::string_view(scratch.data, got));
    // Decrypted bytes left in the SSL raise no readiness: read them next turn.
    if (more && !closing() && reading_) event_active(&read_event_, EV_READ, 0);
    return;
  }
  if (state == TlsIo::kWantRead) return;
  if (state == TlsIo::kClosed) {
    handle_peer_eof();
    return;
  }
  close_now("TLS error");
}

void Connection::offload_tls() {
  std::unique_ptr<TlsOffload> offload = TlsOffload::take_over(tls_);
  if (offload == nullptr) {
    // TLS 1.2 (or OpenSSL still holds bytes): the SSL stays for the connection's life.
    LOG_DEBUG("tls", "%s: records stay in OpenSSL", SSL_get_version(tls_));
    return;
  }
  SSL_free(tls_);
  tls_offload_ = offload.release();
  tls_offloaded_ = true;
  LOG_DEBUG("tls", "TLSv1.3: records offloaded, SSL freed");
}

void Connection::handle_input(std::string_view fresh) {
  if (session_ != nullptr && !session_->takes_more_requests()) {
    evbuffer_add(reader_.buffered(), fresh.data(), fresh.size());
    session_->on_input(reader_.buffered());
    after_session_call();
    // Answers to what it sent (pongs, command answers) pile up unread: read no more.
    if (!closing() && session_ != nullptr && output_congested()) wait_for_output_drain();
    return;
  }
  reader_.on_bytes(fresh);
  arm_request_deadline();
}

void Connection::handle_peer_eof() {
  // A client may half-close once its requests are sent (shutdown(SHUT_WR)); answer them
  // all before closing. Streams have nothing more to answer.
  const bool unanswered = reader_.on_peer_closed();
  const bool owed = session_ != nullptr ? session_->answers_after_eof() : unanswered;
  if (!owed) {
    close_now("peer closed");
    return;
  }
  set_reading(false);
  keep_timeout_after_eof();
  if (session_ == nullptr) {
    reader_.resume();
    return;
  }
  session_->on_peer_closed();
  after_session_call();
}

void Connection::handle_timeout() {
  if (session_ != nullptr) {
    session_->on_timeout();
    after_session_call();
    return;
  }
  if (reader_.request_started()) {
    write(http::error_response(408, "request not received in time", false));
    close_after_flush();
  } else {
    close_now("keep-alive idle");
  }
}

// ---- requests (called by the reader) ---------------------------------------------------

bool Connection::takes_requests() const {
  // Shutting down: answer what was taken, take nothing new.
  return state_ == State::kOpen && !shutting_down_ &&
         (session_ == nullptr || session_->takes_more_requests());
}

bool Connection::can_take_now(const http::Request& request) const {
  return session_ == nullptr || session_->accepts(request);
}

bool Connection::dispatch(http::Request& request) {
  bool keep_alive = request.keep_alive;
  // A request behind a session that takes pipelined requests (accepts() said yes) is
  // that session's to answer, in order behind what it owes.
  if (session_ != nullptr)
    session_->take_request(request);
  else
    keep_alive = route_request(*this, worker_.context(), request);
  if (session_ != nullptr && session_end_ != SessionEnd::kNone) {
    // Answered at once (a poll with messages waiting): go on with the next request here
    // rather than recursing, so a long pipeline cannot grow the stack.
    return finish_ended_session();
  }
  if (session_ != nullptr) {
    // A session that takes pipelined requests (publishes waiting for Redis) lets the
    // reader go on; any other owns what follows (WebSocket frames after the upgrade).
    if (session_->takes_more_requests()) return true;
    if (reader_.has_buffered()) {
      session_->on_input(reader_.buffered());
      after_session_call();
    }
    return false;
  }
  // A refused upgrade leaves the other protocol's bytes behind: stop here.
  if (!keep_alive || request.upgrade) {
    close_after_flush();
    return false;
  }
  if (!check_output_limit()) return false;  // a pipelining client that does not read: cut
  if (output_congested()) {
    // Parse no more pipelined requests (they wait in the buffer) until it reads.
    wait_for_output_drain();
    return false;
  }
  return true;
}

// ---- the session -------------------------------------------------------------------------

void Connection::begin_session(std::unique_ptr<Session> session) {
  if (session_ != nullptr) {
    // A session that waited (authorization) hands over to the transport it started.
    worker_.retire_session(std::move(session_));
    session_end_ = SessionEnd::kNone;
    if (state_ == State::kOpen && !reader_.peer_closed()) set_reading(true);
  }
  session_ = std::move(session);
  // A streaming client sends nothing more we need to parse; free the parser's buffers.
  if (!session_->takes_more_requests()) reader_.release_parser();
}

void Connection::end_session(bool keep_alive) {
  session_end_ = keep_alive ? SessionEnd::kKeepAlive : SessionEnd::kClose;
}

bool Connection::finish_ended_session() {
  const bool keep_alive = session_end_ == SessionEnd::kKeepAlive;
  session_end_ = SessionEnd::kNone;
  session_.reset();
  set_streaming(false);
  if (closing()) return false;
  if (!keep_alive || shutting_down_) {
    close_after_flush();
    return false;
  }
  read_timeout_ = ReadTimeout::kRequest;
  set_reading(!reader_.peer_closed());
  return check_output_limit();
}

void Connection::after_session_call() {
  if (session_end_ == SessionEnd::kNone) return;
  // Pipelined requests that arrived meanwhile go next.
  if (finish_ended_session()) {
    reader_.resume();
    arm_request_deadline();
  }
}

void Connection::defer() { worker_.defer(this); }

void Connection::run_deferred() {
  if (session_ == nullptr) return;
  session_->on_end_of_turn();
  after_session_call();
}

void Connection::run_heartbeat() {
  if (session_ == nullptr) return;
  // Like Redis' client-output-buffer soft limit: over it at two heartbeats in a row (for
  // a whole interval) is a reader that does not keep up.
  const Config& config = worker_.config();
  const size_t soft = config.max_output_soft_bytes != 0 ? config.max_output_soft_bytes
                                                        : config.max_output_bytes / 2;
  const bool over = unsent() > soft;
  if (over && over_soft_limit_) {
    cut_slow_reader("over --max-output-soft-bytes for a heartbeat interval");
    return;
  }
  over_soft_limit_ = over;
  session_->on_heartbeat();
  after_session_call();
}

void Connection::set_streaming(bool streaming) {
  if (streaming == in_lists_.streaming) return;
  if (streaming)
    worker_.add_streaming(this);
  else
    worker_.remove_streaming(this);
}

void Connection::shutdown() {
  if (closing() || shutting_down_) return;
  shutting_down_ = true;
  // Publishes in flight are answered first; finish_ended_session closes afterwards.
  if (session_ != nullptr && session_->answers_before_shutdown()) return;
  // Say goodbye (WebSocket 1001, the answer of a held poll, a stream's reconnect
  // notice) and close once that is written; the worker waits a moment for it.
  if (session_ != nullptr) session_->on_shutdown();
  close_after_flush();
}

// ---- output ------------------------------------------------------------------------------

void Connection::set_writing(bool writing, const timeval* timeout) {
  if (writing)
    add_event(&write_event_, timeout);
  else
    event_del(&write_event_);
}

void Connection::write(std::string_view bytes) {
  if (closing()) return;
  evbuffer_add(output_, bytes.data(), bytes.size());
  if (!write_pending_) worker_.mark_dirty(this);
}

void Connection::write_shared(const MessagePtr& message, std::string_view part) {
  if (closing()) return;
  if (part.size() < kShareThreshold) {
    write(part);
    return;
  }
  evbuffer_add_reference(output_, part.data(), part.size(), release_shared,
                         new MessagePtr(message));
  if (!write_pending_) worker_.mark_dirty(this);
}

bool Connection::check_output_limit() {
  if (closing()) return false;
  // Checked before queuing more, so one message may take the queue past the limit
  // (messages can be larger than it); a client that has not taken that in by the time
  // the next message is due is cut.
  const size_t pending = unsent();
  if (pending <= worker_.config().max_output_bytes) return true;
  worker_.shared().counters.slow_readers_cut.fetch_add(1, std::memory_order_relaxed);
  LOG_WARN("server", "slow reader: %zu bytes unsent (max-output-bytes %zu), closing", pending,
           worker_.config().max_output_bytes);
  close_now("slow reader");
  return false;
}

void Connection::cut_slow_reader(const char* why) {
  if (closing()) return;
  worker_.shared().counters.slow_readers_cut.fetch_add(1, std::memory_order_relaxed);
  LOG_WARN("server", "slow reader: %zu bytes unsent (%s), closing", unsent(), why);
  close_now("slow reader");
}

bool Connection::output_congested() const {
  return unsent() > worker_.config().max_output_bytes / 2;
}

void Connection::watch_drain() {
  if (state_ != State::kOpen || drain_watch_) return;
  drain_watch_ = true;  // output_progress calls the session back below a quarter
}

bool Connection::write_to_socket() {
  if (tls_offloaded_) {
    if (tls_offload_->write(fd_, output_) == TlsIo::kError) {
      close_now("TLS write failed");
      return false;
    }
    return true;
  }
  if (tls_ != nullptr) {
    if (tls_write(tls_, output_) == TlsIo::kError) {
      close_now("TLS write failed");
      return false;
    }
    return true;
  }
  const int written = evbuffer_write(output_, fd_);
  if (written < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    close_now("write failed");
    return false;
  }
  return true;
}

void Connection::flush_output() {
  if (closing() || write_pending_) return;
  if (unsent() == 0 && !(tls_offloaded_ && tls_offload_->wants_write())) return;
  if (!write_to_socket()) return;
  if (unsent() > 0) {
    // The kernel's buffer is full: write the rest when the socket can take it. A
    // closing connection's peer gets the request timeout to read it.
    write_pending_ = true;
    set_writing(true,
                state_ == State::kFlushing || input_waits_ ? worker_.request_timeout() : nullptr);
  }
  output_progress();
}

void Connection::on_writable(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->closing()) return;
  if (what & EV_TIMEOUT) {
    self->close_now("write timeout");
    return;
  }
  if (self->tls_read_blocked_) {
    self->tls_read_blocked_ = false;
    if (!self->write_pending_) self->set_writing(false, nullptr);
    self->read_tls();
    if (self->closing() || !self->write_pending_) return;
  }
  if (self->write_to_socket()) self->output_progress();
}

void Connection::output_progress() {
  if (closing()) return;
  const size_t pending = unsent();  // TLS records sealed but not sent count too
  if (pending == 0 && write_pending_) {
    write_pending_ = false;
    set_writing(false, nullptr);
  }
  if (state_ == State::kFlushing) {
    if (pending == 0) close_now("flushed");
    return;
  }
  if (input_waits_ && pending <= worker_.config().max_output_bytes / 4) resume_input_after_drain();
  if (closing()) return;
  if (drain_watch_ && unsent() <= worker_.config().max_output_bytes / 4) {
    drain_watch_ = false;
    if (session_ == nullptr) return;
    session_->on_drain();
    after_session_call();
  }
}

// ---- closing -----------------------------------------------------------------------------

void Connection::close_now(const char* why) {
  if (closing()) return;
  LOG_DEBUG("server", "closing connection: %s", why);
  state_ = State::kClosed;
  set_reading(false);
  set_writing(false, nullptr);
  worker_.schedule_close(this);
}

void Connection::close_after_flush() {
  if (state_ != State::kOpen) return;
  state_ = State::kFlushing;
  set_reading(false);
  if (unsent() == 0) {
    close_now("response done");
    return;
  }
  // Closes once the output is written (flush_output or the write event); a peer that
  // never reads is dropped by the write timeout.
  drain_watch_ = false;
  if (write_pending_)
    set_writing(true, worker_.request_timeout());
  else
    worker_.mark_dirty(this);
}

}  // namespace comet
