#include "ws/frame_codec.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ws/deflate.h"

using namespace comet::ws;

namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

constexpr uint32_t kMask = 0x37fa213d;

// Records every callback as a string so whole runs can be compared.
struct Recorder : FrameHandler {
  std::vector<std::string> events;
  void on_message(Opcode op, std::string_view data) override {
    events.push_back((op == Opcode::kText ? "text:" : "binary:") + std::string(data));
  }
  void on_ping(std::string_view p) override { events.push_back("ping:" + std::string(p)); }
  void on_pong(std::string_view p) override { events.push_back("pong:" + std::string(p)); }
  void on_close(uint16_t code, std::string_view reason) override {
    events.push_back("close:" + std::to_string(code) + ":" + std::string(reason));
  }
  void on_protocol_error(uint16_t code, const char* why) override {
    CHECK(why != nullptr);
    events.push_back("error:" + std::to_string(code));
  }
};

struct Outcome {
  std::vector<std::string> events;
  size_t left = 0;  // bytes the caller still holds, unconsumed
  bool failed = false;
  bool closed = false;
};

// Plays the caller's role: appends `chunk` bytes at a time to a buffer, feeds
// the whole buffer and drops what was consumed.
Outcome run_chunked(std::string_view stream, DecoderLimits limits, size_t chunk) {
  Decoder d(limits);
  Recorder r;
  std::string buf;
  for (size_t off = 0; off < stream.size(); off += chunk) {
    buf.append(stream.substr(off, chunk));
    const size_t used = d.feed(buf, r);
    REQUIRE(used <= buf.size());
    buf.erase(0, used);
  }
  return {r.events, buf.size(), d.failed(), d.closed()};
}

// Decodes `stream` in one piece, one byte at a time and three bytes at a time;
// all three must agree exactly.
Outcome run(std::string_view stream, DecoderLimits limits = {}) {
  Outcome whole = run_chunked(stream, limits, std::max<size_t>(1, stream.size()));
  for (size_t chunk : {size_t{1}, size_t{3}}) {
    CAPTURE(chunk);
    Outcome split = run_chunked(stream, limits, chunk);
    CHECK(split.events == whole.events);
    CHECK(split.left == whole.left);
    CHECK(split.failed == whole.failed);
    CHECK(split.closed == whole.closed);
  }
  return whole;
}

using Events = std::vector<std::string>;

DecoderLimits unmasked_ok() {
  DecoderLimits l;
  l.require_mask = false;
  return l;
}

std::string masked(Opcode op, std::string_view payload, bool fin = true) {
  return encode_masked_frame(op, payload, kMask, fin);
}

// Expects `stream` to fail with exactly `code` and no other event.
void expect_error(std::string_view stream, uint16_t code, DecoderLimits limits = {}) {
  Outcome o = run(stream, limits);
  CHECK(o.failed);
  CHECK_FALSE(o.closed);
  CHECK(o.events == Events{"error:" + std::to_string(code)});
}

std::string close_frame(uint16_t code, std::string_view reason = {}) {
  std::string p = bytes({code >> 8, code & 0xFF});
  p.append(reason);
  return masked(Opcode::kClose, p);
}

}  // namespace

TEST_CASE("frame_codec: encode_header picks the shortest length form") {
  uint8_t h[10];
  CHECK(encode_header(h, Opcode::kText, 0) == 2);
  CHECK((h[0] == 0x81 && h[1] == 0x00));
  CHECK(encode_header(h, Opcode::kBinary, 125, false) == 2);
  CHECK((h[0] == 0x02 && h[1] == 125));
  CHECK(encode_header(h, Opcode::kBinary, 126) == 4);
  CHECK((h[1] == 126 && h[2] == 0x00 && h[3] == 126));
  CHECK(encode_header(h, Opcode::kBinary, 65535) == 4);
  CHECK((h[2] == 0xFF && h[3] == 0xFF));
  CHECK(encode_header(h, Opcode::kBinary, 65536) == 10);
  CHECK(std::string(reinterpret_cast<char*>(h), 10) == bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}));
}

