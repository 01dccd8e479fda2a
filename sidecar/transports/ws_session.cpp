#include "transports/ws_session.h"

#include <event2/buffer.h>

#include <vector>

#include "transports/transports.h"
#include "util/log.h"
#include "ws/deflate.h"
#include "ws/handshake.h"

namespace comet {
namespace {

std::string_view header_or_empty(const http::Request& request, std::string_view name) {
  const std::string* value = request.header(name);
  return value ? std::string_view(*value) : std::string_view();
}

ws::DecoderLimits decoder_limits(const Config& config, bool deflate) {
  ws::DecoderLimits limits;
  limits.max_frame_bytes = config.max_message_bytes;
  limits.max_message_bytes = config.max_message_bytes;
  limits.require_mask = true;
  limits.permessage_deflate = deflate;
  return limits;
}

}  // namespace

Refusal check_websocket_upgrade(const RequestContext& ctx) {
  const http::Request& request = ctx.request;
  const ws::HandshakeCheck check = ws::check_upgrade_request(
      request.method, header_or_empty(request, "upgrade"), header_or_empty(request, "connection"),
      header_or_empty(request, "sec-websocket-version"),
      header_or_empty(request, "sec-websocket-key"));
  if (check.http_status == 0) return Refusal::none();
  return Refusal{check.http_status, check.reason,
                 check.http_status == 426 ? "Sec-WebSocket-Version: 13\r\n" : ""};
}

ws::DeflateAgreement accept_websocket(const RequestContext& ctx) {
  ws::DeflateAgreement deflate;
  if (ctx.config().ws_deflate) {
    // The header may come on several lines; together they are one list (RFC 6455 9.1).
    std::vector<std::string_view> offers;
    for (const auto& [name, value] : ctx.request.headers)
      if (name == "sec-websocket-extensions") offers.emplace_back(value);
    if (!offers.empty()) deflate = ws::negotiate_deflate(offers);
  }
  ctx.port.write(
      ws::build_upgrade_response(ws::accept_key(header_or_empty(ctx.request, "sec-websocket-key")),
                                 ws::deflate_response_header(deflate)));
  return deflate;
}

WsSession::WsSession(ClientPort& port, SessionKind kind, ws::DeflateAgreement deflate)
    : Session(port, kind),
      frames_(*this),
      decoder_(decoder_limits(port.worker().config(), deflate.enabled())),
      deflate_window_bits_(deflate.server_window_bits) {
  port.set_read_timeout(ReadTimeout::kWebSocketIdle);
  port.set_streaming(true);
}

void WsSession::on_input(evbuffer* input) {
  // Frames from browsers are small; one contiguous view keeps the decoder simple.
  // The decoder consumes whole frames only and rejects oversized ones from the header.
  // Frames whose answers (pongs, command answers) the client does not read wait in the
  // buffer: the connection reads no more until it drains (backpressure on input).
  while (!close_sent_ && !port_.closing() && !port_.output_congested()) {
    const size_t length = evbuffer_get_length(input);
    if (length == 0) return;
    const char* bytes = reinterpret_cast<const char*>(evbuffer_pullup(input, -1));
    const size_t consumed = decoder_.feed(std::string_view(bytes, length), frames_);
    evbuffer_drain(input, consumed);
    if (consumed == 0) return;
  }
  // After our close frame the peer's remaining bytes are of no interest.
  if (close_sent_) evbuffer_drain(input, evbuffer_get_length(input));
}

void WsSession::send_text(std::string_view text) {
  if (close_sent_ || !port_.check_output_limit()) return;
  uint8_t header[10];
  const size_t n = ws::encode_header(header, ws::Opcode::kText, text.size(), true);
  port_.write(std::string_view(reinterpret_cast<const char*>(header), n));
  port_.write(text);
}

void WsSession::send_data(ws::Opcode op, std::string_view data) {
  if (close_sent_ || !port_.check_output_limit()) return;
  uint8_t header[10];
  if (deflate_window_bits_ != 0 && data.size() >= config().ws_deflate_min_bytes) {
    thread_local std::string compressed;
    compressed.clear();
    if (ws::deflate_message(data, deflate_window_bits_, compressed) &&
        compressed.size() < data.size()) {
      const size_t n = ws::encode_header(header, op, compressed.size(), true, true);
      port_.write(std::string_view(reinterpret_cast<const char*>(header), n));
      port_.write(compressed);
      return;
    }
  }
  const size_t n = ws::encode_header(header, op, data.size(), true);
  port_.write(std::string_view(reinterpret_cast<const char*>(header), n));
  port_.write(data);
}

void WsSession::close_with(uint16_t code, std::string_view reason) {
  if (close_sent_) return;
  close_sent_ = true;
  port_.write(ws::encode_close(code, reason));
  port_.close_after_flush();
}

void WsSession::on_heartbeat() {
  if (close_sent_ || !port_.check_output_limit()) return;
  port_.write(ws::encode_frame(ws::Opcode::kPing, {}));
}

void WsSession::on_timeout() {
  // Three heartbeats without a pong (or anything else): the peer is gone.
  port_.close_now("websocket idle");
}

void WsSession::on_shutdown() { close_with(ws::kCloseGoingAway, "server shutting down"); }

void WsSession::Frames::on_ping(std::string_view payload) {
  // A pong is output like any other: it counts against --max-output-bytes.
  if (s_.close_sent_ || !s_.port_.check_output_limit()) return;
  s_.port_.write(ws::encode_frame(ws::Opcode::kPong, payload));
}

void WsSession::Frames::on_close(uint16_t code, std::string_view) {
  // Echo the status code as RFC 6455 5.5.1 asks (an empty close is answered empty).
  s_.close_with(code, "");
}

void WsSession::Frames::on_protocol_error(uint16_t code, const char* why) {
  LOG_DEBUG("ws", "protocol error %u: %s", code, why);
  s_.close_with(code, why);
}

}  // namespace comet
