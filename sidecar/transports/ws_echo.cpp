// The WebSocket echo endpoint (--ws-echo-path): every text or binary message is sent
// back through the same codec, so standard conformance suites (Autobahn) can drive it.

#include "server/connection.h"
#include "transports/transports.h"
#include "transports/ws_session.h"

namespace comet {
namespace {

class EchoSession final : public WsSession {
 public:
  explicit EchoSession(Connection& conn) : WsSession(conn, SessionKind::kEcho) {}

 protected:
  void on_data(ws::Opcode op, std::string_view data) override {
    if (closing() || !conn_.check_output_limit()) return;
    uint8_t header[10];
    const size_t n = ws::encode_header(header, op, data.size(), true);
    conn_.write(std::string_view(reinterpret_cast<const char*>(header), n));
    conn_.write(data);
  }
};

}  // namespace

bool start_ws_echo(Connection& conn, const http::Request& request) {
  if (!accept_websocket(conn, request)) return false;
  conn.begin_session(std::make_unique<EchoSession>(conn));
  return true;
}

}  // namespace comet