TEST_CASE("frame_codec: RFC 6455 section 5.7 examples encode exactly") {
  CHECK(encode_frame(Opcode::kText, "Hello") == bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  CHECK(encode_masked_frame(Opcode::kText, "Hello", kMask) ==
        bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  CHECK(encode_frame(Opcode::kText, "Hel", false) == bytes({0x01, 0x03, 0x48, 0x65, 0x6c}));
  CHECK(encode_frame(Opcode::kContinuation, "lo") == bytes({0x80, 0x02, 0x6c, 0x6f}));
  CHECK(encode_frame(Opcode::kPing, "Hello") == bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  CHECK(encode_masked_frame(Opcode::kPong, "Hello", kMask) ==
        bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  const std::string b256 = encode_frame(Opcode::kBinary, std::string(256, 'x'));
  CHECK(b256.size() == 4 + 256);
  CHECK(b256.substr(0, 4) == bytes({0x82, 0x7E, 0x01, 0x00}));
  const std::string b64k = encode_frame(Opcode::kBinary, std::string(65536, 'y'));
  CHECK(b64k.size() == 10 + 65536);
  CHECK(b64k.substr(0, 10) == bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
  CHECK(encode_masked_frame(Opcode::kText, "", kMask, true, true) ==
        bytes({0xC1, 0x80, 0x37, 0xfa, 0x21, 0x3d}));
}

TEST_CASE("frame_codec: RFC 6455 section 5.7 examples decode") {
  CHECK(run(bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58})).events ==
        Events{"text:Hello"});
  CHECK(run(bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58})).events ==
        Events{"pong:Hello"});
  const DecoderLimits l = unmasked_ok();
  CHECK(run(bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), l).events == Events{"text:Hello"});
  CHECK(run(bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}), l).events ==
        Events{"text:Hello"});
  CHECK(run(bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), l).events == Events{"ping:Hello"});
}

TEST_CASE("frame_codec: 256-byte and 64KiB binary use 16- and 64-bit lengths") {
  for (size_t size : {size_t{256}, size_t{65536}}) {
    CAPTURE(size);
    std::string payload(size, '\0');
    for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>(i * 7 + 3);
    const std::string frame = encode_masked_frame(Opcode::kBinary, payload, 0xdeadbeef);
    CHECK(static_cast<uint8_t>(frame[1]) == (size == 256 ? 0xFE : 0xFF));
    CHECK(frame.size() == size + (size == 256 ? 8 : 14));
    Outcome o = run(frame);
    CHECK(o.events == Events{"binary:" + payload});
    CHECK(o.left == 0);
  }
}

TEST_CASE("frame_codec: feed consumes only whole frames") {
  const std::string a = masked(Opcode::kText, "one");
  const std::string b = masked(Opcode::kBinary, "two");
  const std::string stream = a + b + b.substr(0, 5);
  Decoder d({});
  Recorder r;
  CHECK(d.feed(stream, r) == a.size() + b.size());
  CHECK(r.events == Events{"text:one", "binary:two"});
  CHECK(d.feed(b.substr(0, 1), r) == 0);
  CHECK(d.feed(b, r) == b.size());
  CHECK(r.events == Events{"text:one", "binary:two", "binary:two"});
  CHECK(run(stream).left == 5);
}

TEST_CASE("frame_codec: fragmentation, interleaved control frames, empty messages") {
  const std::string text_frag = masked(Opcode::kText, "Hel", false) + masked(Opcode::kPing, "p1") +
                                masked(Opcode::kContinuation, "l", false) +
                                masked(Opcode::kPong, "p2") + masked(Opcode::kContinuation, "o");
  CHECK(run(text_frag).events == Events{"ping:p1", "pong:p2", "text:Hello"});
  CHECK(run(masked(Opcode::kBinary, "ab", false) + masked(Opcode::kContinuation, "", false) +
            masked(Opcode::kContinuation, "c"))
            .events == Events{"binary:abc"});
  CHECK(run(masked(Opcode::kText, "") + masked(Opcode::kBinary, "")).events ==
        Events{"text:", "binary:"});
  CHECK(run(masked(Opcode::kPing, "")).events == Events{"ping:"});
  CHECK(run(masked(Opcode::kPing, std::string(125, 'z'))).events ==
        Events{"ping:" + std::string(125, 'z')});
}

TEST_CASE("frame_codec: UTF-8 split across fragments is valid") {
  // "κόσμε" cut inside the two-byte κ and inside the three-byte ό.
  const std::string s = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5";
  const std::string stream = masked(Opcode::kText, s.substr(0, 1), false) +
                             masked(Opcode::kContinuation, s.substr(1, 2), false) +
                             masked(Opcode::kContinuation, s.substr(3));
  CHECK(run(stream).events == Events{"text:" + s});
  // U+10FFFF split over three fragments.
  const std::string max_cp = bytes({0xF4, 0x8F, 0xBF, 0xBF});
  CHECK(run(masked(Opcode::kText, max_cp.substr(0, 1), false) +
            masked(Opcode::kContinuation, max_cp.substr(1, 2), false) +
            masked(Opcode::kContinuation, max_cp.substr(3)))
            .events == Events{"text:" + max_cp});
  // Binary messages are never checked as UTF-8.
  CHECK(run(masked(Opcode::kBinary, bytes({0xFF, 0xC0}))).events ==
        Events{"binary:" + bytes({0xFF, 0xC0})});
}

