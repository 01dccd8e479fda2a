// The WebSocket echo endpoint (--ws-echo-path): every text or binary message is sent
// back through the same codec, so standard conformance suites (Autobahn) can drive it.

#include "transports/transports.h"
#include "transports/ws_session.h"

namespace comet {
namespace {

class EchoSession final : public WsSession {
 public:
  EchoSession(ClientPort& port, ws::DeflateAgreement deflate)
      : WsSession(port, SessionKind::kEcho, deflate) {}

 protected:
  // Echoed compressed when permessage-deflate was negotiated (Autobahn's section 12/13).
  void on_data(ws::Opcode op, std::string_view data) override { send_data(op, data); }
};

}  // namespace

bool start_ws_echo(RequestContext& ctx, const ChannelRequest&) {
  const ws::DeflateAgreement deflate = accept_websocket(ctx);
  ctx.port.begin_session(std::make_unique<EchoSession>(ctx.port, deflate));
  return true;
}

}  // namespace comet
