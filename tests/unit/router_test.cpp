// route_request (server/router.cpp): methods, --transports, CORS preflight, status
// endpoints, static files, and the per-kind session counters, through the fake port.

#include <doctest/doctest.h>

#include <string>

#include "fake_port.h"
#include "http/response.h"
#include "server/static_files.h"
#include "ws/frame_codec.h"

namespace comet {
namespace {

using test::get;
using test::make_request;
using test::parse_response;
using test::post;
using test::TestWorld;
using test::ws_upgrade;

std::string error_answer(int status, const std::string& message, bool keep_alive = true,
                         const std::string& extra = "") {
  const std::string body = test::error_body(status, message);
  return "HTTP/1.1 " + std::to_string(status) + " " + http::status_text(status) +
         "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) +
         "\r\nConnection: " + (keep_alive ? "keep-alive" : "close") + "\r\n\r\n" + body;
}

const std::string kCors =
    "Access-Control-Allow-Origin: https://app.example\r\n"
    "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n";

std::string preflight(const std::string& methods, const std::string& cors = kCors) {
  return "HTTP/1.1 204 No Content\r\n" + cors + "Access-Control-Allow-Methods: " + methods +
         "\r\nAccess-Control-Allow-Headers: Content-Type, Last-Event-ID, X-Comet-Key, "
         "Authorization\r\nAccess-Control-Max-Age: 600\r\nContent-Length: 0\r\n"
         "Connection: keep-alive\r\n\r\n";
}

TEST_CASE("router: wrong methods get 405 with Allow") {
  TestWorld w;
  struct Case {
    http::Request request;
    const char* message;
    const char* allow;
  };
  const Case cases[] = {
      {post("/sse?ch=a", ""), "use GET", "Allow: GET, OPTIONS\r\n"},
      {make_request("HEAD", "/poll?ch=a"), "use GET", "Allow: GET, OPTIONS\r\n"},
      {make_request("DELETE", "/stream?ch=a"), "use GET", "Allow: GET, OPTIONS\r\n"},
      {post("/ws", ""), "use GET", "Allow: GET, OPTIONS\r\n"},
      {get("/pub/a"), "use POST to publish", "Allow: POST, PUT, OPTIONS\r\n"},
      {make_request("DELETE", "/pub/a"), "use POST to publish", "Allow: POST, PUT, OPTIONS\r\n"},
      {post("/healthz", ""), "use GET", "Allow: GET, OPTIONS\r\n"},
      {make_request("HEAD", "/metrics"), "use GET", "Allow: GET, OPTIONS\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.request.method);
    CAPTURE(c.request.target);
    test::FakePort port(w.ctx);
    CHECK(w.route(c.request, port) == true);
    CHECK(port.take() == error_answer(405, c.message, true, c.allow));
    CHECK(port.sessions_begun == 0);
  }
  CHECK(w.bus.publishes.empty());
  CHECK(w.hub.subscription_count() == 0);
}

TEST_CASE("router: --transports turns endpoints off with 403; echo and publish stay") {
  TestWorld w;
  w.config().transports = {"poll"};
  w.config().ws_echo_path = "/echo";
  for (const char* name : {"sse", "stream"}) {
    CAPTURE(name);
    test::FakePort port(w.ctx);
    CHECK(w.route(get(std::string("/") + name + "?ch=a"), port) == true);
    CHECK(port.take() ==
          error_answer(403, std::string(name) + " transport is disabled on this server "
                                                "(--transports)"));
  }
  {
    test::FakePort port(w.ctx);
    w.route(get("/sse?ch=a&format=dom-event-stream"), port);  // served by /sse's row
    CHECK(parse_response(port.take()).status == 403);
  }
  {
    test::FakePort port(w.ctx);
    w.route(ws_upgrade("/ws"), port);
    const test::HttpResponse r = parse_response(port.take());
    CHECK(r.status == 403);
    CHECK(r.body ==
          test::error_body(403, "ws transport is disabled on this server (--transports)"));
    CHECK(port.flush_close);  // a refused upgrade closes
  }
  {
    test::FakePort port(w.ctx);
    w.route(get("/poll?ch=a&wait=0"), port);
    CHECK(parse_response(port.take()).status == 200);
  }
  {
    test::FakePort port(w.ctx);
    w.route(ws_upgrade("/echo"), port);
    CHECK(port.take().substr(0, 12) == "HTTP/1.1 101");
  }
  {
    test::FakePort port(w.ctx);
    port.publish_listener = true;
    w.route(post("/pub/a", "x"), port);
    CHECK(parse_response(port.take()).status == 200);
  }
  CHECK(w.sessions(SessionKind::kSse) == 0);
  CHECK(w.sessions(SessionKind::kStream) == 0);
  CHECK(w.sessions(SessionKind::kWebSocket) == 0);
}

TEST_CASE("router: a refused upgrade on a disabled /ws says Connection: close, as it closes") {
  // Connection closes after any refused upgrade, so the router's own 403 (and 405) for
  // the /ws row must say Connection: close, as the pipeline's upgrade errors do (once
  // they said keep-alive, a promise the connection did not keep).
  TestWorld w;
  w.config().transports = {"sse"};
  CHECK(w.route(ws_upgrade("/ws")) == false);
  const test::HttpResponse r = parse_response(w.port.take());
  CHECK(r.status == 403);
  CHECK(r.header_or("connection") == "close");
  CHECK(w.port.flush_close);
}

TEST_CASE("router: OPTIONS preflight answers 204 with the methods and CORS headers") {
  TestWorld w;
  w.config().allowed_origins = {"https://app.example"};
  const std::vector<std::pair<std::string, std::string>> origin = {
      {"Origin", "https://app.example"}, {"Access-Control-Request-Method", "GET"}};
  for (const char* target : {"/sse", "/ws", "/stream", "/poll", "/healthz", "/anything"}) {
    CAPTURE(target);
    test::FakePort port(w.ctx);
    CHECK(w.route(make_request("OPTIONS", target, origin), port) == true);
    CHECK(port.take() == preflight("GET, OPTIONS"));
  }
  test::FakePort pub(w.ctx);
  w.route(make_request("OPTIONS", "/pub/a", origin), pub);
  const test::HttpResponse r = parse_response(pub.take());
  CHECK(r.status == 204);
  CHECK(r.header_or("access-control-allow-methods").find("POST") != std::string::npos);

  test::FakePort no_origin(w.ctx);
  w.route(make_request("OPTIONS", "/sse"), no_origin);
  CHECK(no_origin.take() == preflight("GET, OPTIONS", ""));

  test::FakePort evil(w.ctx);
  w.route(make_request("OPTIONS", "/sse", {{"Origin", "https://evil.example"}}), evil);
  CHECK(evil.take() == error_answer(403, "origin not allowed"));
  CHECK(w.sessions(SessionKind::kSse) == 0);
}

TEST_CASE("router: the publish preflight allows PUT, which publish accepts as POST") {
  // 405 on /pub/ says "Allow: POST, PUT, OPTIONS" and docs/protocol.md makes PUT a
  // synonym: the preflight must list PUT too, or a browser refuses a cross-origin PUT
  // (it once listed "POST, OPTIONS").
  TestWorld w;
  w.route(
      make_request("OPTIONS", "/pub/a",
                   {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "PUT"}}));
  // (No Access-Control-Allow-Credentials: /pub never allows them.)
  CHECK(w.port.take() == preflight("POST, PUT, OPTIONS",
                                   "Access-Control-Allow-Origin: https://app.example\r\n"
                                   "Vary: Origin\r\n"));
}

TEST_CASE("router: a malformed query string is a 400 before anything else") {
  TestWorld w;
  for (const char* target : {"/sse?ch=%zz", "/poll?ch=a&x=%4", "/pub/a?event=%", "/nothing?%"}) {
    CAPTURE(target);
    test::FakePort port(w.ctx);
    CHECK(w.route(make_request(std::string(target).rfind("/pub/", 0) == 0 ? "POST" : "GET", target),
                  port) == true);
    CHECK(port.take() == error_answer(400, "malformed query string (bad percent-escape)"));
  }
  CHECK(w.bus.publishes.empty());
}

TEST_CASE("router: /healthz and /metrics count the sessions of each kind") {
  TestWorld w;
  w.config().ws_echo_path = "/echo";
  w.bus.hold = true;
  TestWorld::FakePortRef sse = w.make_port(), sse2 = w.make_port(), stream = w.make_port(),
                         poll = w.make_port(), ws = w.make_port(), echo = w.make_port(),
                         pub = w.make_port();
  pub->publish_listener = true;
  w.route(get("/sse?ch=a"), *sse);
  w.route(get("/sse?ch=a,b"), *sse2);
  w.route(get("/stream?ch=a"), *stream);
  w.route(get("/poll?ch=a"), *poll);
  w.route(ws_upgrade("/ws?ch=c"), *ws);
  w.route(ws_upgrade("/echo"), *echo);
  w.route(post("/pub/a", "x"), *pub);

  w.route(get("/healthz"));
  const std::string body =
      "{\"status\":\"ok\",\"bus\":\"embedded\",\"connections\":0,\"subscriptions\":6,"
      "\"published\":0,\"slow_readers_cut\":0,\"sessions\":{\"ws\":1,\"sse\":2,\"stream\":1,"
      "\"poll\":1,\"echo\":1,\"publish\":1}}\n";
  CHECK(w.port.take() ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
        "Content-Length: " +
            std::to_string(body.size()) + "\r\nConnection: keep-alive\r\n\r\n" + body);

  w.route(get("/metrics"));
  const std::string metrics = parse_response(w.port.take()).body;
  for (const char* line :
       {"comet_sessions{transport=\"ws\"} 1\n", "comet_sessions{transport=\"sse\"} 2\n",
        "comet_sessions{transport=\"stream\"} 1\n", "comet_sessions{transport=\"poll\"} 1\n",
        "comet_sessions{transport=\"echo\"} 1\n", "comet_sessions{transport=\"publish\"} 1\n",
        "comet_subscriptions 6\n"}) {
    CAPTURE(line);
    CHECK(metrics.find(line) != std::string::npos);
  }

  // Each goes down as its session ends.
  sse->session.reset();
  CHECK(w.sessions(SessionKind::kSse) == 1);
  poll->timeout();
  CHECK(w.sessions(SessionKind::kPoll) == 0);
  w.bus.complete(0);
  pub->end_turn();
  CHECK(w.sessions(SessionKind::kPublish) == 0);
  CHECK(w.counters().published == 1);
  ws->input(ws::encode_masked_frame(ws::Opcode::kClose, "", 1));
  ws->session.reset();  // the connection goes once the close is flushed
  echo->session.reset();
  stream->shutdown();
  sse2->session.reset();
  for (size_t k = 0; k < kSessionKindCount; ++k) {
    CAPTURE(session_kind_name(static_cast<SessionKind>(k)));
    CHECK(w.counters().sessions[k] == 0);
  }
  CHECK(w.counters().subscriptions == 0);
}

TEST_CASE("router: static files, HEAD, and what is not found") {
  TestWorld w;
  w.shared.static_files["/index.html"] = StaticFile{"text/html; charset=utf-8", "<h1>hi</h1>", ""};
  w.shared.static_files["/comet.js"] = StaticFile{"application/javascript", "var c;", ""};
  const std::string index_head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache\r\n"
      "Content-Length: 11\r\nConnection: keep-alive\r\n\r\n";
  w.route(get("/"));
  CHECK(w.port.take() == index_head + "<h1>hi</h1>");
  w.route(make_request("HEAD", "/"));
  CHECK(w.port.take() == index_head);
  w.route(get("/comet.js"));
  CHECK(parse_response(w.port.take()).body == "var c;");
  w.route(post("/comet.js", ""));
  CHECK(w.port.take() == error_answer(405, "use GET", true, "Allow: GET, HEAD\r\n"));
  w.route(post("/missing", ""));
  CHECK(w.port.take() == error_answer(404, "no such endpoint or file"));
  w.route(get("/missing"));
  CHECK(w.port.take() == error_answer(404, "no such endpoint or file"));
  w.route(get("/pub"));  // not the /pub/ prefix
  CHECK(parse_response(w.port.take()).status == 404);
  w.route(get("/ws/"));  // /ws is exact
  CHECK(parse_response(w.port.take()).status == 404);
  CHECK_FALSE(w.port.closing());
}

TEST_CASE("router: static files carry an ETag; a revalidation with it is a 304 without a body") {
  TestWorld w;
  w.shared.static_files["/comet.js"] = StaticFile{"application/javascript", "var c;", ""};
  set_etags(w.shared.static_files);
  const std::string etag = w.shared.static_files["/comet.js"].etag;
  CHECK(etag.size() == 26);  // quoted, 24 hex digits
  w.route(get("/comet.js"));
  const test::HttpResponse full = parse_response(w.port.take());
  CHECK(full.status == 200);
  REQUIRE(full.header("ETag") != nullptr);
  CHECK(*full.header("ETag") == etag);
  w.route(get("/comet.js", {{"If-None-Match", etag}}));
  CHECK(w.port.take() == "HTTP/1.1 304 Not Modified\r\nCache-Control: no-cache\r\nETag: " + etag +
                             "\r\nConnection: keep-alive\r\n\r\n");
  w.route(get("/comet.js", {{"If-None-Match", "\"other\""}}));
  CHECK(parse_response(w.port.take()).body == "var c;");
}

TEST_CASE("router: a request without keep-alive is answered with Connection: close") {
  TestWorld w;
  http::Request request = get("/missing");
  request.keep_alive = false;
  CHECK(w.route(request) == false);
  CHECK(w.port.take() == error_answer(404, "no such endpoint or file", false));
  CHECK(w.port.flush_close);
}

}  // namespace
}  // namespace comet

