// POST /pub/<channel> (transports/publish.cpp) through the fake port and the fake bus:
// answers at once when the bus completes at once, and in order when publishes are
// pipelined behind one the bus completes later (Redis).

#include <doctest/doctest.h>

#include <string>

#include "fake_port.h"
#include "http/response.h"

namespace comet {
namespace {

using test::error_body;
using test::get;
using test::make_request;
using test::parse_response;
using test::parse_responses;
using test::post;
using test::TestWorld;

std::string ok_answer(const std::string& ch, int id, const std::string& epoch = "E1",
                      bool keep_alive = true, const std::string& cors = "") {
  const std::string body =
      "{\"ch\":\"" + ch + "\",\"id\":" + std::to_string(id) + ",\"epoch\":\"" + epoch + "\"}\n";
  return "HTTP/1.1 200 OK\r\n" + cors +
         "Content-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: " + (keep_alive ? "keep-alive" : "close") +
         "\r\n\r\n" + body;
}

std::string error_answer(int status, const std::string& message, bool keep_alive = true,
                         const std::string& extra = "") {
  const std::string body = error_body(status, message);
  return "HTTP/1.1 " + std::to_string(status) + " " + http::status_text(status) +
         "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) +
         "\r\nConnection: " + (keep_alive ? "keep-alive" : "close") + "\r\n\r\n" + body;
}

const char* const kBadChannel =
    "invalid channel name (1-128 characters of A-Z a-z 0-9 _ . : / = + -)";
const char* const kBadEvent = "invalid event name (1-64 characters of A-Z a-z 0-9 _ - . :)";
const char* const kBadKey =
    "publish key missing or wrong (X-Comet-Key header, Bearer token or key=)";
const char* const kNotLoopback =
    "keyless publishing is allowed from loopback peers only (--publish-from-any)";

// What Connection does with a request that arrives while a session is busy.
void offer(TestWorld& w, const http::Request& request) {
  REQUIRE(w.port.session != nullptr);
  REQUIRE(w.port.session->takes_more_requests());
  REQUIRE(w.port.session->accepts(request));
  w.port.session->take_request(request);
  w.port.settle();
}

TEST_CASE("publish: 200 with ch, id and epoch; the bus has it; subscribers have it") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  TestWorld::FakePortRef reader = w.make_port();
  w.route(get("/poll?ch=chat:42"), *reader);  // a held long-poll on the same worker

  CHECK(w.route(post("/pub/chat:42", "hello")) == true);
  CHECK(w.port.take() == ok_answer("chat:42", 1));
  CHECK(w.port.sessions_begun == 0);  // answered at once, no session
  CHECK(w.counters().published == 1);
  REQUIRE(w.bus.publishes.size() == 1);
  CHECK(w.bus.publishes[0].channel == "chat:42");
  CHECK(w.bus.publishes[0].event == "");
  CHECK(w.bus.publishes[0].data == "hello");

  reader->end_turn();
  CHECK(parse_response(reader->take()).body ==
        "{\"cursor\":\"chat:42@E1.1\",\"messages\":[{\"ch\":\"chat:42\",\"id\":1,\"prev\":0,"
        "\"epoch\":\"E1\",\"data\":\"hello\"}]}\n");

  w.route(post("/pub/chat:42", "again"));
  CHECK(w.port.take() == ok_answer("chat:42", 2));
  CHECK(w.counters().published == 2);
}

TEST_CASE("publish: PUT is a synonym; ?event= names the event; the body may be empty") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.route(make_request("PUT", "/pub/a?event=typing", {}, ""));
  CHECK(w.port.take() == ok_answer("a", 1));
  REQUIRE(w.bus.publishes.size() == 1);
  CHECK(w.bus.publishes[0].event == "typing");
  CHECK(w.bus.publishes[0].data == "");
}

TEST_CASE("publish: a percent-encoded channel name is decoded") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.route(post("/pub/room%3A7", "x"));
  CHECK(w.port.take() == ok_answer("room:7", 1));
}

TEST_CASE("publish: refusals publish nothing") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  struct Case {
    http::Request request;
    int status;
    const char* message;
  };
  const Case cases[] = {
      {post("/pub/a@b", "x"), 400, kBadChannel},
      {post("/pub/", "x"), 400, kBadChannel},
      {post("/pub/" + std::string(129, 'c'), "x"), 400, kBadChannel},
      {post("/pub/a?event=has%20space", "x"), 400, kBadEvent},
      {post("/pub/a?event=", "x"), 400, kBadEvent},
      {post("/pub/a?event=" + std::string(65, 'e'), "x"), 400, kBadEvent},
      {post("/pub/a", "bad \xff utf-8"), 400, "message data must be valid UTF-8"},
      {post("/pub/a", "\xed\xa0\x80"), 400, "message data must be valid UTF-8"},  // a surrogate
  };
  for (const Case& c : cases) {
    CAPTURE(c.request.target);
    test::FakePort port(w.ctx);
    port.publish_listener = true;
    CHECK(w.route(c.request, port) == true);
    CHECK(port.take() == error_answer(c.status, c.message));
    CHECK(port.sessions_begun == 0);
  }
  CHECK(w.bus.publishes.empty());
  CHECK(w.counters().published == 0);
}

