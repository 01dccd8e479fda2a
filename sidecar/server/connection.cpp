#include "server/connection.h"

#include <event2/buffer.h>

#include <cerrno>

#include "http/request_parser.h"
#include "http/response.h"
#include "server/router.h"
#include "server/worker.h"
#include "util/log.h"

namespace comet {
namespace {

http::ParserLimits parser_limits(const Config& c) {
  http::ParserLimits limits;
  limits.max_header_bytes = c.max_header_bytes;
  limits.max_url_bytes = c.max_url_bytes;
  limits.max_body_bytes = c.max_message_bytes;
  return limits;
}

// Messages below this size are copied into the socket buffer: a copy of a few hundred
// bytes costs less than the chain allocation and reference count of a shared reference.
constexpr size_t kShareThreshold = 16 * 1024;

void release_shared(const void*, size_t, void* extra) { delete static_cast<MessagePtr*>(extra); }

}  // namespace

const char* session_kind_name(SessionKind kind) {
  static const char* const kNames[] = {"ws", "sse", "stream", "poll", "echo", "publish"};
  return kNames[static_cast<int>(kind)];
}

static_assert(sizeof(Counters::sessions) / sizeof(Counters::sessions[0]) ==
                  static_cast<size_t>(SessionKind::kCount),
              "one session counter per SessionKind");

Session::Session(Connection& conn, SessionKind kind) : conn_(conn), kind_(kind) {
  conn_.worker().shared().counters.sessions[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  conn_.worker().shared().counters.sessions[static_cast<int>(kind_)].fetch_sub(1, std::memory_order_relaxed);
}

void Session::on_timeout() { conn_.close_now("idle timeout"); }

bool Session::can_take_more() {
  if (!conn_.output_congested()) return true;
  conn_.watch_drain();
  return false;
}

Connection::Connection(Worker& worker, bufferevent* bev, bool peer_is_loopback)
    : worker_(worker), bev_(bev), peer_is_loopback_(peer_is_loopback) {}

Connection::~Connection() {
  // The session unsubscribes in its destructor; it must go before the bufferevent.
  session_.reset();
  bufferevent_free(bev_);
}

void Connection::start() {
  bufferevent_setcb(bev_, on_read, on_write, on_event, this);
  set_read_timeout(worker_.request_timeout());
  // Writing stays disabled (a new socket bufferevent starts with EV_WRITE enabled, which
  // would add and remove the write event around every response): output is flushed
  // straight to the socket once per loop turn (flush_output); the bufferevent writes
  // only what the kernel did not take at once.
  bufferevent_disable(bev_, EV_WRITE);
  bufferevent_enable(bev_, EV_READ);
}

void Connection::write(std::string_view bytes) {
  if (closing_) return;
  bufferevent_write(bev_, bytes.data(), bytes.size());
  if (!write_pending_) worker_.mark_dirty(this);
}

void Connection::write_shared(const MessagePtr& message, std::string_view part) {
  if (closing_) return;
  if (part.size() < kShareThreshold) {
    write(part);
    return;
  }
  evbuffer_add_reference(bufferevent_get_output(bev_), part.data(), part.size(), release_shared,
                         new MessagePtr(message));
  if (!write_pending_) worker_.mark_dirty(this);
}

bool Connection::check_output_limit() {
  if (closing_) return false;
  // Checked before queuing more, so one message may take the queue past the limit
  // (messages can be larger than it); a client that has not taken that in by the time
  // the next message is due is cut.
  const size_t pending = evbuffer_get_length(bufferevent_get_output(bev_));
  if (pending <= worker_.config().max_output_bytes) return true;
  worker_.shared().counters.slow_readers_cut.fetch_add(1, std::memory_order_relaxed);
  LOG_WARN("server", "slow reader: %zu bytes unsent (max-output-bytes %zu), closing", pending,
           worker_.config().max_output_bytes);
  close_now("slow reader");
  return false;
}

bool Connection::output_congested() const {
  return evbuffer_get_length(bufferevent_get_output(bev_)) > worker_.config().max_output_bytes / 2;
}

void Connection::watch_drain() {
  if (closing_ || flushing_ || drain_watch_) return;
  drain_watch_ = true;
  bufferevent_setwatermark(bev_, EV_WRITE, worker_.config().max_output_bytes / 4, 0);
}

void Connection::flush_output() {
  if (closing_ || write_pending_) return;
  evbuffer* out = bufferevent_get_output(bev_);
  if (evbuffer_get_length(out) == 0) return;
  // The socket bufferevent freezes the start of its output buffer so that only its
  // own write callback drains it; unfreeze around our direct write.
  evbuffer_unfreeze(out, 1);
  const int written = evbuffer_write(out, bufferevent_getfd(bev_));
  const int err = errno;
  evbuffer_freeze(out, 1);
  if (written < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
    close_now("write failed");
    return;
  }
  if (evbuffer_get_length(out) > 0) {
    // The kernel's buffer is full: let the bufferevent write the rest when it can.
    write_pending_ = true;
    bufferevent_enable(bev_, EV_WRITE);
  }
  output_progress();
}

void Connection::output_progress() {
  if (closing_) return;
  const size_t pending = evbuffer_get_length(bufferevent_get_output(bev_));
  if (flushing_) {
    if (pending == 0) close_now("flushed");
    return;
  }
  if (pending == 0 && write_pending_) {
    write_pending_ = false;
    bufferevent_disable(bev_, EV_WRITE);
  }
  if (drain_watch_ && pending <= worker_.config().max_output_bytes / 4) {
    drain_watch_ = false;
    bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
    if (session_ == nullptr) return;
    session_->on_drain();
    after_session_call();
  }
}

void Connection::close_now(const char* why) {
  if (closing_) return;
  LOG_DEBUG("server", "closing connection: %s", why);
  closing_ = true;
  bufferevent_disable(bev_, EV_READ | EV_WRITE);
  worker_.schedule_close(this);
}

void Connection::close_after_flush() {
  if (closing_ || flushing_) return;
  flushing_ = true;
  bufferevent_disable(bev_, EV_READ);
  if (evbuffer_get_length(bufferevent_get_output(bev_)) == 0) {
    close_now("response done");
    return;
  }
  // Closes once the output is written (flush_output or the write callback); a peer
  // that never reads is dropped by the write timeout.
  drain_watch_ = false;
  bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
  bufferevent_set_timeouts(bev_, nullptr, worker_.request_timeout());
  if (!write_pending_) worker_.mark_dirty(this);
}

void Connection::on_write(bufferevent*, void* arg) {
  // The bufferevent wrote a backlog down to the low watermark.
  static_cast<Connection*>(arg)->output_progress();
}

void Connection::set_read_timeout(const timeval* timeout) {
  bufferevent_set_timeouts(bev_, timeout, nullptr);
}

void Connection::set_streaming(bool streaming) {
  if (streaming == streaming_) return;
  streaming_ = streaming;
  if (streaming) worker_.add_streaming(this);
  else worker_.remove_streaming(this);
}

void Connection::defer() { worker_.defer(this); }

void Connection::begin_session(std::unique_ptr<Session> session) {
  session_ = std::move(session);
  // A streaming client sends nothing more we need to parse; free the parser's buffers.
  parser_.reset();
}

void Connection::end_session(bool keep_alive) {
  session_ended_ = true;
  keep_alive_after_session_ = keep_alive;
}

bool Connection::finish_ended_session() {
  session_ended_ = false;
  session_.reset();
  set_streaming(false);
  if (closing_) return false;
  if (!keep_alive_after_session_) {
    close_after_flush();
    return false;
  }
  set_read_timeout(worker_.request_timeout());
  if (!peer_eof_) bufferevent_enable(bev_, EV_READ);
  return check_output_limit();
}

void Connection::after_session_call() {
  if (!session_ended_) return;
  if (finish_ended_session()) process_requests();  // pipelined requests that arrived meanwhile
}

void Connection::run_deferred() {
  if (session_ == nullptr) return;
  session_->on_end_of_turn();
  after_session_call();
}

void Connection::run_heartbeat() {
  if (session_ == nullptr) return;
  session_->on_heartbeat();
  after_session_call();
}

void Connection::shutdown() {
  if (closing_ || shutting_down_) return;
  shutting_down_ = true;
  // Say goodbye (WebSocket 1001, the answer of a held poll, a stream's reconnect
  // notice) and close once that is written; the worker waits a moment for it.
  if (session_ != nullptr) session_->on_shutdown();
  close_after_flush();
}

void Connection::on_read(bufferevent*, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->closing_ || self->flushing_) return;
  if (self->session_ != nullptr) {
    self->session_->on_input(bufferevent_get_input(self->bev_));
    self->after_session_call();
    return;
  }
  self->process_requests();
}

void Connection::on_event(bufferevent*, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (what & BEV_EVENT_TIMEOUT) {
    self->handle_timeout();
    return;
  }
  if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !self->closing_ && !self->flushing_) {
    // A client may half-close once its requests are sent (shutdown(SHUT_WR)); answer
    // them all before closing. Streams have nothing more to answer.
    const bool owed = self->session_ != nullptr
                          ? self->session_->answers_after_eof()
                          : evbuffer_get_length(bufferevent_get_input(self->bev_)) > 0;
    if (owed) {
      self->peer_eof_ = true;
      bufferevent_disable(self->bev_, EV_READ);
      if (self->session_ == nullptr) self->process_requests();
      return;
    }
  }
  // EOF or a socket error: the client went away.
  self->close_now((what & BEV_EVENT_EOF) ? "peer closed" : "socket error");
}

