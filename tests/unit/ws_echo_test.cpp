// The WebSocket echo endpoint (--ws-echo-path, transports/ws_echo.cpp) through the fake
// port.

#include <doctest/doctest.h>

#include <string>

#include "fake_port.h"
#include "ws/frame_codec.h"

namespace comet {
namespace {

using test::close_payload;
using test::Frame;
using test::parse_frames;
using test::parse_response;
using test::Seq;
using test::TestWorld;
using test::ws_upgrade;

constexpr const char* k101 =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";

std::string client(ws::Opcode op, std::string_view payload, bool fin = true) {
  return ws::encode_masked_frame(op, payload, 0xa1b2c3d4, fin);
}

Seq<Frame> frames(test::FakePort& port) { return Seq<Frame>(parse_frames(port.take())); }

struct EchoWorld : TestWorld {
  EchoWorld() {
    config().ws_echo_path = "/echo";
    route(ws_upgrade("/echo"));
    REQUIRE(port.take() == k101);
  }
};

TEST_CASE("echo: the upgrade is answered with 101 and an echo session") {
  TestWorld w;
  w.config().ws_echo_path = "/echo";
  CHECK(w.route(ws_upgrade("/echo")) == true);
  CHECK(w.port.take() == k101);
  CHECK(w.sessions(SessionKind::kEcho) == 1);
  CHECK(w.sessions(SessionKind::kWebSocket) == 0);
  CHECK(w.port.read_timeout == ReadTimeout::kWebSocketIdle);
  CHECK(w.port.streaming);
  w.port.session.reset();
  CHECK(w.sessions(SessionKind::kEcho) == 0);
}

TEST_CASE("echo: text and binary messages come back unchanged, unmasked") {
  EchoWorld w;
  w.port.input(client(ws::Opcode::kText, "héllo"));
  CHECK(w.port.take() == std::string("\x81\x06h\xc3\xa9llo"));
  const std::string binary("\x00\xff\x10\x80", 4);
  w.port.input(client(ws::Opcode::kBinary, binary));
  CHECK(w.port.take() == std::string("\x82\x04", 2) + binary);
  w.port.input(client(ws::Opcode::kText, ""));
  CHECK(w.port.take() == std::string("\x81\x00", 2));
  CHECK_FALSE(w.port.closing());
}

TEST_CASE("echo: a {\"cmd\":...} text is echoed, not interpreted") {
  EchoWorld w;
  w.port.input(client(ws::Opcode::kText, "{\"cmd\":\"sub\",\"ch\":\"a\"}"));
  CHECK(frames(w.port) == Seq<Frame>{test::text_frame("{\"cmd\":\"sub\",\"ch\":\"a\"}")});
  CHECK(w.hub.subscription_count() == 0);
}

TEST_CASE("echo: a fragmented message is echoed whole, in one frame") {
  EchoWorld w;
  w.port.input(client(ws::Opcode::kBinary, "ab", false) +
               client(ws::Opcode::kContinuation, "cd", false) +
               client(ws::Opcode::kContinuation, "ef"));
  CHECK(frames(w.port) == Seq<Frame>{Frame{true, 2, false, "abcdef"}});
}

TEST_CASE("echo: 16-bit and 64-bit payload lengths") {
  EchoWorld w;
  w.config().max_message_bytes = 1 << 17;
  test::FakePort big(w.ctx);
  w.route(ws_upgrade("/echo"), big);
  big.take();
  const std::string medium(126, 'm');
  big.input(client(ws::Opcode::kText, medium));
  CHECK(big.take() == std::string("\x81\x7e\x00\x7e", 4) + medium);
  const std::string large(70000, 'L');
  big.input(client(ws::Opcode::kBinary, large));
  CHECK(big.take() == std::string("\x82\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10) + large);
}

TEST_CASE("echo: ping, close and the goodbye") {
  EchoWorld w;
  w.port.input(client(ws::Opcode::kPing, "p"));
  CHECK(frames(w.port) == Seq<Frame>{Frame{true, 10, false, "p"}});
  w.port.heartbeat();
  CHECK(w.port.take() == std::string("\x89\x00", 2));
  SUBCASE("the client closes") {
    w.port.input(client(ws::Opcode::kClose, close_payload(4000, "done")));
    CHECK(frames(w.port) == Seq<Frame>{Frame{true, 8, false, close_payload(4000)}});
    w.port.input(client(ws::Opcode::kText, "late"));
    CHECK(w.port.out == "");
  }
  SUBCASE("the server stops") {
    w.port.shutdown();
    CHECK(frames(w.port) ==
          Seq<Frame>{Frame{true, 8, false, close_payload(1001, "server shutting down")}});
  }
  CHECK(w.port.flush_close);
}

TEST_CASE("echo: frames wait while the client leaves its output unread (input backpressure)") {
  EchoWorld w;
  w.config().max_output_bytes = 10;
  w.port.unsent = 6;  // over the soft watermark (half of max-output-bytes)
  w.port.input(client(ws::Opcode::kText, "x"));
  CHECK(w.port.out == "");  // not decoded, not answered: it waits in the input
  CHECK(w.port.input_left() > 0);
  CHECK(w.port.close_reason == "");
  w.port.unsent = 0;  // the client read its output
  w.port.input("");
  CHECK(frames(w.port) == Seq<Frame>{Frame{true, 1, false, "x"}});
  CHECK(w.port.input_left() == 0);
}

TEST_CASE("echo: a ping flood gets pongs only up to the soft watermark; the rest waits") {
  EchoWorld w;
  w.config().max_output_bytes = 4096;
  w.port.peer_stalled = true;  // the flooder reads nothing
  std::string flood;
  for (int i = 0; i < 1000; ++i) flood += client(ws::Opcode::kPing, "0123456789");
  w.port.input(flood);
  // Pongs stop once half of max-output-bytes is unread; the pings wait in the input
  // (the connection stops reading: tested against the real Connection in
  // tests/integration/attacks.test.mjs).
  CHECK(w.port.unsent > 2048);
  CHECK(w.port.unsent <= 2048 + 12);
  CHECK(w.port.input_left() > 0);
  CHECK(w.port.close_reason == "");
}

TEST_CASE("echo: off unless --ws-echo-path; not switched off by --transports") {
  TestWorld w;
  SUBCASE("no echo path: not found") {
    w.route(ws_upgrade("/echo"));
    CHECK(parse_response(w.port.take()).status == 404);
    CHECK(w.port.flush_close);  // a refused upgrade closes
  }
  SUBCASE("--transports without any of the switchable ones") {
    w.config().ws_echo_path = "/echo";
    w.config().transports = {};
    w.route(ws_upgrade("/echo"));
    CHECK(w.port.take() == k101);
  }
  SUBCASE("a handshake error on the echo path closes like /ws") {
    w.config().ws_echo_path = "/echo";
    CHECK(w.route(ws_upgrade("/echo", {{"sec-websocket-version", "7"}})) == false);
    const test::HttpResponse r = parse_response(w.port.take());
    CHECK(r.status == 426);
    CHECK(r.header_or("sec-websocket-version") == "13");
    CHECK(r.header_or("connection") == "close");
    CHECK(w.port.flush_close);
  }
  SUBCASE("echo needs GET") {
    w.config().ws_echo_path = "/echo";
    w.route(test::make_request("POST", "/echo"));
    const test::HttpResponse r = parse_response(w.port.take());
    CHECK(r.status == 405);
    CHECK(r.header_or("allow") == "GET, OPTIONS");
  }
}

}  // namespace
}  // namespace comet
