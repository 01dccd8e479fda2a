#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <string>

#include "wire/message_builder.h"
#include "ws/frame_codec.h"

namespace comet {
namespace {

MessagePtr with_data(std::string data, std::string event = "") {
  return make_message("c", "E", 1, 0, std::move(event), std::move(data), 0);
}

std::string sse(std::string data, std::string event = "") {
  return with_data(std::move(data), std::move(event))->sse_body;
}

// Payload length as a browser would read it back from the header bytes.
uint64_t ws_payload_length(const Message& m) {
  const uint8_t* h = m.ws_header;
  const uint8_t len7 = h[1] & 0x7F;
  if (len7 < 126) return len7;
  const int bytes = len7 == 126 ? 2 : 8;
  uint64_t n = 0;
  for (int i = 0; i < bytes; ++i) n = (n << 8) | h[2 + i];
  return n;
}

TEST_CASE("make_message keeps every field") {
  MessagePtr m = make_message("chat:42", "k3j9q2m1x0aa", 17, 16, "typing", "hello", 1234);
  CHECK(m->channel == "chat:42");
  CHECK(m->epoch == "k3j9q2m1x0aa");
  CHECK(m->id == 17);
  CHECK(m->prev_id == 16);
  CHECK(m->event == "typing");
  CHECK(m->data == "hello");
  CHECK(m->published_ms == 1234);
}

TEST_CASE("the envelope matches the documented example byte for byte") {
  MessagePtr m = make_message("chat:42", "k3j9q2m1x0aa", 17, 16, "typing", "hello", 0);
  CHECK(
      m->envelope ==
      R"({"ch":"chat:42","id":17,"prev":16,"epoch":"k3j9q2m1x0aa","event":"typing","data":"hello"})");
}

TEST_CASE("the envelope leaves out what is not set") {
  CHECK(make_message("a", "E", 1, 0, "", "x", 0)->envelope ==
        R"({"ch":"a","id":1,"prev":0,"epoch":"E","data":"x"})");
  // An id-less (bare) publish has no id, prev or epoch.
  CHECK(make_message("a", "", 0, 0, "", "x", 0)->envelope == R"({"ch":"a","data":"x"})");
  CHECK(make_message("a", "", 0, 0, "ev", "x", 0)->envelope ==
        R"({"ch":"a","event":"ev","data":"x"})");
  CHECK(make_message("a", "E", 1, 0, "", "", 0)->envelope ==
        R"({"ch":"a","id":1,"prev":0,"epoch":"E","data":""})");
}

TEST_CASE("envelope data is always a JSON string, escaped for script and JSONP") {
  // JSON-looking data stays a string: the sidecar never interprets it.
  MessagePtr json = with_data(R"({"n":1})");
  CHECK(json->envelope == R"({"ch":"c","id":1,"prev":0,"epoch":"E","data":"{\"n\":1}"})");

  MessagePtr html = with_data("</script><b>&\xE2\x80\xA8\xE2\x80\xA9\n");
  CHECK(html->envelope.find('<') == std::string::npos);
  CHECK(html->envelope.find('>') == std::string::npos);
  CHECK(html->envelope.find('&') == std::string::npos);
  CHECK(html->envelope.find("\xE2\x80\xA8") == std::string::npos);
  CHECK(html->envelope.find('\n') == std::string::npos);
  CHECK(html->envelope.find(R"("data":"\u003c/script\u003e\u003cb\u003e\u0026\u2028\u2029\n")") !=
        std::string::npos);
}

TEST_CASE("the envelope parses back to the message") {
  const std::string data = "line1\r\nline2 \"quoted\" \\ tab\t \xC3\xA9 \xF0\x9F\x98\x80 <&>";
  MessagePtr m = make_message("news/x=1+2", "abc123", 42, 41, "ev.1:x", data, 0);
  rapidjson::Document doc;
  doc.Parse(m->envelope.c_str(), m->envelope.size());
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsObject());
  CHECK(std::string(doc["ch"].GetString()) == "news/x=1+2");
  CHECK(doc["id"].GetUint64() == 42);
  CHECK(doc["prev"].GetUint64() == 41);
  CHECK(std::string(doc["epoch"].GetString()) == "abc123");
  CHECK(std::string(doc["event"].GetString()) == "ev.1:x");
  CHECK(std::string(doc["data"].GetString(), doc["data"].GetStringLength()) == data);
  CHECK(doc.MemberCount() == 6);
}

TEST_CASE("the envelope carries 64-bit ids exactly") {
  MessagePtr m = make_message("a", "E", UINT64_MAX, UINT64_MAX - 1, "", "", 0);
  CHECK(m->envelope.find("\"id\":18446744073709551615,\"prev\":18446744073709551614") !=
        std::string::npos);
}

TEST_CASE("the SSE body is data lines, with an event line only when set") {
  CHECK(sse("hello") == "data: hello\n");
  CHECK(sse("hello", "typing") == "event: typing\ndata: hello\n");
  CHECK(sse("") == "data: \n");
  CHECK(sse("", "ping") == "event: ping\ndata: \n");
  // The raw payload, not the envelope: no JSON escaping.
  CHECK(sse("<a href=\"x\">&</a>") == "data: <a href=\"x\">&</a>\n");
  CHECK(sse("\xE2\x80\xA8") == "data: \xE2\x80\xA8\n");
}

TEST_CASE("the SSE body splits data at CR, LF and CRLF") {
  CHECK(sse("a\nb") == "data: a\ndata: b\n");
  CHECK(sse("a\rb") == "data: a\ndata: b\n");
  CHECK(sse("a\r\nb") == "data: a\ndata: b\n");  // CRLF is one break, not two
  CHECK(sse("a\nb\rc\r\nd") == "data: a\ndata: b\ndata: c\ndata: d\n");
}

TEST_CASE("the SSE body keeps empty lines, leading and trailing breaks") {
  CHECK(sse("a\n") == "data: a\ndata: \n");
  CHECK(sse("\na") == "data: \ndata: a\n");
  CHECK(sse("a\n\nb") == "data: a\ndata: \ndata: b\n");
  CHECK(sse("\n") == "data: \ndata: \n");
  CHECK(sse("\r") == "data: \ndata: \n");
  CHECK(sse("\r\n") == "data: \ndata: \n");
  // LF CR is two breaks; CR CR LF is CR then CRLF.
  CHECK(sse("a\n\rb") == "data: a\ndata: \ndata: b\n");
  CHECK(sse("a\r\r\nb") == "data: a\ndata: \ndata: b\n");
  CHECK(sse("a\r\n\r\nb") == "data: a\ndata: \ndata: b\n");
  CHECK(sse("a\r") == "data: a\ndata: \n");
}

TEST_CASE("the SSE body never holds a bare CR") {
  const std::string body = sse("x\ry\r\r\n\rz\r", "e");
  CHECK(body.find('\r') == std::string::npos);
  CHECK(body == "event: e\ndata: x\ndata: y\ndata: \ndata: \ndata: z\ndata: \n");
}

TEST_CASE("the WebSocket header frames the envelope as one text frame") {
  for (size_t size : {size_t{0}, size_t{10}, size_t{100}, size_t{125}, size_t{126}, size_t{200},
                      size_t{65535}, size_t{65536}, size_t{70000}}) {
    CAPTURE(size);
    MessagePtr m = with_data(std::string(size, 'x'));
    const size_t n = m->envelope.size();
    CHECK(m->ws_header[0] == 0x81);        // FIN + text, no RSV bits
    CHECK((m->ws_header[1] & 0x80) == 0);  // servers never mask
    CHECK(ws_payload_length(*m) == n);
    const size_t expected_len = n < 126 ? 2 : (n <= 0xFFFF ? 4 : 10);
    CHECK(m->ws_header_len == expected_len);

    uint8_t reference[10];
    const size_t ref_len = ws::encode_header(reference, ws::Opcode::kText, n, true);
    REQUIRE(ref_len == m->ws_header_len);
    CHECK(std::string(reinterpret_cast<const char*>(reference), ref_len) ==
          std::string(reinterpret_cast<const char*>(m->ws_header), m->ws_header_len));
  }
}

TEST_CASE("the WebSocket header and envelope make a frame identical to encode_frame") {
  MessagePtr m = make_message("a", "E", 3, 2, "e", "payload \xC3\xA9", 0);
  const std::string frame =
      std::string(reinterpret_cast<const char*>(m->ws_header), m->ws_header_len) + m->envelope;
  CHECK(frame == ws::encode_frame(ws::Opcode::kText, m->envelope));
}

TEST_CASE("monotonic_ms does not go backwards") {
  int64_t prev = monotonic_ms();
  for (int i = 0; i < 1000; ++i) {
    const int64_t now = monotonic_ms();
    CHECK(now >= prev);
    prev = now;
  }
}

}  // namespace
}  // namespace comet

namespace comet {
TEST_CASE("a message renders the SSE id line of a one-channel stream once") {
  CHECK(make_message("chat:42", "k3j9", 17, 16, "", "x", 0)->sse_id == "id: chat:42@k3j9.17\n");
  // A bare message (no id) moves no cursor.
  CHECK(make_message("chat:42", "", 0, 0, "", "x", 0)->sse_id.empty());
}
}  // namespace comet
