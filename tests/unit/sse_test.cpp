// GET /sse (transports/sse.cpp, transports/streaming_session.cpp) through the fake port.

#include <doctest/doctest.h>

#include <string>

#include "fake_port.h"

namespace comet {
namespace {

using test::error_body;
using test::get;
using test::parse_response;
using test::TestWorld;

constexpr const char* kHead =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache, no-store\r\n"
    "X-Accel-Buffering: no\r\n"
    "Connection: close\r\n"
    "\r\n"
    "retry: 2000\n\n";

std::string event(const std::string& id_line, const std::string& body) {
  return id_line + body + "\n";
}

TEST_CASE("SSE: head, retry, an id-only cursor event, then raw messages with one-channel ids") {
  TestWorld w;
  w.seed("a", 2);
  CHECK(w.route(get("/sse?ch=a")) == true);
  CHECK(w.port.take() == std::string(kHead) + "id: a@E1.2\n\n");
  CHECK(w.port.sessions_begun == 1);
  CHECK(w.sessions(SessionKind::kSse) == 1);
  CHECK(w.port.streaming);
  CHECK(w.port.read_timeout == ReadTimeout::kNone);
  CHECK_FALSE(w.port.closing());
  CHECK(w.bus.prepared == std::vector<std::string>{"a"});
  CHECK(w.counters().subscriptions == 1);
  CHECK_FALSE(w.port.session->answers_after_eof());
  CHECK_FALSE(w.port.session->takes_more_requests());

  w.deliver("a", "hello");
  CHECK(w.port.take() == "id: a@E1.3\ndata: hello\n\n");
  // Raw format: the event on its own line, data split at LF, CRLF and CR.
  w.deliver("a", "one\ntwo\r\nthree\rfour", "typing");
  CHECK(w.port.take() ==
        "id: a@E1.4\nevent: typing\ndata: one\ndata: two\ndata: three\ndata: four\n\n");
  CHECK(w.port.shared_writes >= 4);  // the message's renderings are shared, not rebuilt
  // Other channels do not reach this stream.
  w.deliver("b", "elsewhere");
  CHECK(w.port.take() == "");
}

TEST_CASE("SSE: format=raw is the default; format=json puts the envelope on one data line") {
  TestWorld w;
  TestWorld::FakePortRef raw_port = w.make_port();
  TestWorld::FakePortRef json_port = w.make_port();
  w.seed("a", 1);
  w.route(get("/sse?ch=a&format=raw"), *raw_port);
  w.route(get("/sse?ch=a&format=json"), *json_port);
  CHECK(raw_port->take() == std::string(kHead) + "id: a@E1.1\n\n");
  CHECK(json_port->take() == std::string(kHead) + "id: a@E1.1\n\n");

  w.deliver("a", "x\ny", "typing");
  CHECK(raw_port->take() == "id: a@E1.2\nevent: typing\ndata: x\ndata: y\n\n");
  CHECK(json_port->take() ==
        "id: a@E1.2\n"
        "data: {\"ch\":\"a\",\"id\":2,\"prev\":1,\"epoch\":\"E1\",\"event\":\"typing\","
        "\"data\":\"x\\ny\"}\n\n");
}

TEST_CASE("SSE: with several channels every id line carries the whole cursor") {
  TestWorld w;
  w.seed("a", 1);
  w.route(get("/sse?ch=a,b"));
  CHECK(w.port.take() == std::string(kHead) + "id: a@E1.1,b@.0\n\n");
  CHECK(w.bus.prepared == std::vector<std::string>{"a", "b"});

  w.deliver("b", "first b");
  CHECK(w.port.take() == "id: a@E1.1,b@E1.1\ndata: first b\n\n");
  w.deliver("a", "second a");
  CHECK(w.port.take() == "id: a@E1.2,b@E1.1\ndata: second a\n\n");

  // An id-less (bare) message cannot be resumed: no id line.
  w.hub.publish(make_message("a", "", 0, 0, "", "bare", monotonic_ms()));
  CHECK(w.port.take() == "data: bare\n\n");
}

TEST_CASE("SSE: a one-channel stream sends no id line for a bare message either") {
  TestWorld w;
  w.route(get("/sse?ch=a"));
  w.port.take();
  w.hub.publish(make_message("a", "", 0, 0, "note", "bare", monotonic_ms()));
  CHECK(w.port.take() == "event: note\ndata: bare\n\n");
}

TEST_CASE("SSE: heartbeats are comment lines, sent only once the stream has started") {
  TestWorld w;
  w.hub.begin_sync("a");  // the bus is still reading the channel (Redis)
  w.route(get("/sse?ch=a"));
  CHECK(w.port.session != nullptr);
  CHECK(w.port.streaming);
  CHECK(w.port.out == "");
  w.port.heartbeat();
  CHECK(w.port.out == "");  // no head yet: nothing may precede it

  w.hub.finish_sync("a", "E1", 0, {});
  CHECK(w.port.take() == std::string(kHead) + "id: a@E1.0\n\n");
  w.port.heartbeat();
  CHECK(w.port.take() == ":\n\n");
  w.port.heartbeat();
  CHECK(w.port.take() == ":\n\n");
}

TEST_CASE(
    "SSE: Last-Event-ID resumes exactly the missed messages in order, and wins over cursor=") {
  TestWorld w;
  w.seed("a", 5);
  w.route(get("/sse?ch=a&cursor=a@E1.4", {{"Last-Event-ID", "a@E1.2"}}));
  CHECK(w.port.take() ==
        std::string(kHead) + "id: a@E1.2\n\n" + event("id: a@E1.3\n", "data: m3\n") +
            event("id: a@E1.4\n", "data: m4\n") + event("id: a@E1.5\n", "data: m5\n"));
  w.deliver("a", "m6");
  CHECK(w.port.take() == "id: a@E1.6\ndata: m6\n\n");
}

TEST_CASE("SSE: without ch= the channels come from Last-Event-ID (EventSource's reconnect)") {
  TestWorld w;
  w.seed("a", 3);
  w.seed("b", 1);
  w.route(get("/sse", {{"Last-Event-ID", "a@E1.2,b@E1.1"}}));
  CHECK(w.port.take() ==
        std::string(kHead) + "id: a@E1.2,b@E1.1\n\n" + event("id: a@E1.3,b@E1.1\n", "data: m3\n"));
}

TEST_CASE("SSE: the cursor= parameter resumes when there is no Last-Event-ID") {
  TestWorld w;
  w.seed("a", 3);
  w.route(get("/sse?ch=a&cursor=a@E1.1", {{"Last-Event-ID", ""}}));
  CHECK(w.port.take() == std::string(kHead) + "id: a@E1.1\n\n" +
                             event("id: a@E1.2\n", "data: m2\n") +
                             event("id: a@E1.3\n", "data: m3\n"));
}

TEST_CASE("SSE: a cursor older than the history gets comet-reset before the cursor event") {
  TestWorld w(HubLimits{3, 3600 * 1000});
  w.seed("a", 6);  // ids 4..6 retained
  w.route(get("/sse?ch=a", {{"Last-Event-ID", "a@E1.1"}}));
  CHECK(w.port.take() ==
        std::string(kHead) +
            "event: comet-reset\n"
            "data: {\"type\":\"reset\",\"ch\":\"a\",\"reason\":\"history-expired\","
            "\"epoch\":\"E1\",\"id\":3}\n\n"
            "id: a@E1.3\n\n" +
            event("id: a@E1.4\n", "data: m4\n") + event("id: a@E1.5\n", "data: m5\n") +
            event("id: a@E1.6\n", "data: m6\n"));
}

TEST_CASE("SSE: an epoch change while streaming is a comet-reset event without id, then messages") {
  TestWorld w;
  w.seed("a", 2);
  w.route(get("/sse?ch=a"));
  w.port.take();
  w.hub.publish(make_message("a", "E2", 1, 0, "", "new", monotonic_ms()));
  CHECK(w.port.take() ==
        "event: comet-reset\n"
        "data: {\"type\":\"reset\",\"ch\":\"a\",\"reason\":\"epoch-changed\",\"epoch\":\"E2\","
        "\"id\":0}\n\n"
        "id: a@E2.1\ndata: new\n\n");
}

TEST_CASE("SSE: a channel still syncing holds the head until finish_sync, then replays") {
  TestWorld w;
  w.hub.begin_sync("a");
  w.route(get("/sse?ch=a", {{"Last-Event-ID", "a@E1.1"}}));
  CHECK(w.port.out == "");
  CHECK(w.sessions(SessionKind::kSse) == 1);

  const std::vector<MessagePtr> entries = {make_message("a", "E1", 1, 0, "", "m1", monotonic_ms()),
                                           make_message("a", "E1", 2, 1, "", "m2", monotonic_ms()),
                                           make_message("a", "E1", 3, 2, "", "m3", monotonic_ms())};
  w.hub.finish_sync("a", "E1", 3, entries);
  CHECK(w.port.take() == std::string(kHead) + "id: a@E1.1\n\n" +
                             event("id: a@E1.2\n", "data: m2\n") +
                             event("id: a@E1.3\n", "data: m3\n"));
}

TEST_CASE("SSE: a reset found while syncing waits for the head and precedes the cursor event") {
  TestWorld w;
  w.hub.begin_sync("a");
  w.route(get("/sse?ch=a", {{"Last-Event-ID", "a@OLD.5"}}));
  CHECK(w.port.out == "");
  w.hub.finish_sync("a", "E1", 2,
                    {make_message("a", "E1", 1, 0, "", "m1", monotonic_ms()),
                     make_message("a", "E1", 2, 1, "", "m2", monotonic_ms())});
  CHECK(w.port.take() == std::string(kHead) +
                             "event: comet-reset\n"
                             "data: {\"type\":\"reset\",\"ch\":\"a\",\"reason\":\"epoch-changed\","
                             "\"epoch\":\"E1\",\"id\":0}\n\n"
                             "id: a@E1.0\n\n" +
                             event("id: a@E1.1\n", "data: m1\n") +
                             event("id: a@E1.2\n", "data: m2\n"));
}

TEST_CASE("SSE: messages of a ready channel published while another syncs follow the head") {
  TestWorld w;
  w.seed("a", 1);
  w.hub.begin_sync("b");
  w.route(get("/sse?ch=a,b"));
  CHECK(w.port.out == "");
  w.deliver("a", "during sync");  // kept in history, not written before the head
  CHECK(w.port.out == "");
  w.hub.finish_sync("b", "E7", 4, {});
  CHECK(w.port.take() == std::string(kHead) + "id: a@E1.1,b@E7.4\n\n" +
                             event("id: a@E1.2,b@E7.4\n", "data: during sync\n"));
}

TEST_CASE("SSE: the bus prepares each channel before the hub subscribes it") {
  TestWorld w;
  // A head only the bus knows (its messages aged out of this worker's hub).
  w.bus.heads["a"] = Position{"E9", 7};
  w.route(get("/sse?ch=a"));
  CHECK(w.port.take() == std::string(kHead) + "id: a@E9.7\n\n");
  w.deliver("a", "next");
  CHECK(w.port.take() == "id: a@E9.8\ndata: next\n\n");
}

TEST_CASE("SSE: a slow reader is cut when its unsent output exceeds max-output-bytes") {
  TestWorld w;
  w.config().max_output_bytes = 1000;
  w.route(get("/sse?ch=a"));
  w.port.take();
  w.port.unsent = 1000;  // at the limit: still written
  w.deliver("a", "fits");
  CHECK(w.port.take() == "id: a@E1.1\ndata: fits\n\n");
  CHECK_FALSE(w.port.closing());

  w.port.unsent = 1001;
  w.deliver("a", "too late");
  CHECK(w.port.out == "");
  CHECK(w.port.closed_now);
  CHECK(w.port.close_reason == "slow reader");
  CHECK(w.counters().slow_readers_cut == 1);
  w.deliver("a", "after the cut");
  CHECK(w.port.out == "");
  CHECK(w.counters().slow_readers_cut == 1);
}

TEST_CASE("SSE: a heartbeat also cuts a slow reader") {
  TestWorld w;
  w.config().max_output_bytes = 100;
  w.route(get("/sse?ch=a"));
  w.port.take();
  w.port.unsent = 101;
  w.port.heartbeat();
  CHECK(w.port.out == "");
  CHECK(w.port.close_reason == "slow reader");
  CHECK(w.counters().slow_readers_cut == 1);
}

TEST_CASE("SSE: a resume replay follows the reader's pace and loses nothing") {
  TestWorld w;
  w.config().max_output_bytes = 400;
  w.seed("a", 40);
  w.port.peer_stalled = true;
  w.route(get("/sse?ch=a", {{"Last-Event-ID", "a@E1.0"}}));
  // Paused once more than half of max-output-bytes is unsent.
  CHECK(w.port.drain_watch);
  CHECK(w.port.unsent > 200);
  CHECK(w.port.unsent < 400);
  CHECK_FALSE(w.port.closing());

  w.deliver("a", "live");  // published during the pause: must come after the backlog
  std::string expected = std::string(kHead) + "id: a@E1.0\n\n";
  for (int i = 1; i <= 40; ++i)
    expected += event("id: a@E1." + std::to_string(i) + "\n", "data: m" + std::to_string(i) + "\n");
  expected += event("id: a@E1.41\n", "data: live\n");

  int drains = 0;
  while (w.port.drain_watch && drains < 100) {
    w.port.drain(150);  // not yet a quarter: nothing happens
    CHECK(w.port.drain_watch);
    w.port.drain(100);
    ++drains;
  }
  CHECK(drains >= 3);
  CHECK(w.port.take() == expected);
  CHECK_FALSE(w.port.closing());
}

TEST_CASE("SSE: a few bytes of input are ignored, a flood closes the stream") {
  TestWorld w;
  w.route(get("/sse?ch=a"));
  w.port.take();
  w.port.input("hello");
  CHECK_FALSE(w.port.closing());
  w.port.input(std::string(w.config().max_header_bytes, 'x'));
  CHECK(w.port.closed_now);
  CHECK(w.port.close_reason == "unexpected input on a stream");
}

TEST_CASE("SSE: refusals are complete JSON answers, and start nothing") {
  TestWorld w;
  SUBCASE("bad format") {
    CHECK(w.route(get("/sse?ch=a&format=xml")) == true);
    const std::string body = error_body(400, "format must be raw or json");
    CHECK(w.port.take() ==
          "HTTP/1.1 400 Bad Request\r\n"
          "Content-Type: application/json\r\n"
          "Cache-Control: no-store\r\n"
          "Content-Length: " +
              std::to_string(body.size()) + "\r\nConnection: keep-alive\r\n\r\n" + body);
  }
  SUBCASE("bad channel") {
    w.route(get("/sse?ch=a@b"));
    const test::HttpResponse r = parse_response(w.port.take());
    CHECK(r.status == 400);
    CHECK(r.body == error_body(400,
                               "invalid channel name 'a@b' (1-128 characters of A-Z a-z 0-9 _ "
                               ". : / = + -)"));
  }
  SUBCASE("no channel") {
    w.route(get("/sse"));
    const test::HttpResponse r = parse_response(w.port.take());
    CHECK(r.status == 400);
    CHECK(r.body == error_body(400, "no channel given (use ch=name[,name...])"));
  }
  SUBCASE("malformed Last-Event-ID") {
    w.route(get("/sse?ch=a", {{"Last-Event-ID", "garbage"}}));
    const test::HttpResponse r = parse_response(w.port.take());
    CHECK(r.status == 400);
    CHECK(r.body ==
          error_body(400, "malformed cursor (expected channel@epoch.id[,channel@epoch.id...])"));
  }
  SUBCASE("disallowed origin") {
    w.config().allowed_origins = {"https://app.example"};
    w.route(get("/sse?ch=a", {{"Origin", "https://evil.example"}}));
    const test::HttpResponse r = parse_response(w.port.take());
    CHECK(r.status == 403);
    CHECK(r.body == error_body(403, "origin not allowed"));
    CHECK(r.header("access-control-allow-origin") == nullptr);
  }
  CHECK(w.port.sessions_begun == 0);
  CHECK(w.sessions(SessionKind::kSse) == 0);
  CHECK(w.hub.subscription_count() == 0);
  CHECK(w.bus.prepared.empty());
  CHECK_FALSE(w.port.closing());  // a refused GET keeps the connection
}

TEST_CASE("SSE: an allowed origin is echoed with credentials and Vary") {
  TestWorld w;
  w.config().allowed_origins = {"https://other.example", "https://app.example"};
  w.route(get("/sse?ch=a", {{"Origin", "https://app.example"}}));
  CHECK(w.port.take() ==
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-cache, no-store\r\n"
        "X-Accel-Buffering: no\r\n"
        "Access-Control-Allow-Origin: https://app.example\r\n"
        "Access-Control-Allow-Credentials: true\r\n"
        "Vary: Origin\r\n"
        "Connection: close\r\n"
        "\r\n"
        "retry: 2000\n\n"
        "id: a@.0\n\n");
}

TEST_CASE("SSE: --sse-retry is what retry: advertises") {
  TestWorld w;
  w.config().sse_retry_ms = 12345;
  w.route(get("/sse?ch=a"));
  const std::string out = w.port.take();
  CHECK(out.find("\r\n\r\nretry: 12345\n\nid: a@.0\n\n") != std::string::npos);
}

TEST_CASE("SSE: the session counts itself and unsubscribes when the connection goes") {
  TestWorld w;
  w.route(get("/sse?ch=a,b"));
  CHECK(w.sessions(SessionKind::kSse) == 1);
  CHECK(w.counters().subscriptions == 2);
  CHECK(w.hub.subscription_count() == 2);
  w.port.session.reset();  // Connection destroys it when the client goes
  CHECK(w.sessions(SessionKind::kSse) == 0);
  CHECK(w.counters().subscriptions == 0);
  CHECK(w.hub.subscription_count() == 0);
}

TEST_CASE("SSE: nothing but the connection ends a stream; a fired read timeout closes it") {
  TestWorld w;
  w.route(get("/sse?ch=a"));
  w.port.take();
  w.port.end_turn();  // nothing deferred
  CHECK(w.port.end_calls == 0);
  w.port.timeout();  // a stream has no read timeout; were it to fire, the default closes
  CHECK(w.port.close_reason == "idle timeout");
}

}  // namespace
}  // namespace comet