TEST_CASE("publish: with --publish-key the key is required, in any of its three places") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.config().publish_key = "s3cret";
  w.port.loopback = false;  // a key makes the peer's address irrelevant
  struct Case {
    http::Request request;
    bool ok;
  };
  const Case cases[] = {
      {post("/pub/a", "x"), false},
      {post("/pub/a", "x", {{"X-Comet-Key", "wrong"}}), false},
      {post("/pub/a", "x", {{"X-Comet-Key", "s3cre"}}), false},
      {post("/pub/a", "x", {{"X-Comet-Key", "s3cret!"}}), false},
      {post("/pub/a", "x", {{"Authorization", "Basic s3cret"}}), false},
      {post("/pub/a?key=nope", "x"), false},
      {post("/pub/a", "x", {{"X-Comet-Key", "s3cret"}}), true},
      {post("/pub/a", "x", {{"Authorization", "Bearer s3cret"}}), true},
      {post("/pub/a?key=s3cret", "x"), true},
  };
  int published = 0;
  for (const Case& c : cases) {
    CAPTURE(c.request.target);
    CAPTURE(c.request.headers.size());
    test::FakePort port(w.ctx, false);
    port.publish_listener = true;
    w.route(c.request, port);
    if (c.ok)
      CHECK(port.take() == ok_answer("a", ++published));
    else
      CHECK(port.take() == error_answer(401, kBadKey));
  }
  CHECK(w.bus.publishes.size() == 3);
  CHECK(w.counters().published == 3);
}

TEST_CASE("publish: without a key only loopback peers may publish, unless --publish-from-any") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  test::FakePort remote(w.ctx, false);
  remote.publish_listener = true;
  w.route(post("/pub/a", "x"), remote);
  CHECK(remote.take() == error_answer(403, kNotLoopback));
  CHECK(w.bus.publishes.empty());

  w.config().publish_from_any = true;
  w.route(post("/pub/a", "x"), remote);
  CHECK(remote.take() == ok_answer("a", 1));
}

TEST_CASE("publish: a failing bus answers 503 and counts nothing") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.fail_with = "redis unreachable";
  w.route(post("/pub/a", "x"));
  CHECK(w.port.take() == error_answer(503, "publish failed: redis unreachable"));
  CHECK(w.counters().published == 0);
  CHECK(w.port.sessions_begun == 0);
}

TEST_CASE("publish: CORS headers (never credentials) of an allowed origin, 403 for another") {
  TestWorld w;
  w.config().allowed_origins = {"https://app.example"};
  w.config().publish_key = "k";  // a browser publishes only with the key
  const std::string cors = "Access-Control-Allow-Origin: https://app.example\r\nVary: Origin\r\n";
  w.route(post("/pub/a", "x", {{"Origin", "https://app.example"}, {"X-Comet-Key", "k"}}));
  CHECK(w.port.take() == ok_answer("a", 1, "E1", true, cors));
  w.route(post("/pub/a@", "x", {{"Origin", "https://app.example"}, {"X-Comet-Key", "k"}}));
  CHECK(w.port.take() == error_answer(400, kBadChannel, true, cors));
  w.route(post("/pub/a", "x", {{"Origin", "https://evil.example"}, {"X-Comet-Key", "k"}}));
  CHECK(w.port.take() == error_answer(403, "origin not allowed"));
  CHECK(w.bus.publishes.size() == 1);
}

TEST_CASE("publish: keep-alive follows the request") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  http::Request request = post("/pub/a", "x");
  request.keep_alive = false;
  CHECK(w.route(request) == false);
  CHECK(w.port.take() == ok_answer("a", 1, "E1", false));
  CHECK(w.port.flush_close);
}

TEST_CASE("publish in flight: a session holds the connection and answers when the bus does") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  CHECK(w.route(post("/pub/a", "first")) == true);
  CHECK(w.port.out == "");
  REQUIRE(w.port.session != nullptr);
  CHECK(w.sessions(SessionKind::kPublish) == 1);
  CHECK(w.port.session->answers_after_eof());
  CHECK(w.port.session->takes_more_requests());
  CHECK(w.bus.held() == 1);
  CHECK_FALSE(w.port.deferred);

  w.bus.complete(0);
  CHECK(w.port.deferred);  // answered from the connection's deferred step, not the callback
  CHECK(w.port.out == "");
  w.port.end_turn();
  CHECK(w.port.take() == ok_answer("a", 1));
  CHECK(w.port.ended_keep_alive == true);
  CHECK(w.port.session == nullptr);
  CHECK(w.sessions(SessionKind::kPublish) == 0);
  CHECK(w.counters().published == 1);
  CHECK_FALSE(w.port.closing());
}