TEST_CASE("frame_codec: invalid UTF-8 fails fast with 1007") {
  // Invalid in the first fragment: rejected without waiting for the rest.
  const std::string first = masked(Opcode::kText, bytes({'a', 0xF4, 0x90}), false);
  expect_error(first, kCloseInvalidPayload);
  // Fragments valid on their own that combine into a surrogate.
  expect_error(masked(Opcode::kText, bytes({0xED}), false) +
                   masked(Opcode::kContinuation, bytes({0xA0, 0x80})),
               kCloseInvalidPayload);
  // Truncated sequence at the end of the message.
  expect_error(masked(Opcode::kText, bytes({'o', 'k', 0xE2, 0x82})), kCloseInvalidPayload);
  expect_error(masked(Opcode::kText, bytes({0xC0, 0xAF})), kCloseInvalidPayload);
  // Inside one large frame: the error is reported when the bad byte arrives,
  // long before the frame is complete.
  std::string payload(1000, 'a');
  payload[10] = static_cast<char>(0xFF);
  const std::string big = masked(Opcode::kText, payload);
  Decoder d({});
  Recorder r;
  CHECK(d.feed(std::string_view(big).substr(0, 8 + 5), r) == 0);
  CHECK(r.events.empty());
  CHECK(d.feed(std::string_view(big).substr(0, 8 + 20), r) == 0);
  CHECK(r.events == Events{"error:1007"});
  CHECK(d.failed());
}

TEST_CASE("frame_codec: framing violations fail with 1002") {
  Outcome unmasked = run(encode_frame(Opcode::kText, "Hello"));
  CHECK(unmasked.events == Events{"error:1002"});
  CHECK(unmasked.left == 7);
  expect_error(encode_masked_frame(Opcode::kText, "x", kMask, true, true), kCloseProtocolError);
  expect_error(bytes({0xA1, 0x80, 0, 0, 0, 0}), kCloseProtocolError);  // RSV2
  expect_error(bytes({0x91, 0x80, 0, 0, 0, 0}), kCloseProtocolError);  // RSV3
  for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    CAPTURE(op);
    expect_error(bytes({0x80 | op, 0x80, 0, 0, 0, 0}), kCloseProtocolError);
  }
  expect_error(masked(Opcode::kPing, std::string(126, 'p')), kCloseProtocolError);
  expect_error(masked(Opcode::kPong, "x", false), kCloseProtocolError);
  expect_error(masked(Opcode::kClose, "", false), kCloseProtocolError);
  expect_error(masked(Opcode::kContinuation, "x"), kCloseProtocolError);
  CHECK(run(masked(Opcode::kText, "a", false) + masked(Opcode::kText, "b")).events ==
        Events{"error:1002"});
  CHECK(run(masked(Opcode::kText, "a", false) + masked(Opcode::kBinary, "b")).events ==
        Events{"error:1002"});
  // Continuation after a message already finished.
  CHECK(run(masked(Opcode::kText, "a") + masked(Opcode::kContinuation, "b")).events ==
        Events{"text:a", "error:1002"});
  // 64-bit length with the most significant bit set.
  DecoderLimits huge;
  huge.max_frame_bytes = UINT64_MAX;
  huge.max_message_bytes = UINT64_MAX;
  expect_error(bytes({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}), kCloseProtocolError,
               huge);
}

TEST_CASE("frame_codec: size limits fail with 1009 from the header alone") {
  DecoderLimits l;
  l.max_frame_bytes = 100;
  l.max_message_bytes = 150;
  CHECK(run(masked(Opcode::kBinary, std::string(100, 'a')), l).events ==
        Events{"binary:" + std::string(100, 'a')});
  const std::string too_big = masked(Opcode::kBinary, std::string(101, 'a'));
  expect_error(too_big, kCloseTooBig, l);
  // Only the 8 header bytes (2 + 16-bit length + mask) have arrived.
  Decoder d(l);
  Recorder r;
  CHECK(d.feed(std::string_view(too_big).substr(0, 8), r) == 0);
  CHECK(r.events == Events{"error:1009"});
  // A 64-bit length far beyond any limit is refused before the payload.
  Decoder d64({});
  Recorder r64;
  CHECK(d64.feed(bytes({0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}), r64) == 0);
  CHECK(r64.events == Events{"error:1009"});
  // Fragments within the frame limit whose sum exceeds the message limit.
  const std::string frag1 = masked(Opcode::kText, std::string(80, 'a'), false);
  const std::string frag2 = masked(Opcode::kContinuation, std::string(80, 'b'));
  CHECK(run(frag1 + frag2, l).events == Events{"error:1009"});
  Decoder dm(l);
  Recorder rm;
  CHECK(dm.feed(frag1 + frag2.substr(0, 6), rm) == frag1.size());
  CHECK(rm.events == Events{"error:1009"});
  // Exactly at the message limit is fine.
  CHECK(run(frag1 + masked(Opcode::kContinuation, std::string(70, 'b')), l).events ==
        Events{"text:" + std::string(80, 'a') + std::string(70, 'b')});
}

