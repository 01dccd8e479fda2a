#pragma once
// What every WebSocket endpoint shares: the handshake, frame decoding from the
// connection's input, ping/pong, the close handshake, heartbeats and idle timeout.
// Subclasses (pub/sub in websocket.cpp, echo in ws_echo.cpp) handle data messages.

#include <string>
#include <string_view>

#include "http/request.h"
#include "server/session.h"
#include "transports/request_context.h"
#include "ws/deflate_negotiation.h"
#include "ws/frame_codec.h"

namespace comet {

/**
 * Writes the 101 answer to an upgrade request that check_websocket_upgrade accepted,
 * with permessage-deflate when --ws-deflate is on and the client offered an acceptable
 * form of it. Returns what was agreed, for the session.
 */
ws::DeflateAgreement accept_websocket(const RequestContext& ctx);

class WsSession : public Session {
 public:
  /**
   * Sets the WebSocket idle timeout and heartbeats (pings) on `port`. `deflate` is what
   * the handshake agreed: compressed messages are then accepted (and may be sent).
   */
  WsSession(ClientPort& port, SessionKind kind, ws::DeflateAgreement deflate = {});

  void on_input(evbuffer* input) override;
  void on_heartbeat() override;
  void on_timeout() override;
  void on_shutdown() override;

  /** Sends one text frame, never compressed (answers to commands are short). */
  void send_text(std::string_view text);
  /**
   * Sends one data message, compressed (with this thread's deflate stream) when the
   * connection negotiated permessage-deflate, it is at least --ws-deflate-min-bytes long
   * and deflate makes it smaller. For per-connection data; a published message is
   * compressed once and shared instead (Message::ws_deflated_frame).
   */
  void send_data(ws::Opcode op, std::string_view data);
  /** Sends a close frame with `code` and closes once it is written. */
  void close_with(uint16_t code, std::string_view reason);

 protected:
  /** A complete text or binary message from the client. */
  virtual void on_data(ws::Opcode op, std::string_view data) = 0;
  bool closing() const { return close_sent_; }
  /** 0 without permessage-deflate, else the server's window bits (8-15). */
  uint8_t deflate_window_bits() const { return deflate_window_bits_; }

 private:
  // Adapts the decoder's callbacks (whose on_message name would clash with Subscriber's).
  class Frames final : public ws::FrameHandler {
   public:
    explicit Frames(WsSession& s) : s_(s) {}
    void on_message(ws::Opcode op, std::string_view data) override { s_.on_data(op, data); }
    void on_ping(std::string_view payload) override;
    void on_pong(std::string_view) override {}
    void on_close(uint16_t code, std::string_view reason) override;
    void on_protocol_error(uint16_t code, const char* why) override;
    // Backpressure on input: no more frames while answers pile up unread.
    bool wants_more() override { return !s_.port_.output_congested(); }

   private:
    WsSession& s_;
  };

  Frames frames_;
  ws::Decoder decoder_;
  bool close_sent_ = false;
  uint8_t deflate_window_bits_ = 0;  // DeflateAgreement::server_window_bits
};

}  // namespace comet
