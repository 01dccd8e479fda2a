// GET /ws: the WebSocket pub/sub session (transports/websocket.cpp, transports/ws_session.cpp)
// through the fake port. Client frames are masked as a browser's are; the server's
// frames are read back by hand (test::parse_frames), not with the codec under test.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fake_port.h"
#include "http/response.h"
#include "ws/frame_codec.h"

namespace comet {
namespace {

using test::close_payload;
using test::error_body;
using test::Frame;
using test::parse_frames;
using test::Seq;
using test::TestWorld;
using test::text_frame;
using test::ws_upgrade;

constexpr const char* k101 =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";

std::string client(ws::Opcode op, std::string_view payload, bool fin = true) {
  return ws::encode_masked_frame(op, payload, 0x37fa213d, fin);
}
std::string client_text(std::string_view text) { return client(ws::Opcode::kText, text); }

std::string envelope(const std::string& ch, int id, const std::string& data,
                     const std::string& epoch = "E1") {
  return "{\"ch\":\"" + ch + "\",\"id\":" + std::to_string(id) +
         ",\"prev\":" + std::to_string(id - 1) + ",\"epoch\":\"" + epoch + "\",\"data\":\"" + data +
         "\"}";
}
std::string subscribed(const std::string& ch, const std::string& epoch, int id) {
  return "{\"type\":\"subscribed\",\"ch\":\"" + ch + "\",\"epoch\":\"" + epoch +
         "\",\"id\":" + std::to_string(id) + "}";
}
std::string ws_error(const std::string& json_message) {
  return "{\"type\":\"error\",\"error\":\"" + json_message + "\"}";
}

Frame close_frame(uint16_t code, std::string_view reason = "") {
  return Frame{true, 8, false, close_payload(code, reason)};
}

Seq<Frame> frames(test::FakePort& port) { return Seq<Frame>(parse_frames(port.take())); }

// A world with one accepted /ws connection (its 101 already taken).
struct WsWorld : TestWorld {
  explicit WsWorld(const std::string& target = "/ws") {
    route(ws_upgrade(target));
    const std::string out = port.take();
    REQUIRE(out.substr(0, std::string(k101).size()) == k101);
    rest = out.substr(std::string(k101).size());
  }
  std::string rest;  // frames written right after the 101
};

TEST_CASE("WebSocket: the 101 answer carries the RFC 6455 accept key; the session is set up") {
  TestWorld w;
  CHECK(w.route(test::ws_upgrade("/ws")) == true);
  CHECK(w.port.take() == k101);
  CHECK(w.port.session != nullptr);
  CHECK(w.sessions(SessionKind::kWebSocket) == 1);
  CHECK(w.port.read_timeout == ReadTimeout::kWebSocketIdle);
  CHECK(w.port.streaming);  // heartbeats (pings) reach it
  CHECK_FALSE(w.port.closing());
  CHECK_FALSE(w.port.session->answers_after_eof());
  CHECK(w.hub.subscription_count() == 0);
}

TEST_CASE("WebSocket: handshake errors are plain HTTP answers that close the connection") {
  TestWorld w;
  w.config().allowed_origins = {"https://app.example"};
  struct Case {
    http::Request request;
    int status;
    const char* message;
    const char* extra_header;
  };
  const Case cases[] = {
      {ws_upgrade("/ws", {{"sec-websocket-version", "8"}}), 426,
       "unsupported Sec-WebSocket-Version", "Sec-WebSocket-Version: 13\r\n"},
      {ws_upgrade("/ws", {{"sec-websocket-key", "short"}}), 400, "malformed Sec-WebSocket-Key", ""},
      {ws_upgrade("/ws", {{"upgrade", "h2c"}}), 400, "Upgrade header lacks websocket", ""},
      {ws_upgrade("/ws", {{"connection", "keep-alive"}}), 400, "Connection header lacks upgrade",
       ""},
      {test::get("/ws"), 400, "Upgrade header lacks websocket", ""},
      {ws_upgrade("/ws", {{"origin", "https://evil.example"}}), 403, "origin not allowed", ""},
      {ws_upgrade("/ws?ch=a@b"), 400,
       "invalid channel name 'a@b' (1-128 characters of A-Z a-z 0-9 _ . : / = + -)", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    test::FakePort port(w.ctx);
    CHECK(w.route(c.request, port) == false);
    const std::string body = error_body(c.status, c.message);
    CHECK(port.take() == "HTTP/1.1 " + std::to_string(c.status) + " " +
                             http::status_text(c.status) +
                             "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n" +
                             c.extra_header + "Content-Length: " + std::to_string(body.size()) +
                             "\r\nConnection: close\r\n\r\n" + body);
    CHECK(port.sessions_begun == 0);
    CHECK(port.flush_close);
  }
  CHECK(w.sessions(SessionKind::kWebSocket) == 0);
}

TEST_CASE("WebSocket: sub confirms the position, messages arrive as one text frame each") {
  WsWorld w;
  w.seed("a", 2);
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\"}"));
  CHECK(frames(w.port) == Seq<Frame>{text_frame(subscribed("a", "E1", 2))});
  CHECK(w.bus.prepared == std::vector<std::string>{"a"});
  CHECK(w.counters().subscriptions == 1);