TEST_CASE("frame_codec: close frames") {
  Outcome empty = run(masked(Opcode::kClose, ""));
  CHECK(empty.events == Events{"close:1005:"});
  CHECK(empty.closed);
  CHECK(run(close_frame(1000, "bye")).events == Events{"close:1000:bye"});
  for (int code :
       {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1014, 3000, 3999, 4000, 4999}) {
    CAPTURE(code);
    CHECK(run(close_frame(static_cast<uint16_t>(code))).events ==
          Events{"close:" + std::to_string(code) + ":"});
  }
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    CAPTURE(code);
    expect_error(close_frame(static_cast<uint16_t>(code)), kCloseProtocolError);
  }
  expect_error(masked(Opcode::kClose, "x"), kCloseProtocolError);
  expect_error(close_frame(1000, bytes({0xCE, 0xBA, 0xFF})), kCloseInvalidPayload);
  CHECK(run(close_frame(1000, "\xCE\xBA")).events == Events{"close:1000:\xCE\xBA"});
}

TEST_CASE("frame_codec: decoder stops after close or error") {
  const std::string close = close_frame(1001, "going");
  const std::string after = masked(Opcode::kText, "ignored");
  Outcome o = run(masked(Opcode::kText, "a") + close + after);
  CHECK(o.events == Events{"text:a", "close:1001:going"});
  CHECK(o.left == after.size());

  Decoder d({});
  Recorder r;
  const std::string stream = masked(Opcode::kText, "a") + close + after;
  CHECK(d.feed(stream, r) == stream.size() - after.size());
  CHECK(d.closed());
  CHECK(d.feed(after, r) == 0);
  CHECK(r.events.size() == 2);

  Decoder e({});
  Recorder re;
  const std::string good = masked(Opcode::kText, "a");
  CHECK(e.feed(good + encode_frame(Opcode::kText, "unmasked") + good, re) == good.size());
  CHECK(e.failed());
  CHECK(e.feed(good, re) == 0);
  CHECK(re.events == Events{"text:a", "error:1002"});
}

TEST_CASE("frame_codec: large message buffer is reusable") {
  const std::string big(70000, 'q');
  CHECK(run(masked(Opcode::kText, big) + masked(Opcode::kText, "small") +
            masked(Opcode::kBinary, big))
            .events == Events{"text:" + big, "text:small", "binary:" + big});
}

TEST_CASE("frame_codec: encode_close") {
  CHECK(encode_close(1000, "") == bytes({0x88, 0x02, 0x03, 0xE8}));
  CHECK(encode_close(1001, "bye") == bytes({0x88, 0x05, 0x03, 0xE9, 'b', 'y', 'e'}));
  CHECK(encode_close(kCloseNoStatus, "ignored") == bytes({0x88, 0x00}));
  // Truncated to 123 reason bytes.
  const std::string c = encode_close(1000, std::string(300, 'r'));
  CHECK(c.size() == 2 + 125);
  CHECK(c.substr(4) == std::string(123, 'r'));
  // A three-byte character straddling byte 123 is dropped whole.
  const std::string reason = std::string(121, 'r') + "\xE2\x82\xAC" + "tail";
  const std::string t = encode_close(1000, reason);
  CHECK(t.substr(4) == std::string(121, 'r'));
  // Exactly fitting multi-byte reason is kept.
  const std::string fit = std::string(120, 'r') + "\xE2\x82\xAC";
  CHECK(encode_close(1000, fit).substr(4) == fit);
  // Invalid UTF-8 reason is dropped rather than sent.
  CHECK(encode_close(1002, bytes({0xFF})) == bytes({0x88, 0x02, 0x03, 0xEA}));
  // Round trip through a decoder that accepts unmasked frames.
  CHECK(run(encode_close(4001, "custom"), unmasked_ok()).events == Events{"close:4001:custom"});
}

