// The WebSocket echo endpoint (--ws-echo-path): every text or binary message is sent
// back through the same codec, so standard conformance suites (Autobahn) can drive it.

#include "transports/transports.h"
#include "transports/ws_session.h"

namespace comet {
namespace {

class EchoSession final : public WsSession {
 public:
  explicit EchoSession(ClientPort& port) : WsSession(port, SessionKind::kEcho) {}

 protected:
  void on_data(ws::Opcode op, std::string_view data) override {
    if (closing() || !port_.check_output_limit()) return;
    uint8_t header[10];
    const size_t n = ws::encode_header(header, op, data.size(), true);
    port_.write(std::string_view(reinterpret_cast<const char*>(header), n));
    port_.write(data);
  }
};

}  // namespace

bool start_ws_echo(RequestContext& ctx, const ChannelRequest&) {
  accept_websocket(ctx);
  ctx.port.begin_session(std::make_unique<EchoSession>(ctx.port));
  return true;
}

}  // namespace comet