  w.deliver("a", "hello", "typing");
  // Exact bytes: the shared frame header, then the shared envelope.
  const std::string env =
      "{\"ch\":\"a\",\"id\":3,\"prev\":2,\"epoch\":\"E1\",\"event\":\"typing\",\"data\":\"hello\"}";
  REQUIRE(env.size() < 126);
  CHECK(w.port.take() == std::string("\x81") + static_cast<char>(env.size()) + env);
  CHECK(w.port.shared_writes == 1);

  w.deliver("b", "not subscribed");
  CHECK(w.port.out == "");
}

TEST_CASE("WebSocket: a large envelope gets a 16-bit length") {
  WsWorld w;
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\"}"));
  w.port.take();
  const std::string data(300, 'x');
  w.deliver("a", data);
  const std::string env = envelope("a", 1, data);
  CHECK(w.port.take() == std::string("\x81\x7e") + static_cast<char>(env.size() >> 8) +
                             static_cast<char>(env.size() & 0xff) + env);
}

TEST_CASE("WebSocket: unsub confirms and stops delivery; the subscription is released") {
  WsWorld w;
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":[\"a\",\"b\"]}"));
  CHECK(frames(w.port) ==
        Seq<Frame>{text_frame(subscribed("a", "", 0)), text_frame(subscribed("b", "", 0))});
  CHECK(w.counters().subscriptions == 2);
  w.port.input(client_text("{\"cmd\":\"unsub\",\"ch\":\"a\"}"));
  CHECK(frames(w.port) == Seq<Frame>{text_frame("{\"type\":\"unsubscribed\",\"ch\":\"a\"}")});
  CHECK(w.counters().subscriptions == 1);
  CHECK(w.hub.subscription_count() == 1);
  w.deliver("a", "gone");
  w.deliver("b", "still");
  CHECK(frames(w.port) == Seq<Frame>{text_frame(envelope("b", 1, "still"))});
}

TEST_CASE("WebSocket: sub with since replays after it; a channel unknown here is reset first") {
  WsWorld w;
  w.seed("a", 3);
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":[\"a\",\"b\"],\"since\":\"E1.1\"}"));
  CHECK(frames(w.port) ==
        Seq<Frame>{text_frame(subscribed("a", "E1", 1)), text_frame(envelope("a", 2, "m2")),
                   text_frame(envelope("a", 3, "m3")),
                   // b never had a message here, so E1.1 cannot be honoured: the reset
                   // notice comes before the confirmation.
                   text_frame("{\"type\":\"reset\",\"ch\":\"b\",\"reason\":\"epoch-changed\","
                              "\"epoch\":\"\",\"id\":0}"),
                   text_frame(subscribed("b", "", 0))});
}

