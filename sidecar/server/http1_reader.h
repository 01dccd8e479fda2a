#pragma once
// The HTTP/1 side of a connection: parses requests from the bytes the connection reads
// (straight from the worker's read buffer when nothing older waits, so a typical
// request is never copied), hands them to the connection one at a time and in order,
// and holds what cannot be handled yet: a request, or a parse error, pipelined behind
// a session that does not take it waits (parked) until that session ends. It also
// knows whether a request is half received (408 rather than an idle close) and
// whether the client half-closed.

#include <event2/buffer.h>

#include <memory>
#include <string_view>

#include "http/request.h"
#include "http/request_parser.h"

namespace comet {

/**
 * What the reader hands requests to: the connection (tests use a fake). Every call is
 * made from the connection's own loop.
 */
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  /** True when a request may be parsed now: open, and no session or one taking more. */
  virtual bool takes_requests() const = 0;
  /** True when open with no session: parked requests may go. */
  virtual bool ready_for_request() const = 0;
  virtual bool in_session() const = 0;
  /** Whether a complete request may be handled now (else the reader parks it). */
  virtual bool can_take_now(const http::Request& request) const = 0;
  /** Handles one complete request; false when the reader must stop for now. */
  virtual bool dispatch(http::Request& request) = 0;
  /** Queues bytes for the client (interim 100 Continue, a parse error's answer). */
  virtual void write(std::string_view bytes) = 0;
  /** Stops reading until the busy session ends. */
  virtual void pause_reading() = 0;
  /** Closes once queued output is written. */
  virtual void close_after_flush() = 0;
  virtual bool closing() const = 0;
  /** The parser's limits (shared by the worker's connections, so not copied into each). */
  virtual const http::ParserLimits& parser_limits() const = 0;
};

class Http1Reader {
 public:
  explicit Http1Reader(RequestSink& conn);
  ~Http1Reader();
  Http1Reader(const Http1Reader&) = delete;
  Http1Reader& operator=(const Http1Reader&) = delete;

  /**
   * Bytes just read: parses and dispatches every request the connection takes now,
   * and keeps the rest (a partial request, requests behind a busy session).
   */
  void on_bytes(std::string_view fresh);
  /** The connection takes requests again (its session ended): parked ones go first. */
  void resume();
  /**
   * The client half-closed its side. Returns whether it sent bytes not answered yet
   * (then they are answered before the connection closes).
   */
  bool on_peer_closed();

  /** Bytes received and not parsed: a session's raw input (WebSocket frames). */
  evbuffer* buffered() { return input_; }
  bool has_buffered() const { return evbuffer_get_length(input_) > 0; }
  /** True while a request is partly received. */
  bool request_started() const { return request_started_; }
  /** When its first byte arrived (monotonic ms), while request_started(). */
  int64_t request_started_ms() const { return parser_ != nullptr ? parser_->started_ms : 0; }
  /** True once the client half-closed (it sends nothing more). */
  bool peer_closed() const { return peer_closed_; }
  /** Frees the parser's buffers (a session that takes no more requests owns the input). */
  void release_parser() { parser_.reset(); }

 private:
  /** The parse loop over buffered bytes, then `fresh`; keeps what it does not use. */
  void parse(std::string_view fresh);
  /** Answers the parse error and closes (the connection is in an unknown state). */
  void answer_parse_error();

  RequestSink& conn_;
  evbuffer* input_;
  // Kept with the parser (freed while a stream holds the connection), not in every
  // connection: the whole-request deadline runs from `started_ms`.
  struct ParserState {
    explicit ParserState(const http::ParserLimits& limits) : parser(limits) {}
    http::RequestParser parser;
    int64_t started_ms = 0;
  };
  std::unique_ptr<ParserState> parser_;  // created on the first byte of a request
  std::unique_ptr<http::Request> parked_;
  bool parked_error_ = false;
  bool request_started_ = false;
  bool peer_closed_ = false;
};

}  // namespace comet