TEST_CASE("publish in flight: what the session takes behind it") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "x"));
  REQUIRE(w.port.session != nullptr);
  const Session& s = *w.port.session;
  CHECK(s.accepts(post("/pub/b", "y")));
  CHECK(s.accepts(make_request("PUT", "/pub/b", {}, "y")));
  CHECK(s.accepts(post("/pub/bad@name", "y")));  // refused in order, by the publish path
  CHECK_FALSE(s.accepts(get("/pub/b")));
  CHECK_FALSE(s.accepts(make_request("OPTIONS", "/pub/b")));
  CHECK_FALSE(s.accepts(get("/poll?ch=a")));
  CHECK_FALSE(s.accepts(post("/sse", "")));
  CHECK_FALSE(s.accepts(post("/pub/b?x=%zz", "y")));  // a malformed query is the router's 400
}

TEST_CASE("publish pipelined: answers leave in request order, whatever order the bus answers") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "first"));
  offer(w, post("/pub/b", "second"));
  offer(w, post("/pub/c?event=e", "third"));
  CHECK(w.bus.held() == 3);
  CHECK(w.sessions(SessionKind::kPublish) == 1);  // one session for the whole pipeline

  w.bus.complete(2);
  w.bus.complete(1);
  w.port.end_turn();
  CHECK(w.port.out == "");  // the first is still owed
  CHECK(w.port.session != nullptr);

  w.bus.complete(0);
  w.port.end_turn();
  const std::vector<test::HttpResponse> answers = parse_responses(w.port.out);
  CHECK(w.port.take() == ok_answer("a", 1) + ok_answer("b", 1) + ok_answer("c", 1));
  CHECK(answers.size() == 3);
  CHECK(w.port.ended_keep_alive == true);
  CHECK(w.port.session == nullptr);
  CHECK(w.counters().published == 3);
  CHECK(w.bus.publishes[2].event == "e");
}

TEST_CASE("publish pipelined: answers already settled go out while later ones wait") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "1"));
  offer(w, post("/pub/a", "2"));
  w.bus.complete(0);
  w.port.end_turn();
  CHECK(w.port.take() == ok_answer("a", 1));
  CHECK(w.port.session != nullptr);
  CHECK(w.port.session->takes_more_requests());
  w.bus.complete(1);
  w.port.end_turn();
  CHECK(w.port.take() == ok_answer("a", 2));
  CHECK(w.port.session == nullptr);
}

TEST_CASE("publish pipelined: a refused request is answered in its place") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "1"));
  offer(w, post("/pub/bad@name", "2"));
  offer(w, post("/pub/a", "\xff"));
  CHECK(w.bus.held() == 1);
  w.port.end_turn();  // the refusals are settled, but the first is owed
  CHECK(w.port.out == "");
  w.bus.complete(0);
  w.port.end_turn();
  CHECK(w.port.take() == ok_answer("a", 1) + error_answer(400, kBadChannel) +
                             error_answer(400, "message data must be valid UTF-8"));
  CHECK(w.counters().published == 1);
}

TEST_CASE("publish pipelined: a failed publish is a 503 in its place") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "1"));
  offer(w, post("/pub/b", "2"));
  w.bus.complete(0, "connection lost");
  w.bus.complete(1);
  w.port.end_turn();
  CHECK(w.port.take() == error_answer(503, "publish failed: connection lost") + ok_answer("b", 1));
  CHECK(w.counters().published == 1);
}

TEST_CASE("publish pipelined: the origin and key of each request are checked") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.config().allowed_origins = {"https://app.example"};
  w.config().publish_key = "k";
  w.bus.hold = true;
  w.route(post("/pub/a", "1", {{"X-Comet-Key", "k"}}));
  offer(w, post("/pub/a", "2", {{"X-Comet-Key", "k"}, {"Origin", "https://evil.example"}}));
  offer(w, post("/pub/a", "3"));
  w.bus.complete(0);
  w.port.end_turn();
  CHECK(w.port.take() ==
        ok_answer("a", 1) + error_answer(403, "origin not allowed") + error_answer(401, kBadKey));
  CHECK(w.bus.publishes.size() == 1);
}

TEST_CASE("publish pipelined: a last request without keep-alive ends the pipeline and closes") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "1"));
  http::Request last = post("/pub/b", "2");
  last.keep_alive = false;
  offer(w, last);
  CHECK_FALSE(w.port.session->takes_more_requests());  // nothing after a closing request
  w.bus.complete(0);
  w.bus.complete(1);
  w.port.end_turn();
  CHECK(w.port.take() == ok_answer("a", 1) + ok_answer("b", 1, "E1", false));
  CHECK(w.port.ended_keep_alive == false);
  CHECK(w.port.flush_close);
}