TEST_CASE("WebSocket: channels in the query string are subscribed at once, cursor= resumes") {
  TestWorld w;
  w.seed("a", 2);
  w.route(ws_upgrade("/ws?ch=a,b&cursor=a@E1.1"));
  const std::string out = w.port.take();
  REQUIRE(out.substr(0, std::string(k101).size()) == k101);
  CHECK(Seq<Frame>(parse_frames(out.substr(std::string(k101).size()))) ==
        Seq<Frame>{text_frame(subscribed("a", "E1", 1)), text_frame(envelope("a", 2, "m2")),
                   text_frame(subscribed("b", "", 0))});
  CHECK(w.counters().subscriptions == 2);
}

TEST_CASE("WebSocket: subscribing again keeps the position and sends nothing") {
  WsWorld w;
  w.seed("a", 2);
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\",\"since\":\"E1.1\"}"));
  CHECK(frames(w.port) ==
        Seq<Frame>{text_frame(subscribed("a", "E1", 1)), text_frame(envelope("a", 2, "m2"))});
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\",\"since\":\"E1.0\"}"));
  CHECK(w.port.out == "");
  CHECK(w.counters().subscriptions == 1);
}

TEST_CASE("WebSocket: ping command, ping frames and bad commands; the socket stays open") {
  WsWorld w;
  w.port.input(client_text("{\"cmd\":\"ping\"}"));
  CHECK(frames(w.port) == Seq<Frame>{text_frame("{\"type\":\"pong\"}")});
  w.port.input(client(ws::Opcode::kPing, "hi"));
  CHECK(frames(w.port) == Seq<Frame>{Frame{true, 10, false, "hi"}});
  w.port.input(client(ws::Opcode::kPong, "unsolicited"));
  CHECK(w.port.out == "");

  struct Case {
    const char* command;
    std::string error;
  };
  const Case cases[] = {
      {"not json", ws_error("expected a JSON object with a \\\"cmd\\\" string")},
      {"[1,2]", ws_error("expected a JSON object with a \\\"cmd\\\" string")},
      {"{\"cmd\":7}", ws_error("expected a JSON object with a \\\"cmd\\\" string")},
      {"{\"cmd\":\"publish\"}", ws_error("unknown cmd (expected sub, unsub, auth or ping)")},
      {"{\"cmd\":\"sub\"}",
       ws_error("ch must be a channel name or an array of them (1-128 of A-Z a-z 0-9 _ . : / = + "
                "-)")},
      {"{\"cmd\":\"sub\",\"ch\":\"a b\"}",
       ws_error("ch must be a channel name or an array of them (1-128 of A-Z a-z 0-9 _ . : / = + "
                "-)")},
      {"{\"cmd\":\"sub\",\"ch\":[]}",
       ws_error("ch must be a channel name or an array of them (1-128 of A-Z a-z 0-9 _ . : / = + "
                "-)")},
      {"{\"cmd\":\"unsub\",\"ch\":[\"a\",5]}",
       ws_error("ch must be a channel name or an array of them (1-128 of A-Z a-z 0-9 _ . : / = + "
                "-)")},
      {"{\"cmd\":\"sub\",\"ch\":\"a\",\"since\":\"17\"}",
       ws_error("since must be a position \\\"EPOCH.ID\\\" (the epoch and id of the last message "
                "seen)")},
      {"{\"cmd\":\"sub\",\"ch\":\"a\",\"since\":17}",
       ws_error("since must be a position \\\"EPOCH.ID\\\" (the epoch and id of the last message "
                "seen)")},
  };
  for (const Case& c : cases) {
    CAPTURE(c.command);
    w.port.input(client_text(c.command));
    CHECK(frames(w.port) == Seq<Frame>{text_frame(c.error)});
  }
  CHECK_FALSE(w.port.closing());
  CHECK(w.hub.subscription_count() == 0);
}

TEST_CASE("WebSocket: since null means from the head") {
  WsWorld w;
  w.seed("a", 2);
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\",\"since\":null}"));
  CHECK(frames(w.port) == Seq<Frame>{text_frame(subscribed("a", "E1", 2))});
}

