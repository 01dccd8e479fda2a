// The legacy streaming formats: GET /stream?format=xhr|iframe|htmlfile|multipart and
// /sse?format=dom-event-stream (transports/stream.cpp, transports/stream_formats.cpp)
// through the fake port.

#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "fake_port.h"

namespace comet {
namespace {

using test::dechunk;
using test::error_body;
using test::get;
using test::parse_response;
using test::Seq;
using test::TestWorld;

// One chunk of a chunked body, its size in lower-case hex without leading zeros.
std::string chunk(const std::string& payload) {
  char size[24];
  snprintf(size, sizeof size, "%zx", payload.size());
  return std::string(size) + "\r\n" + payload + "\r\n";
}

std::string stream_head(const std::string& content_type, bool chunked = true,
                        const std::string& cors = "") {
  return "HTTP/1.1 200 OK\r\n"
         "Content-Type: " +
         content_type +
         "\r\n"
         "Cache-Control: no-cache, no-store\r\n"
         "X-Accel-Buffering: no\r\n"
         "X-Content-Type-Options: nosniff\r\n" +
         (chunked ? "Transfer-Encoding: chunked\r\n" : "") + cors + "Connection: close\r\n\r\n";
}

const std::string kXhrType = "application/x-ndjson; charset=utf-8";

std::string open_json(const std::string& cursor) {
  return "{\"type\":\"open\",\"cursor\":\"" + cursor + "\"}";
}
std::string reconnect_json(const std::string& cursor) {
  return "{\"type\":\"reconnect\",\"cursor\":\"" + cursor + "\"}";
}
std::string envelope(const std::string& ch, int id, const std::string& data) {
  return "{\"ch\":\"" + ch + "\",\"id\":" + std::to_string(id) +
         ",\"prev\":" + std::to_string(id - 1) + ",\"epoch\":\"E1\",\"data\":\"" + data + "\"}";
}

// Splits a chunked stream response after checking its head.
Seq<std::string> chunks_after(const std::string& out, const std::string& head,
                              bool expect_end = false) {
  REQUIRE(out.substr(0, head.size()) == head);
  const test::Chunks c = dechunk(std::string_view(out).substr(head.size()));
  CHECK(c.ok);  // every size line matches its chunk
  CHECK(c.terminated == expect_end);
  return Seq<std::string>(c.chunks);
}

struct StreamWorld : TestWorld {
  explicit StreamWorld(HubLimits limits = {}) : TestWorld(limits) {
    config().stream_padding_bytes = 4;
  }
};

TEST_CASE("stream xhr: chunked, padding, open notice with the cursor, envelopes and heartbeats") {
  StreamWorld w;
  w.seed("a", 1);
  CHECK(w.route(get("/stream?ch=a")) == false);  // format=xhr is the default
  CHECK(w.port.session != nullptr);
  CHECK(w.sessions(SessionKind::kStream) == 1);
  CHECK(w.port.streaming);
  CHECK(w.port.read_timeout == ReadTimeout::kNone);
  // Exact bytes, chunk sizes included: 5 bytes of padding line, 0x22 of open notice.
  CHECK(w.port.take() == stream_head(kXhrType) +
                             "5\r\n    \n\r\n"
                             "22\r\n{\"type\":\"open\",\"cursor\":\"a@E1.1\"}\n\r\n");

  w.deliver("a", "hi");
  CHECK(w.port.take() == chunk(envelope("a", 2, "hi") + "\n"));
  w.port.heartbeat();
  CHECK(w.port.take() == "e\r\n{\"type\":\"hb\"}\n\r\n");
  CHECK(w.port.end_calls == 0);
}

TEST_CASE("stream xhr: the byte budget ends the response with a reconnect notice at end of turn") {
  StreamWorld w;
  w.config().stream_byte_budget = 120;
  w.seed("a", 1);
  w.route(get("/stream?ch=a&format=xhr"));
  CHECK(chunks_after(w.port.take(), stream_head(kXhrType)) ==
        Seq<std::string>{"    \n", open_json("a@E1.1") + "\n"});  // 5 + 34 = 39 bytes
  w.deliver("a", "under the budget");                             // +66 = 105
  CHECK_FALSE(w.port.deferred);
  w.deliver("a", "crosses it");  // +60 = 165: past 120, the end is deferred
  CHECK(w.port.deferred);
  w.deliver("a", "same turn");  // still this turn: still written
  CHECK(w.port.end_calls == 0);
  CHECK(dechunk(w.port.out).chunks ==
        std::vector<std::string>{envelope("a", 2, "under the budget") + "\n",
                                 envelope("a", 3, "crosses it") + "\n",
                                 envelope("a", 4, "same turn") + "\n"});
  w.port.take();

  w.port.end_turn();
  CHECK(w.port.take() == chunk(reconnect_json("a@E1.4") + "\n") + "0\r\n\r\n");
  CHECK(w.port.ended_keep_alive == false);
  CHECK(w.port.session == nullptr);
  CHECK(w.port.flush_close);
  CHECK(w.sessions(SessionKind::kStream) == 0);
  CHECK(w.hub.subscription_count() == 0);
  w.deliver("a", "after the end");
  CHECK(w.port.out == "");
}

TEST_CASE("stream iframe: script calls to parent.CB, an HTML prelude and ending") {
  StreamWorld w;
  w.config().stream_byte_budget = 1;  // every write crosses it
  w.route(get("/stream?ch=a&format=iframe&cb=comet.cb1"));
  const std::string head = stream_head("text/html; charset=utf-8");
  CHECK(chunks_after(w.port.take(), head) ==
        Seq<std::string>{"<!DOCTYPE html><html><head></head><body><!--    -->\n",
                         "<script>parent.comet.cb1(" + open_json("a@.0") + ");</script>\n"});
  CHECK(w.port.deferred);  // the prelude alone spent the budget
  w.deliver("a", "x");
  w.port.end_turn();
  const test::Chunks rest = dechunk(w.port.take());
  CHECK(rest.terminated);
  CHECK(Seq<std::string>(rest.chunks) ==
        Seq<std::string>{"<script>parent.comet.cb1(" + envelope("a", 1, "x") + ");</script>\n",
                         "<script>parent.comet.cb1(" + reconnect_json("a@E1.1") + ");</script>\n",
                         "</body></html>\n"});
}

TEST_CASE("stream htmlfile: the document.domain preamble only when domain= is given") {
  StreamWorld w;
  TestWorld::FakePortRef plain = w.make_port();
  TestWorld::FakePortRef with_domain = w.make_port();
  w.route(get("/stream?ch=a&format=htmlfile&cb=f"), *plain);
  w.route(get("/stream?ch=a&format=htmlfile&cb=f&domain=example.com"), *with_domain);
  const std::string head = stream_head("text/html; charset=utf-8");
  CHECK(chunks_after(plain->take(), head) ==
        Seq<std::string>{"<!DOCTYPE html><html><head></head><body><!--    -->\n",
                         "<script>parent.f(" + open_json("a@.0") + ");</script>\n"});
  CHECK(chunks_after(with_domain->take(), head) ==
        Seq<std::string>{"<!DOCTYPE html><html><head><script>document.domain=\"example.com\";"
                         "</script></head><body><!--    -->\n",
                         "<script>parent.f(" + open_json("a@.0") + ");</script>\n"});
  w.deliver("a", "<&>");  // the envelope escapes what would end the script
  CHECK(dechunk(plain->take()).chunks ==
        std::vector<std::string>{"<script>parent.f(" + envelope("a", 1, "\\u003c\\u0026\\u003e") +
                                 ");</script>\n"});
}

TEST_CASE("stream multipart: each part is followed by the delimiter at once; a closing one") {
  StreamWorld w;
  w.route(get("/stream?ch=a&format=multipart"));
  // A part is complete for a reader once the next delimiter arrives: it follows each
  // part at once (with default heartbeats the open notice otherwise waited 15 s).
  const std::string head = "\r\nContent-Type: application/json\r\n\r\n";
  const std::string delim = "\r\n--comet-part";
  CHECK(chunks_after(w.port.take(),
                     stream_head("multipart/x-mixed-replace; boundary=\"comet-part\"")) ==
        Seq<std::string>{"--comet-part", head + open_json("a@.0") + delim});
  w.deliver("a", "x");
  w.port.heartbeat();
  CHECK(dechunk(w.port.take()).chunks ==
        std::vector<std::string>{head + envelope("a", 1, "x") + delim,
                                 head + "{\"type\":\"hb\"}" + delim});
  w.port.shutdown();  // the worker stops: the stream says where to reconnect from
  const test::Chunks end = dechunk(w.port.take());
  CHECK(end.terminated);
  CHECK(Seq<std::string>(end.chunks) ==
        Seq<std::string>{head + reconnect_json("a@E1.1") + delim, "--\r\n"});
  CHECK(w.port.ended_keep_alive == false);
  CHECK(w.port.session == nullptr);
}

TEST_CASE("stream dom-event-stream: served on /sse as a stream session, Last-Event-ID honoured") {
  StreamWorld w;
  w.seed("a", 3);
  CHECK(w.route(get("/sse?ch=a&format=dom-event-stream", {{"Last-Event-ID", "a@E1.2"}})) == false);
  CHECK(w.sessions(SessionKind::kStream) == 1);
  CHECK(w.sessions(SessionKind::kSse) == 0);
  CHECK(chunks_after(w.port.take(), stream_head("application/x-dom-event-stream")) ==
        Seq<std::string>{":    \n\n", "Event: comet\ndata: " + open_json("a@E1.2") + "\n\n",
                         "Event: comet\ndata: " + envelope("a", 3, "m3") + "\n\n"});
  w.port.heartbeat();
  CHECK(dechunk(w.port.take()).chunks ==
        std::vector<std::string>{"Event: comet\ndata: {\"type\":\"hb\"}\n\n"});
}

TEST_CASE("stream: /stream?format=dom-event-stream works too, and cursor= resumes") {
  StreamWorld w;
  w.seed("a", 2);
  w.route(get("/stream?ch=a&format=dom-event-stream&cursor=a@E1.1"));
  CHECK(chunks_after(w.port.take(), stream_head("application/x-dom-event-stream")) ==
        Seq<std::string>{":    \n\n", "Event: comet\ndata: " + open_json("a@E1.1") + "\n\n",
                         "Event: comet\ndata: " + envelope("a", 2, "m2") + "\n\n"});
}

TEST_CASE("stream: HTTP/1.0 clients get the bytes unchunked and no last-chunk") {
  StreamWorld w;
  w.config().stream_byte_budget = 60;
  http::Request request = get("/stream?ch=a");
  request.http_minor = 0;
  request.keep_alive = false;
  w.route(request);
  CHECK(w.port.take() == stream_head(kXhrType, false) + "    \n" + open_json("a@.0") + "\n");
  w.deliver("a", "x");  // crosses 60
  CHECK(w.port.take() == envelope("a", 1, "x") + "\n");
  w.port.end_turn();
  CHECK(w.port.take() == reconnect_json("a@E1.1") + "\n");
  CHECK(w.port.ended_keep_alive == false);
  CHECK(w.port.flush_close);
}

TEST_CASE("stream: a reset notice follows the open notice, then the retained messages") {
  StreamWorld w(HubLimits{2, 3600 * 1000});
  w.seed("a", 5);  // 4 and 5 retained
  w.route(get("/stream?ch=a&cursor=a@E1.1"));
  CHECK(chunks_after(w.port.take(), stream_head(kXhrType)) ==
        Seq<std::string>{"    \n", open_json("a@E1.3") + "\n",
                         "{\"type\":\"reset\",\"ch\":\"a\",\"reason\":\"history-expired\","
                         "\"epoch\":\"E1\",\"id\":3}\n",
                         envelope("a", 4, "m4") + "\n", envelope("a", 5, "m5") + "\n"});
}

TEST_CASE("stream: nothing, not even a heartbeat, before every channel is positioned") {
  StreamWorld w;
  w.hub.begin_sync("a");
  w.route(get("/stream?ch=a"));
  w.port.heartbeat();
  w.port.shutdown();  // a stream that never started ends without a reconnect notice
  CHECK(w.port.out == "");
  CHECK(w.port.flush_close);
}

TEST_CASE("stream: once synced the open notice carries the synced position") {
  StreamWorld w;
  w.hub.begin_sync("a");
  w.route(get("/stream?ch=a"));
  w.port.heartbeat();
  CHECK(w.port.out == "");
  w.hub.finish_sync("a", "E5", 9, {});
  w.port.heartbeat();
  CHECK(chunks_after(w.port.take(), stream_head(kXhrType)) ==
        Seq<std::string>{"    \n", open_json("a@E5.9") + "\n", "{\"type\":\"hb\"}\n"});
}

TEST_CASE("stream: a slow reader is cut, and the stream writes nothing after") {
  StreamWorld w;
  w.config().max_output_bytes = 500;
  w.route(get("/stream?ch=a"));
  w.port.take();
  w.port.unsent = 501;
  w.deliver("a", "x");
  w.port.heartbeat();
  CHECK(w.port.out == "");
  CHECK(w.port.close_reason == "slow reader");
  CHECK(w.counters().slow_readers_cut == 1);
}

TEST_CASE("stream: refusals (bad format, cb, domain) are 400 answers") {
  StreamWorld w;
  struct Case {
    const char* target;
    const char* message;
  };
  const Case cases[] = {
      {"/stream?ch=a&format=jsonp",
       "format must be xhr, iframe, htmlfile, multipart or dom-event-stream"},
      {"/stream?ch=a&format=iframe", "cb must be a dotted JavaScript identifier (max 64)"},
      {"/stream?ch=a&format=iframe&cb=1abc", "cb must be a dotted JavaScript identifier (max 64)"},
      {"/stream?ch=a&format=htmlfile&cb=a..b",
       "cb must be a dotted JavaScript identifier (max 64)"},
      {"/stream?ch=a&format=iframe&cb=alert(1)",
       "cb must be a dotted JavaScript identifier (max 64)"},
      {"/stream?ch=a&format=htmlfile&cb=f&domain=evil.com/x", "invalid domain"},
      {"/stream?ch=a&format=htmlfile&cb=f&domain=.example.com", "invalid domain"},
      {"/stream?format=xhr", "no channel given (use ch=name[,name...])"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.target);
    test::FakePort port(w.ctx);
    CHECK(w.route(get(c.target), port) == true);
    const test::HttpResponse r = parse_response(port.take());
    CHECK(r.status == 400);
    CHECK(r.body == error_body(400, c.message));
    CHECK(port.session == nullptr);
    CHECK(port.sessions_begun == 0);
  }
  CHECK(w.bus.prepared.empty());
}

TEST_CASE("stream: a cb longer than 64 bytes is refused, 64 is fine") {
  StreamWorld w;
  TestWorld::FakePortRef ok = w.make_port();
  TestWorld::FakePortRef too_long = w.make_port();
  w.route(get("/stream?ch=a&format=iframe&cb=" + std::string(64, 'f')), *ok);
  w.route(get("/stream?ch=a&format=iframe&cb=" + std::string(65, 'f')), *too_long);
  CHECK(ok->session != nullptr);
  CHECK(parse_response(too_long->take()).status == 400);
}

TEST_CASE("stream: CORS headers of an allowed origin come before Connection") {
  StreamWorld w;
  w.config().allowed_origins = {"https://app.example"};
  w.route(get("/stream?ch=a", {{"Origin", "https://app.example"}}));
  const std::string cors =
      "Access-Control-Allow-Origin: https://app.example\r\n"
      "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n";
  CHECK(chunks_after(w.port.take(), stream_head(kXhrType, true, cors)) ==
        Seq<std::string>{"    \n", open_json("a@.0") + "\n"});
}

TEST_CASE("stream: several channels share one cursor in open, reconnect") {
  StreamWorld w;
  w.config().stream_byte_budget = 1000;
  w.seed("b", 2);
  w.route(get("/stream?ch=a,b"));
  CHECK(chunks_after(w.port.take(), stream_head(kXhrType)) ==
        Seq<std::string>{"    \n", open_json("a@.0,b@E1.2") + "\n"});
  w.deliver("a", "x");
  w.port.shutdown();
  const test::Chunks c = dechunk(w.port.take());
  CHECK(c.terminated);
  CHECK(Seq<std::string>(c.chunks) ==
        Seq<std::string>{envelope("a", 1, "x") + "\n", reconnect_json("a@E1.1,b@E1.2") + "\n"});
}

TEST_CASE("stream: a flood of input closes the stream") {
  StreamWorld w;
  w.route(get("/stream?ch=a"));
  w.port.input(std::string(w.config().max_header_bytes + 1, 'x'));
  CHECK(w.port.close_reason == "unexpected input on a stream");
}

}  // namespace
}  // namespace comet