TEST_CASE("publish pipelined: at most 64 in flight per connection") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "0"));
  for (int i = 1; i < 64; ++i) offer(w, post("/pub/a", std::to_string(i)));
  CHECK(w.bus.held() == 64);
  CHECK_FALSE(w.port.session->takes_more_requests());
  for (size_t i = 0; i < 64; ++i) w.bus.complete(i);
  w.port.end_turn();
  CHECK(parse_responses(w.port.take()).size() == 64);
  CHECK(w.counters().published == 64);
}

TEST_CASE("publish in flight: more input pauses reading until the answers are out") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "1"));
  w.port.input("GET /poll?ch=a HTTP/1.1\r\n\r\n");
  CHECK(w.port.reading_paused);
  CHECK(w.port.input_left() > 0);
  CHECK_FALSE(w.port.closing());
}

TEST_CASE("publish in flight: the client may go before the bus answers") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "1"));
  offer(w, post("/pub/a", "2"));
  w.port.session.reset();  // the connection closed (the worker freed it)
  CHECK(w.sessions(SessionKind::kPublish) == 0);
  w.bus.complete(0);  // the bus's callbacks outlive the client: nothing to call back
  w.bus.complete(1);
  CHECK(w.port.out == "");
  CHECK_FALSE(w.port.deferred);
  CHECK(w.hub.find("a")->last_id() == 2);  // published all the same
}

TEST_CASE("publish in flight: a held answer still counts once it is written") {
  TestWorld w;
  w.port.publish_listener = true;  // keyless publishing happens there
  w.bus.hold = true;
  w.route(post("/pub/a", "1"));
  w.bus.complete(0);
  CHECK(w.counters().published == 0);  // counted when the answer goes out
  w.port.end_turn();
  CHECK(w.counters().published == 1);
}

}  // namespace
}  // namespace comet

namespace comet {
namespace {

TEST_CASE("publish policy: the public listener never publishes without the key") {
  TestWorld w;  // w.port is on the public listener, a loopback peer (what every proxy is)
  w.route(post("/pub/a", "forged"));
  const test::HttpResponse answer = parse_response(w.port.take());
  CHECK(answer.status == 403);
  CHECK(answer.body.find("--publish-listen") != std::string::npos);
  CHECK(w.bus.publishes.empty());

  w.config().publish_key = "k";
  w.route(post("/pub/a", "forged"));
  CHECK(parse_response(w.port.take()).status == 401);
  http::Request with_key = post("/pub/a", "ok");
  with_key.headers.emplace_back("x-comet-key", "k");
  w.route(with_key);
  CHECK(w.port.take() == ok_answer("a", 1));
}

TEST_CASE("publish policy: a relayed or browser request is never local on the publish listener") {
  for (const char* header : {"origin", "forwarded", "x-forwarded-for", "x-real-ip"}) {
    CAPTURE(header);
    TestWorld w;
    w.port.publish_listener = true;
    http::Request relayed = post("/pub/a", "x");
    relayed.headers.emplace_back(header, "https://evil.example");
    w.route(relayed);
    const test::HttpResponse answer = parse_response(w.port.take());
    CHECK(answer.status == 403);
    CHECK(answer.body.find("not through a proxy or a browser") != std::string::npos);
    CHECK(w.bus.publishes.empty());
  }
}

TEST_CASE("publish policy: /pub never allows credentials, even for a listed origin") {
  TestWorld w;
  w.config().allowed_origins = {"https://app.example"};
  w.config().publish_key = "k";
  http::Request request = post("/pub/a", "x");
  request.headers.emplace_back("origin", "https://app.example");
  request.headers.emplace_back("x-comet-key", "k");
  w.route(request);
  const std::string out = w.port.take();
  CHECK(out.find("Access-Control-Allow-Origin: https://app.example\r\n") != std::string::npos);
  CHECK(out.find("Access-Control-Allow-Credentials") == std::string::npos);
  http::Request preflight = make_request("OPTIONS", "/pub/a");
  preflight.headers.emplace_back("origin", "https://app.example");
  w.route(preflight);
  CHECK(w.port.take().find("Access-Control-Allow-Credentials") == std::string::npos);
}

TEST_CASE("publish policy: the publish listener serves /pub, /healthz and /metrics only") {
  TestWorld w;
  w.port.publish_listener = true;
  w.route(get("/sse?ch=a"));
  CHECK(parse_response(w.port.take()).status == 404);
  CHECK(w.port.session == nullptr);
  w.route(get("/healthz"));
  CHECK(parse_response(w.port.take()).status == 200);
}

}  // namespace
}  // namespace comet
