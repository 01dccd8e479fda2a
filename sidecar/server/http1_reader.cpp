#include "server/http1_reader.h"

#include "http/response.h"
#include "hub/message.h"
#include "util/log.h"

namespace comet {

Http1Reader::Http1Reader(RequestSink& conn) : conn_(conn), input_(evbuffer_new()) {}

Http1Reader::~Http1Reader() { evbuffer_free(input_); }

void Http1Reader::on_bytes(std::string_view fresh) { parse(fresh); }

void Http1Reader::resume() {
  if (!conn_.ready_for_request()) return;
  // What was parsed while a session taking pipelined requests was busy comes first.
  if (parked_error_) {
    parked_error_ = false;
    answer_parse_error();
    return;
  }
  if (parked_ != nullptr) {
    std::unique_ptr<http::Request> request = std::move(parked_);
    if (!conn_.dispatch(*request)) return;
  }
  parse({});
}

bool Http1Reader::on_peer_closed() {
  peer_closed_ = true;
  return has_buffered();
}

void Http1Reader::parse(std::string_view fresh) {
  // Whatever is left when we stop is kept in input_ for later, behind older bytes.
  auto keep_rest = [this, &fresh] {
    if (!fresh.empty() && !conn_.closing()) evbuffer_add(input_, fresh.data(), fresh.size());
    fresh = {};
  };
  while (conn_.takes_requests() && parked_ == nullptr && !parked_error_) {
    std::string_view chunk = fresh;
    const bool from_input = has_buffered();
    if (from_input) {
      evbuffer_iovec first;
      evbuffer_peek(input_, -1, nullptr, &first, 1);
      chunk = std::string_view(static_cast<const char*>(first.iov_base), first.iov_len);
    }
    if (chunk.empty()) {
      // Everything the half-closed client sent is answered.
      if (peer_closed_ && !conn_.in_session()) conn_.close_after_flush();
      return;
    }
    if (parser_ == nullptr) parser_ = std::make_unique<ParserState>(conn_.parser_limits());
    if (!request_started_) parser_->started_ms = monotonic_ms();
    request_started_ = true;
    const http::ParseResult result = parser_->parser.feed(chunk);
    if (from_input) {
      evbuffer_drain(input_, result.consumed);
      keep_rest();  // older bytes first: what was just read goes behind them
    } else {
      fresh.remove_prefix(result.consumed);
    }
    switch (result.status) {
      case http::ParseStatus::kNeedMore:
        if (result.consumed == 0) {
          keep_rest();
          // A request cut short by the half-close.
          if (peer_closed_ && !conn_.in_session()) conn_.close_after_flush();
          return;
        }
        continue;
      case http::ParseStatus::kContinue:
        // Behind answers still owed an interim 100 would come out of order; such a client
        // (pipelining with Expect is contradictory) sends its body after its own wait.
        if (!conn_.in_session()) conn_.write("HTTP/1.1 100 Continue\r\n\r\n");
        continue;
      case http::ParseStatus::kError:
        keep_rest();
        if (conn_.in_session()) {
          // Answered after what the session still owes, in order.
          parked_error_ = true;
          conn_.pause_reading();
          return;
        }
        answer_parse_error();
        return;
      case http::ParseStatus::kComplete: {
        http::Request request = parser_->parser.take_request();
        parser_->parser.reset();
        request_started_ = false;
        if (!conn_.can_take_now(request)) {
          // Not something the busy session takes (only publishes pipeline behind
          // publishes): hold it, and stop reading, until the session is done.
          parked_ = std::make_unique<http::Request>(std::move(request));
          keep_rest();
          conn_.pause_reading();
          return;
        }
        if (!conn_.dispatch(request)) {
          keep_rest();
          return;
        }
        continue;
      }
    }
  }
  keep_rest();
}

void Http1Reader::answer_parse_error() {
  const http::RequestParser& parser = parser_->parser;
  LOG_DEBUG("http", "bad request: %d %s", parser.error_status(), parser.error_reason());
  conn_.write(http::error_response(parser.error_status(), parser.error_reason(), false));
  conn_.close_after_flush();
}

}  // namespace comet
