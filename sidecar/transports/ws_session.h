#pragma once
// What every WebSocket endpoint shares: the handshake, frame decoding from the
// connection's input, ping/pong, the close handshake, heartbeats and idle timeout.
// Subclasses (pub/sub in websocket.cpp, echo in ws_echo.cpp) handle data messages.

#include <string>
#include <string_view>

#include "http/request.h"
#include "server/session.h"
#include "transports/request_context.h"
#include "ws/frame_codec.h"

namespace comet {

/** Writes the 101 answer to an upgrade request that check_websocket_upgrade accepted. */
void accept_websocket(const RequestContext& ctx);

class WsSession : public Session {
 public:
  /** Sets the WebSocket idle timeout and heartbeats (pings) on `port`. */
  WsSession(ClientPort& port, SessionKind kind);

  void on_input(evbuffer* input) override;
  void on_heartbeat() override;
  void on_timeout() override;
  void on_shutdown() override;

  /** Sends one text frame. */
  void send_text(std::string_view text);
  /** Sends a close frame with `code` and closes once it is written. */
  void close_with(uint16_t code, std::string_view reason);

 protected:
  /** A complete text or binary message from the client. */
  virtual void on_data(ws::Opcode op, std::string_view data) = 0;
  bool closing() const { return close_sent_; }

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
};

}  // namespace comet