void Connection::handle_timeout() {
  if (closing_) return;
  if (flushing_) {
    close_now("write timeout");
    return;
  }
  if (session_ != nullptr) {
    // libevent disabled reading when the timeout fired; the session decides what next.
    bufferevent_enable(bev_, EV_READ);
    session_->on_timeout();
    after_session_call();
    return;
  }
  if (request_started_) {
    write(http::error_response(408, "request not received in time", false));
    close_after_flush();
  } else {
    close_now("keep-alive idle");
  }
}

void Connection::process_requests() {
  evbuffer* input = bufferevent_get_input(bev_);
  while (!closing_ && !flushing_ && session_ == nullptr) {
    evbuffer_iovec chunk;
    if (evbuffer_peek(input, -1, nullptr, &chunk, 1) < 1 || chunk.iov_len == 0) {
      if (peer_eof_) close_after_flush();  // everything the client sent is answered
      return;
    }
    if (parser_ == nullptr) parser_ = std::make_unique<http::RequestParser>(parser_limits(worker_.config()));
    request_started_ = true;
    const http::ParseResult result =
        parser_->feed(std::string_view(static_cast<const char*>(chunk.iov_base), chunk.iov_len));
    evbuffer_drain(input, result.consumed);
    switch (result.status) {
      case http::ParseStatus::kNeedMore:
        if (result.consumed == 0) {
          if (peer_eof_) close_after_flush();  // a request cut short by the half-close
          return;
        }
        continue;
      case http::ParseStatus::kContinue:
        write("HTTP/1.1 100 Continue\r\n\r\n");
        continue;
      case http::ParseStatus::kError:
        LOG_DEBUG("http", "bad request: %d %s", parser_->error_status(), parser_->error_reason());
        write(http::error_response(parser_->error_status(), parser_->error_reason(), false));
        close_after_flush();
        return;
      case http::ParseStatus::kComplete: {
        http::Request request = parser_->take_request();
        parser_->reset();
        request_started_ = false;
        const bool keep_alive = route_request(*this, request);
        if (session_ != nullptr && session_ended_) {
          // Answered at once (a poll with messages waiting): go on with the next request
          // here rather than recursing, so a long pipeline cannot grow the stack.
          if (!finish_ended_session()) return;
          continue;
        }
        if (session_ != nullptr) {
          // The session owns what follows (WebSocket frames after the upgrade).
          if (evbuffer_get_length(input) > 0) {
            session_->on_input(input);
            after_session_call();
          }
          return;
        }
        // A refused upgrade leaves the other protocol's bytes behind: stop here.
        if (!keep_alive || request.upgrade) {
          close_after_flush();
          return;
        }
        if (!check_output_limit()) return;  // a pipelining client that does not read
        continue;
      }
    }
  }
}

}  // namespace comet
