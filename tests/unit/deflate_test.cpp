// permessage-deflate compression (ws/deflate.h), checked against zlib used directly as
// a browser would: raw inflate of the payload plus 00 00 ff ff.

#include "ws/deflate.h"

#include <doctest/doctest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <thread>

using comet::ws::deflate_message;
using comet::ws::inflate_message;
using comet::ws::InflateStatus;

namespace {

// What a client does with a compressed message: append the tail, raw-inflate.
std::string client_inflate(std::string payload, int window_bits = 15) {
  payload.append("\x00\x00\xff\xff", 4);
  z_stream z{};
  REQUIRE(inflateInit2(&z, -window_bits) == Z_OK);
  std::string out(payload.size() * 20 + 64 * 1024, '\0');
  z.next_in = reinterpret_cast<Bytef*>(payload.data());
  z.avail_in = static_cast<uInt>(payload.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_SYNC_FLUSH);
  CHECK((rc == Z_OK || rc == Z_STREAM_END));
  CHECK(z.avail_in == 0);
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return out;
}

// What a client does to compress a message (RFC 7692 7.2.1), with options to misbehave.
std::string client_deflate(std::string_view data, int flush = Z_SYNC_FLUSH, bool strip = true) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, flush);
  CHECK((rc == Z_OK || rc == Z_STREAM_END));
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  if (strip && flush == Z_SYNC_FLUSH) {
    REQUIRE(out.size() >= 4);
    CHECK(out.substr(out.size() - 4) == std::string("\x00\x00\xff\xff", 4));
    out.resize(out.size() - 4);
  }
  return out;
}

std::string json_like(size_t n) {
  std::string s = "{\"ch\":\"chat:42\",\"id\":7,\"data\":\"";
  for (size_t i = 0; s.size() < n; ++i)
    s += "{\\\"user\\\":\\\"ann\\\",\\\"text\\\":\\\"hello " + std::to_string(i % 97) + "\\\"},";
  s.resize(n - 2);
  return s + "\"}";
}

std::string deflated(std::string_view data, int window_bits = 15) {
  std::string out;
  REQUIRE(deflate_message(data, window_bits, out));
  return out;
}

}  // namespace

TEST_CASE("deflate: a compressed message is one self-contained block a client inflates") {
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{1024}, size_t{70000}}) {
    CAPTURE(n);
    const std::string data = json_like(std::max<size_t>(n, 40));
    const std::string payload = deflated(data);
    CHECK(client_inflate(payload) == data);
    // Each message stands alone: the same input compresses to the same bytes every time.
    CHECK(deflated(data) == payload);
  }
  const std::string kb = json_like(1024);
  CHECK(deflated(kb).size() < kb.size() / 3);
  // deflate_message appends.
  std::string out = "prefix";
  REQUIRE(deflate_message("hello hello hello", 15, out));
  CHECK(out.substr(0, 6) == "prefix");
  CHECK(client_inflate(out.substr(6)) == "hello hello hello");
}

TEST_CASE("deflate: every window size is readable by a client with that window") {
  const std::string data = json_like(5000);
  for (int bits = 8; bits <= 15; ++bits) {
    CAPTURE(bits);
    CHECK(client_inflate(deflated(data, bits), bits) == data);
  }
}

TEST_CASE("deflate: inflate round trips what clients send, however they flush") {
  const std::string data = json_like(3000);
  std::string out;
  CHECK(inflate_message(client_deflate(data), 1 << 20, out) == InflateStatus::kOk);
  CHECK(out == data);
  // A final block (Z_FINISH) is allowed (RFC 7692 7.2.3.4).
  CHECK(inflate_message(client_deflate(data, Z_FINISH), 1 << 20, out) == InflateStatus::kOk);
  CHECK(out == data);
  // An empty message: a lone empty stored block, or nothing at all.
  CHECK(inflate_message(client_deflate(""), 100, out) == InflateStatus::kOk);
  CHECK(out.empty());
  CHECK(inflate_message(std::string(1, '\0'), 100, out) == InflateStatus::kOk);
  CHECK(out.empty());
  // Ours, too.
  CHECK(inflate_message(deflated(data), 1 << 20, out) == InflateStatus::kOk);
  CHECK(out == data);
}