// ---- permessage-deflate (RFC 7692): RSV1 marks a compressed message ----------------------

namespace {

DecoderLimits deflate_limits(uint64_t max_message = 1 << 20) {
  DecoderLimits l;
  l.permessage_deflate = true;
  l.max_frame_bytes = max_message;
  l.max_message_bytes = max_message;
  return l;
}

// "Hello" compressed as in RFC 7692 7.2.3.1 (f2 48 cd c9 c9 07 00).
const std::string kHelloDeflated = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});

std::string compressed(Opcode op, std::string_view deflated, bool fin = true) {
  return encode_masked_frame(op, deflated, kMask, fin, true);
}

}  // namespace

TEST_CASE("frame_codec: RSV1 messages are inflated when permessage-deflate was negotiated") {
  CHECK(run(compressed(Opcode::kText, kHelloDeflated), deflate_limits()).events ==
        Events{"text:Hello"});
  CHECK(run(compressed(Opcode::kBinary, kHelloDeflated), deflate_limits()).events ==
        Events{"binary:Hello"});
  // RFC 7692 7.2.3.1: the same message in two fragments, RSV1 on the first only, with
  // control frames and plain messages around it.
  const std::string fragmented =
      compressed(Opcode::kText, kHelloDeflated.substr(0, 3), false) + masked(Opcode::kPing, "p") +
      masked(Opcode::kContinuation, kHelloDeflated.substr(3)) + masked(Opcode::kText, "plain");
  CHECK(run(fragmented, deflate_limits()).events == Events{"ping:p", "text:Hello", "text:plain"});
  // An empty compressed message (a lone 0x00 byte, as the ws package sends it).
  CHECK(run(compressed(Opcode::kText, bytes({0x00})), deflate_limits()).events == Events{"text:"});
}

TEST_CASE("frame_codec: RSV1 misuse is a protocol error (1002)") {
  // Without the extension (the default limits), as before.
  expect_error(compressed(Opcode::kText, kHelloDeflated), kCloseProtocolError);
  // On control frames and continuations even with it (RFC 7692 6.1).
  expect_error(compressed(Opcode::kPing, ""), kCloseProtocolError, deflate_limits());
  expect_error(compressed(Opcode::kClose, ""), kCloseProtocolError, deflate_limits());
  CHECK(run(masked(Opcode::kText, "a", false) + compressed(Opcode::kContinuation, "b"),
            deflate_limits())
            .events == Events{"error:1002"});
  // RSV2 and RSV3 stay reserved.
  expect_error(bytes({0xE1, 0x80, 0, 0, 0, 0}), kCloseProtocolError, deflate_limits());
  expect_error(bytes({0xA1, 0x80, 0, 0, 0, 0}), kCloseProtocolError, deflate_limits());
}

TEST_CASE("frame_codec: bad compressed data is 1007, an inflated message over the limit 1009") {
  expect_error(compressed(Opcode::kText, bytes({0x07})), kCloseInvalidPayload, deflate_limits());
  expect_error(compressed(Opcode::kText, kHelloDeflated.substr(0, 3)), kCloseInvalidPayload,
               deflate_limits());
  // Inflates to invalid UTF-8: "\xff" in a stored block (BFINAL 0, stored, LEN 1, NLEN),
  // then the first byte of the empty stored block whose other 4 bytes are the tail.
  const std::string ff = bytes({0x00, 0x01, 0x00, 0xfe, 0xff, 0xff, 0x00});
  expect_error(compressed(Opcode::kText, ff), kCloseInvalidPayload, deflate_limits());
  CHECK(run(compressed(Opcode::kBinary, ff), deflate_limits()).events == Events{"binary:\xff"});
  // The limit counts inflated bytes: 300 'a' deflate to a few bytes, so the frame is
  // far below the limit while the message is not.
  std::string tiny;
  REQUIRE(deflate_message(std::string(300, 'a'), 15, tiny));
  REQUIRE(tiny.size() < 20);
  CHECK(run(compressed(Opcode::kText, tiny), deflate_limits(300)).events ==
        Events{"text:" + std::string(300, 'a')});
  CHECK(run(compressed(Opcode::kText, tiny), deflate_limits(299)).events == Events{"error:1009"});
  // 300 bytes stored (no compression) make a 306-byte payload, allowed at 306.
  std::string stored = bytes({0x00, 0x2c, 0x01, 0xd3, 0xfe});  // LEN 300, NLEN ~300
  stored.append(300, 'a');
  stored.push_back('\0');
  CHECK(run(compressed(Opcode::kText, stored), deflate_limits(306)).events ==
        Events{"text:" + std::string(300, 'a')});
}