TEST_CASE("WebSocket: max-channels bounds the subscriptions of one socket") {
  WsWorld w;
  w.config().max_channels = 1;
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":[\"a\",\"b\"]}"));
  CHECK(frames(w.port) ==
        Seq<Frame>{text_frame(subscribed("a", "", 0)),
                   text_frame(ws_error("too many channels (max-channels is 1)"))});
  CHECK(w.counters().subscriptions == 1);
}

TEST_CASE("WebSocket: the client's close is echoed with its code, then the socket closes") {
  WsWorld w;
  w.port.input(client(ws::Opcode::kClose, close_payload(1000, "bye")) +
               client_text("{\"cmd\":\"ping\"}"));  // after the close: ignored
  CHECK(frames(w.port) == Seq<Frame>{close_frame(1000)});
  CHECK(w.port.flush_close);
  CHECK_FALSE(w.port.closed_now);
  CHECK(w.port.input_left() == 0);
  w.deliver("a", "x");
  w.port.heartbeat();
  CHECK(w.port.out == "");
}

TEST_CASE("WebSocket: an empty close is answered with an empty close") {
  WsWorld w;
  w.port.input(client(ws::Opcode::kClose, ""));
  CHECK(frames(w.port) == Seq<Frame>{Frame{true, 8, false, ""}});
  CHECK(w.port.flush_close);
}

TEST_CASE("WebSocket: a binary message closes with 1003") {
  WsWorld w;
  w.port.input(client(ws::Opcode::kBinary, std::string("\x00\x01", 2)));
  CHECK(frames(w.port) == Seq<Frame>{close_frame(1003, "binary messages are not accepted")});
  CHECK(w.port.flush_close);
}

TEST_CASE("WebSocket: protocol errors close with their code") {
  WsWorld w;
  uint16_t expected = 0;
  SUBCASE("unmasked frame: 1002") {
    w.port.input(ws::encode_frame(ws::Opcode::kText, "{\"cmd\":\"ping\"}"));
    expected = 1002;
  }
  SUBCASE("invalid UTF-8 text: 1007") {
    w.port.input(client_text("\xff\xfe"));
    expected = 1007;
  }
  SUBCASE("message over max-message-bytes: 1009") {
    w.config().max_message_bytes = 16;  // read when the session was made: a new socket
    test::FakePort small(w.ctx);
    w.route(ws_upgrade("/ws"), small);
    small.take();
    small.input(client_text(std::string(17, 'x')));
    const Seq<Frame> got = frames(small);
    REQUIRE(got.size() == 1);
    CHECK(got[0].opcode == 8);
    CHECK(got[0].payload.substr(0, 2) == close_payload(1009));
    CHECK(small.flush_close);
    return;
  }
  const Seq<Frame> got = frames(w.port);
  REQUIRE(got.size() == 1);
  CHECK(got[0].opcode == 8);
  CHECK(got[0].payload.substr(0, 2) == close_payload(expected));
  CHECK(w.port.flush_close);
  CHECK(w.port.out == "");
}

TEST_CASE("WebSocket: frames split across reads and several frames in one read") {
  WsWorld w;
  const std::string bytes =
      client_text("{\"cmd\":\"ping\"}") + client_text("{\"cmd\":\"sub\",\"ch\":\"a\"}");
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    w.port.input(bytes.substr(i, 1));
    if (i + 1 < client_text("{\"cmd\":\"ping\"}").size()) CHECK(w.port.out == "");
  }
  CHECK(frames(w.port) == Seq<Frame>{text_frame("{\"type\":\"pong\"}")});
  w.port.input(bytes.substr(bytes.size() - 1));
  CHECK(frames(w.port) == Seq<Frame>{text_frame(subscribed("a", "", 0))});
  CHECK(w.port.input_left() == 0);

  w.port.input(client_text("{\"cmd\":\"ping\"}") + client_text("{\"cmd\":\"unsub\",\"ch\":\"a\"}"));
  CHECK(frames(w.port) == Seq<Frame>{text_frame("{\"type\":\"pong\"}"),
                                     text_frame("{\"type\":\"unsubscribed\",\"ch\":\"a\"}")});
}