TEST_CASE("deflate: the limit counts inflated bytes and stops a bomb early") {
  const std::string data(100000, 'a');
  const std::string bomb = client_deflate(data);
  CHECK(bomb.size() < 200);
  std::string out;
  CHECK(inflate_message(bomb, data.size(), out) == InflateStatus::kOk);
  CHECK(out == data);
  CHECK(inflate_message(bomb, data.size() - 1, out) == InflateStatus::kTooBig);
  CHECK(out.capacity() <= 2 * (data.size() + 1));
  // 16 MiB of zeros is about 16 KiB of deflate; with a 1 MiB limit inflation stops after
  // 1 MiB of output (the buffer never grows past it).
  const std::string huge = client_deflate(std::string(16 << 20, '\0'));
  CHECK(inflate_message(huge, 1 << 20, out) == InflateStatus::kTooBig);
  CHECK(out.capacity() <= (2u << 20));
}

TEST_CASE("deflate: invalid data is refused") {
  const std::string good = client_deflate(json_like(2000));
  std::string out;
  // Corrupt: a reserved block type (BTYPE 11).
  CHECK(inflate_message(std::string(1, '\x07'), 1 << 20, out) == InflateStatus::kInvalid);
  // Cut inside a block.
  CHECK(inflate_message(good.substr(0, good.size() / 2), 1 << 20, out) == InflateStatus::kInvalid);
  // The 00 00 ff ff tail kept (RFC 7692 7.2.1 says remove it): with the tail appended
  // again the message ends inside a stored block header, like any cut message.
  CHECK(inflate_message(client_deflate("{\"cmd\":\"ping\"}", Z_SYNC_FLUSH, false), 1 << 20, out) ==
        InflateStatus::kInvalid);
  // Data after a final block.
  CHECK(inflate_message(client_deflate("abc", Z_FINISH) + "xyz", 1 << 20, out) ==
        InflateStatus::kInvalid);
  // A match reaching back before the message (context takeover the client may not use):
  // a stored "abc" skipped, then a compressed stream whose first match has distance 3.
  std::string with_context;
  {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string buf(256, '\0');
    auto run = [&](std::string_view in) {
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z.avail_in = static_cast<uInt>(in.size());
      z.next_out = reinterpret_cast<Bytef*>(buf.data());
      z.avail_out = static_cast<uInt>(buf.size());
      REQUIRE(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
      return buf.substr(0, buf.size() - z.avail_out);
    };
    run("abcabcabcabc");  // the first message
    with_context = run("abcabcabcabc");
    deflateEnd(&z);
    with_context.resize(with_context.size() - 4);
  }
  CHECK(inflate_message(with_context, 1 << 20, out) == InflateStatus::kInvalid);
  // The stream is reset: the next good message inflates.
  CHECK(inflate_message(good, 1 << 20, out) == InflateStatus::kOk);
}

TEST_CASE("deflate: threads use their own streams") {
  const std::string data = json_like(4000);
  const std::string expected = deflated(data);
  bool ok[4] = {};
  std::thread threads[4];
  for (int t = 0; t < 4; ++t) {
    threads[t] = std::thread([&, t] {
      bool good = true;
      for (int i = 0; i < 50; ++i) {
        std::string c, back;
        good = good && deflate_message(data, 15, c) && c == expected &&
               inflate_message(c, 1 << 20, back) == InflateStatus::kOk && back == data;
      }
      ok[t] = good;
    });
  }
  for (auto& t : threads) t.join();
  for (bool b : ok) CHECK(b);
}
