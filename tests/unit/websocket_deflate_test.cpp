// permessage-deflate on GET /ws and the echo endpoint through the fake port: the
// negotiation in the 101, messages compressed once and shared, short ones plain,
// compressed commands, and the inflation limit. Compressed payloads are read back with
// zlib used directly, as a browser does.

#include <doctest/doctest.h>
#include <zlib.h>

#include <string>
#include <thread>
#include <vector>

#include "fake_port.h"
#include "ws/deflate.h"
#include "ws/frame_codec.h"

namespace comet {
namespace {

using test::close_payload;
using test::Frame;
using test::parse_frames;
using test::Seq;
using test::TestWorld;
using test::text_frame;
using test::ws_upgrade;

constexpr const char* kOffer = "permessage-deflate; client_max_window_bits";
constexpr const char* kAnswer =
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
    "client_no_context_takeover\r\n";

std::string client_inflate(std::string payload, int window_bits = 15) {
  payload.append("\x00\x00\xff\xff", 4);
  z_stream z{};
  REQUIRE(inflateInit2(&z, -window_bits) == Z_OK);
  std::string out(payload.size() * 50 + 4096, '\0');
  z.next_in = reinterpret_cast<Bytef*>(payload.data());
  z.avail_in = static_cast<uInt>(payload.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  CHECK(inflate(&z, Z_SYNC_FLUSH) == Z_OK);
  CHECK(z.avail_in == 0);
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return out;
}

std::string compress(std::string_view text) {
  std::string out;
  REQUIRE(ws::deflate_message(text, 15, out));
  return out;
}

std::string client_compressed(std::string_view text) {
  return ws::encode_masked_frame(ws::Opcode::kText, compress(text), 0x37fa213d, true, true);
}
std::string client_text(std::string_view text) {
  return ws::encode_masked_frame(ws::Opcode::kText, text, 0x37fa213d);
}

// A data string of `n` bytes that compresses well, as chat or dashboard JSON does.
std::string jsonish(size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i)
    s += "{\"user\":\"ann\",\"n\":" + std::to_string(i % 10) + "},";
  s.resize(n);
  return s;
}

Seq<Frame> frames(test::FakePort& port) { return Seq<Frame>(parse_frames(port.take())); }

// One /ws connection, upgraded with `extensions` offered (none when empty).
struct DeflateWorld : TestWorld {
  explicit DeflateWorld(const std::string& extensions = kOffer, const std::string& target = "/ws") {
    config().ws_deflate_min_bytes = 256;
    open(port, extensions, target);
  }
  void open(test::FakePort& p, const std::string& extensions, const std::string& target = "/ws") {
    std::vector<std::pair<std::string, std::string>> extra;
    if (!extensions.empty()) extra.emplace_back("sec-websocket-extensions", extensions);
    route(ws_upgrade(target, extra), p);
    const std::string out = p.take();
    const size_t end = out.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    head = out.substr(0, end + 4);
    REQUIRE(head.substr(0, 34) == "HTTP/1.1 101 Switching Protocols\r\n");
  }
  bool negotiated() const { return head.find("Sec-WebSocket-Extensions") != std::string::npos; }
  std::string head;
};

}  // namespace

TEST_CASE("WebSocket deflate: an offer is answered with no context takeover both ways") {
  DeflateWorld w;
  CHECK(w.head.find(kAnswer) != std::string::npos);
  DeflateWorld windowed("permessage-deflate; server_max_window_bits=10");
  CHECK(windowed.head.find("Sec-WebSocket-Extensions: permessage-deflate; "
                           "server_no_context_takeover; client_no_context_takeover; "
                           "server_max_window_bits=10\r\n") != std::string::npos);
  // No offer, an unacceptable one, or --ws-deflate off: the upgrade succeeds plainly.
  CHECK_FALSE(DeflateWorld("").negotiated());
  CHECK_FALSE(DeflateWorld("permessage-deflate; server_max_window_bits=4").negotiated());
  CHECK_FALSE(DeflateWorld("x-webkit-deflate-frame").negotiated());
  TestWorld off;
  off.config().ws_deflate = false;
  off.route(ws_upgrade("/ws", {{"sec-websocket-extensions", kOffer}}));
  const std::string head = off.port.take();
  CHECK(head.find("101 Switching") != std::string::npos);
  CHECK(head.find("Sec-WebSocket-Extensions") == std::string::npos);
}

TEST_CASE("WebSocket deflate: long messages go compressed (RSV1), short ones plain") {
  DeflateWorld w;
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\"}"));
  // Command answers are never compressed.
  CHECK(frames(w.port) ==
        Seq<Frame>{text_frame("{\"type\":\"subscribed\",\"ch\":\"a\",\"epoch\":\"\",\"id\":0}")});

  const MessagePtr big = w.deliver("a", jsonish(1024));
  const Seq<Frame> got = frames(w.port);
  REQUIRE(got.size() == 1);
  CHECK(got[0].rsv1);
  CHECK(got[0].opcode == 1);
  CHECK(got[0].payload.size() < big->envelope.size() / 3);
  CHECK(client_inflate(got[0].payload) == big->envelope);
  CHECK(w.port.shared_writes == 1);  // the shared frame, header included

  // Shorter than --ws-deflate-min-bytes: the plain frame.
  const MessagePtr small = w.deliver("a", "hi");
  REQUIRE(small->envelope.size() < 256);
  CHECK(frames(w.port) == Seq<Frame>{text_frame(small->envelope)});
}