namespace comet {
namespace {

TEST_CASE(
    "router: --allowed-hosts refuses other Host names (DNS rebinding of a loopback sidecar)") {
  test::TestWorld w;
  w.config().allowed_hosts = {"push.example", "127.0.0.1", "::1"};
  auto status_for = [&w](const char* host) {
    test::FakePort port(w.ctx);
    http::Request request =
        host != nullptr ? test::get("/healthz", {{"Host", host}}) : test::get("/healthz");
    w.route(request, port);
    return test::parse_response(port.take()).status;
  };
  CHECK(status_for("push.example") == 200);
  CHECK(status_for("PUSH.Example:8080") == 200);
  CHECK(status_for("127.0.0.1:8080") == 200);
  CHECK(status_for("[::1]:8080") == 200);
  CHECK(status_for("evil.example:8080") == 403);
  CHECK(status_for("push.example.evil.example") == 403);
  CHECK(status_for(nullptr) == 403);
  // The publish listener is for the app, by address: not checked.
  test::FakePort internal(w.ctx);
  internal.publish_listener = true;
  w.route(test::get("/healthz", {{"Host", "evil.example"}}), internal);
  CHECK(test::parse_response(internal.take()).status == 200);
}

}  // namespace
}  // namespace comet

namespace comet {
namespace {

TEST_CASE("router: /healthz is readiness (503 while draining), /livez is liveness (200)") {
  test::TestWorld w;
  w.route(test::get("/healthz"));
  CHECK(test::parse_response(w.port.take()).status == 200);
  w.route(test::get("/livez"));
  const test::HttpResponse live = test::parse_response(w.port.take());
  CHECK(live.status == 200);
  CHECK(live.body == "{\"status\":\"alive\"}\n");
  w.shared.draining = true;
  w.route(test::get("/healthz"));
  const test::HttpResponse draining = test::parse_response(w.port.take());
  CHECK(draining.status == 503);
  CHECK(draining.body.find("\"status\":\"draining\"") != std::string::npos);
  w.route(test::get("/livez"));
  CHECK(test::parse_response(w.port.take()).status == 200);
}

}  // namespace
}  // namespace comet