TEST_CASE("WebSocket: a fragmented command is reassembled") {
  WsWorld w;
  w.port.input(client(ws::Opcode::kText, "{\"cmd\":", false) +
               client(ws::Opcode::kPing, "mid") +  // control frames may interleave
               client(ws::Opcode::kContinuation, "\"ping\"}"));
  CHECK(frames(w.port) ==
        Seq<Frame>{Frame{true, 10, false, "mid"}, text_frame("{\"type\":\"pong\"}")});
}

TEST_CASE("WebSocket: heartbeats are empty pings; the idle timeout closes at once") {
  WsWorld w;
  w.port.heartbeat();
  CHECK(w.port.take() == std::string("\x89\x00", 2));
  w.port.timeout();
  CHECK(w.port.closed_now);
  CHECK(w.port.close_reason == "websocket idle");
}

TEST_CASE("WebSocket: shutdown sends 1001 going away") {
  WsWorld w;
  w.port.shutdown();
  CHECK(frames(w.port) == Seq<Frame>{close_frame(1001, "server shutting down")});
  CHECK(w.port.flush_close);
}

TEST_CASE("WebSocket: a slow reader is cut when a message is due") {
  WsWorld w;
  w.config().max_output_bytes = 100;
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\"}"));
  w.port.take();
  w.port.unsent = 101;
  w.deliver("a", "x");
  CHECK(w.port.out == "");
  CHECK(w.port.close_reason == "slow reader");
  CHECK(w.counters().slow_readers_cut == 1);
}

TEST_CASE("WebSocket: a sub made while the channel syncs is confirmed once it is positioned") {
  WsWorld w;
  w.hub.begin_sync("a");
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\",\"since\":\"E4.1\"}"));
  CHECK(w.port.out == "");
  w.hub.finish_sync("a", "E4", 2,
                    {make_message("a", "E4", 1, 0, "", "m1", monotonic_ms()),
                     make_message("a", "E4", 2, 1, "", "m2", monotonic_ms())});
  CHECK(frames(w.port) ==
        Seq<Frame>{text_frame(subscribed("a", "E4", 1)), text_frame(envelope("a", 2, "m2", "E4"))});
}

TEST_CASE("WebSocket: a sub undone by unsub before the sync gets only unsubscribed") {
  WsWorld w;
  w.hub.begin_sync("a");
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\"}"));
  w.port.input(client_text("{\"cmd\":\"unsub\",\"ch\":\"a\"}"));
  CHECK(frames(w.port) == Seq<Frame>{text_frame("{\"type\":\"unsubscribed\",\"ch\":\"a\"}")});
  w.hub.finish_sync("a", "E4", 0, {});
  CHECK(w.port.out == "");
  CHECK(w.hub.subscription_count() == 0);
}

TEST_CASE("WebSocket: a long replay follows the reader's pace, then live messages") {
  WsWorld w;
  w.config().max_output_bytes = 600;
  w.seed("a", 30);
  w.port.peer_stalled = true;
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\",\"since\":\"E1.0\"}"));
  CHECK(w.port.drain_watch);
  CHECK_FALSE(w.port.closing());
  w.deliver("a", "live");
  int rounds = 0;
  while (w.port.drain_watch && rounds++ < 100) w.port.drain(0);
  Seq<Frame> expected{text_frame(subscribed("a", "E1", 0))};
  for (int i = 1; i <= 30; ++i)
    expected.push_back(text_frame(envelope("a", i, "m" + std::to_string(i))));
  expected.push_back(text_frame(envelope("a", 31, "live")));
  CHECK(frames(w.port) == expected);
  CHECK(rounds >= 2);
}

TEST_CASE("WebSocket: the session's subscriptions go with it") {
  WsWorld w;
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":[\"a\",\"b\",\"c\"]}"));
  CHECK(w.counters().subscriptions == 3);
  w.port.session.reset();
  CHECK(w.counters().subscriptions == 0);
  CHECK(w.sessions(SessionKind::kWebSocket) == 0);
  CHECK(w.hub.subscription_count() == 0);
}

}  // namespace
}  // namespace comet