TEST_CASE("WebSocket deflate: a message deflate would not shrink has no deflated frame") {
  // {"ch":"q","data":"Z"}: 21 bytes without a repeat deflate to 23.
  const MessagePtr tiny = make_message("q", "", 0, 0, "", "Z", 0);
  CHECK(tiny->envelope == "{\"ch\":\"q\",\"data\":\"Z\"}");
  CHECK(tiny->ws_deflated_frame(15).empty());
  CHECK(tiny->ws_deflated_frame(8).empty());
}

TEST_CASE("WebSocket deflate: one compression per message, shared by every deflate client") {
  DeflateWorld w;
  auto second = w.make_port();
  w.open(*second, kOffer);
  auto plain = w.make_port();
  w.open(*plain, "");
  auto small_window = w.make_port();
  w.open(*small_window, "permessage-deflate; server_max_window_bits=9");
  for (test::FakePort* p : {&w.port, second.get(), plain.get(), small_window.get()}) {
    p->input(client_text("{\"cmd\":\"sub\",\"ch\":\"a\"}"));
    p->take();
  }
  const MessagePtr m = w.deliver("a", jsonish(2000));
  const std::string a = w.port.take(), b = second->take();
  CHECK(a == b);
  const std::string_view shared = m->ws_deflated_frame(15);
  CHECK(a == shared);
  CHECK(m->ws_deflated_frame(15).data() == shared.data());  // built once, then the same bytes
  CHECK(frames(*plain) == Seq<Frame>{text_frame(m->envelope)});
  const Seq<Frame> nine = frames(*small_window);
  REQUIRE(nine.size() == 1);
  CHECK(nine[0].rsv1);
  CHECK(client_inflate(nine[0].payload, 9) == m->envelope);
  CHECK(m->holds(m->ws_deflated_frame(9)));
  second.reset();
  plain.reset();
  small_window.reset();
}

TEST_CASE("WebSocket deflate: workers racing for the same message compress it once") {
  DeflateWorld w;
  const MessagePtr m = w.deliver("nobody", jsonish(5000));
  std::vector<std::thread> threads;
  std::vector<const char*> seen(8);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] { seen[t] = m->ws_deflated_frame(15).data(); });
  for (auto& t : threads) t.join();
  for (const char* p : seen) CHECK(p == seen[0]);
}

TEST_CASE("WebSocket deflate: compressed commands are inflated and answered") {
  DeflateWorld w;
  w.port.input(client_compressed("{\"cmd\":\"ping\"}"));
  CHECK(frames(w.port) == Seq<Frame>{text_frame("{\"type\":\"pong\"}")});
  // A long command with many channels, compressed, mixed with plain ones.
  std::string sub = "{\"cmd\":\"sub\",\"ch\":[\"a\"],\"pad\":\"" + std::string(3000, ' ') + "\"}";
  w.port.input(client_compressed(sub) + client_text("{\"cmd\":\"ping\"}"));
  CHECK(frames(w.port) ==
        Seq<Frame>{text_frame("{\"type\":\"subscribed\",\"ch\":\"a\",\"epoch\":\"\",\"id\":0}"),
                   text_frame("{\"type\":\"pong\"}")});
}

TEST_CASE("WebSocket deflate: a command inflating past --max-message-bytes closes with 1009") {
  TestWorld w;
  w.config().max_message_bytes = 4096;
  w.route(ws_upgrade("/ws", {{"sec-websocket-extensions", kOffer}}));
  w.port.take();
  const std::string bomb = client_compressed(std::string(1 << 20, ' '));
  REQUIRE(bomb.size() < 4096);  // the frame itself is well within the limit
  w.port.input(bomb);
  const Seq<Frame> got = frames(w.port);
  REQUIRE(got.size() == 1);
  CHECK(got[0].opcode == 8);
  CHECK(got[0].payload.substr(0, 2) == close_payload(1009));
  CHECK(w.port.flush_close);
}

TEST_CASE(
    "WebSocket deflate: RSV1 without the extension or on control frames is 1002; "
    "garbage is 1007") {
  struct Case {
    const char* offer;
    std::string input;
    uint16_t code;
  };
  const Case cases[] = {
      {"", client_compressed("{\"cmd\":\"ping\"}"), 1002},
      {kOffer, ws::encode_masked_frame(ws::Opcode::kPing, "", 1, true, true), 1002},
      {kOffer, ws::encode_masked_frame(ws::Opcode::kText, std::string(1, '\x07'), 1, true, true),
       1007},
  };
  for (const Case& c : cases) {
    CAPTURE(c.code);
    DeflateWorld w(c.offer);
    w.port.input(c.input);
    const Seq<Frame> got = frames(w.port);
    REQUIRE(got.size() == 1);
    CHECK(got[0].opcode == 8);
    CHECK(got[0].payload.substr(0, 2) == close_payload(c.code));
  }
}

TEST_CASE("WebSocket deflate: the echo endpoint echoes compressed") {
  TestWorld w;
  w.config().ws_echo_path = "/echo";
  w.route(ws_upgrade("/echo", {{"sec-websocket-extensions", kOffer}}));
  CHECK(w.port.take().find(kAnswer) != std::string::npos);
  const std::string text = jsonish(1000);
  w.port.input(client_compressed(text) + client_text("short"));
  const Seq<Frame> got = frames(w.port);
  REQUIRE(got.size() == 2);
  CHECK(got[0].rsv1);
  CHECK(client_inflate(got[0].payload) == text);
  CHECK(got[1] == text_frame("short"));
}

}  // namespace comet
