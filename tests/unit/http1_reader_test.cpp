#include "server/http1_reader.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace comet {
namespace {

http::ParserLimits small_limits() {
  http::ParserLimits l;
  l.max_header_bytes = 1024;
  l.max_url_bytes = 256;
  l.max_body_bytes = 64;
  return l;
}

// A connection as the reader sees it. A request to /hold starts a session that takes no
// more requests (a long-poll); one to /pub/... starts (or joins) a session that takes
// more publishes (a publish in flight); end_session() ends either.
class FakeSink final : public RequestSink {
 public:
  bool takes_requests() const override {
    return !closed && !flushing && (session == Session::kNone || session == Session::kPublish);
  }
  bool ready_for_request() const override {
    return !closed && !flushing && session == Session::kNone;
  }
  bool in_session() const override { return session != Session::kNone; }
  bool can_take_now(const http::Request& request) const override {
    if (session == Session::kNone) return true;
    return session == Session::kPublish && request.path.rfind("/pub/", 0) == 0;
  }
  bool dispatch(http::Request& request) override {
    handled.push_back(request.method + " " + request.path +
                      (request.body.empty() ? "" : " " + request.body));
    if (request.path == "/hold") session = Session::kHold;
    if (request.path.rfind("/pub/", 0) == 0) session = Session::kPublish;
    if (!request.keep_alive) {
      close_after_flush();
      return false;
    }
    return session != Session::kHold;
  }
  void write(std::string_view bytes) override { out.append(bytes); }
  void pause_reading() override { paused = true; }
  void close_after_flush() override { flushing = true; }
  bool closing() const override { return closed; }
  const http::ParserLimits& parser_limits() const override { return limits; }

  /** The session answered: the connection reads again and gives the reader its turn. */
  void end_session(Http1Reader& reader) {
    session = Session::kNone;
    paused = false;
    reader.resume();
  }

  enum class Session { kNone, kHold, kPublish };
  Session session = Session::kNone;
  std::vector<std::string> handled;
  std::string out;
  bool paused = false;
  bool flushing = false;
  bool closed = false;
  http::ParserLimits limits = small_limits();
};

using Lines = std::vector<std::string>;

const std::string kGetA = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const std::string kGetB = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
const std::string kHold = "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n";

std::string post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

TEST_CASE("requests fed one byte at a time come out whole, in order") {
  FakeSink sink;
  Http1Reader reader(sink);
  const std::string bytes = kGetA + post("/pub/x", "hello") + kGetB;
  for (char c : bytes) reader.on_bytes(std::string_view(&c, 1));
  // /pub/x starts a publish session; /b is not a publish, so it waits (parked).
  CHECK(sink.handled == Lines{"GET /a", "POST /pub/x hello"});
  CHECK(sink.paused);
  sink.end_session(reader);
  CHECK(sink.handled == Lines{"GET /a", "POST /pub/x hello", "GET /b"});
  CHECK_FALSE(reader.request_started());
}

TEST_CASE("a partial request is kept and completed by the next read") {
  FakeSink sink;
  Http1Reader reader(sink);
  reader.on_bytes(kGetA.substr(0, 10));
  CHECK(sink.handled.empty());
  CHECK(reader.request_started());  // a timeout now is a 408, not an idle close
  reader.on_bytes(kGetA.substr(10) + kGetB.substr(0, 5));
  CHECK(sink.handled == Lines{"GET /a"});
  CHECK(reader.request_started());
  reader.on_bytes(kGetB.substr(5));
  CHECK(sink.handled == Lines{"GET /a", "GET /b"});
  CHECK_FALSE(reader.has_buffered());
}

TEST_CASE("requests pipelined behind a held session wait for it, then go in order") {
  FakeSink sink;
  Http1Reader reader(sink);
  reader.on_bytes(kHold + kGetA + kGetB);
  CHECK(sink.handled == Lines{"GET /hold"});
  CHECK(reader.has_buffered());  // the rest is not parsed while the session holds
  sink.end_session(reader);
  CHECK(sink.handled == Lines{"GET /hold", "GET /a", "GET /b"});
}

TEST_CASE("publishes pipelined behind a publish in flight are taken at once; others park") {
  FakeSink sink;
  Http1Reader reader(sink);
  reader.on_bytes(post("/pub/a", "1") + post("/pub/a", "2") + kGetA + post("/pub/a", "3"));
  CHECK(sink.handled == Lines{"POST /pub/a 1", "POST /pub/a 2"});
  CHECK(sink.paused);
  sink.end_session(reader);
  // The parked GET goes first, then the publish behind it.
  CHECK(sink.handled == Lines{"POST /pub/a 1", "POST /pub/a 2", "GET /a", "POST /pub/a 3"});
}

TEST_CASE("a parse error behind a busy session is answered after it, then the connection closes") {
  FakeSink sink;
  Http1Reader reader(sink);
  reader.on_bytes(post("/pub/a", "1") + "BROKEN\r\n\r\n");
  CHECK(sink.handled == Lines{"POST /pub/a 1"});
  CHECK(sink.out.empty());  // nothing may overtake the publish's answer
  CHECK(sink.paused);
  sink.end_session(reader);
  CHECK(sink.out.rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(sink.out.find("Connection: close") != std::string::npos);
  CHECK(sink.flushing);
}

TEST_CASE("a parse error with nothing in flight is answered at once with its status") {
  FakeSink sink;
  Http1Reader reader(sink);
  reader.on_bytes("GET /" + std::string(300, 'u') + " HTTP/1.1\r\n\r\n");
  CHECK(sink.handled.empty());
  CHECK(sink.out.rfind("HTTP/1.1 414 ", 0) == 0);
  CHECK(sink.flushing);
}

TEST_CASE("Expect: 100-continue gets its interim answer only with nothing in flight") {
  const std::string expecting =
      "POST /pub/a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  SUBCASE("idle connection") {
    FakeSink sink;
    Http1Reader reader(sink);
    reader.on_bytes(expecting);
    CHECK(sink.out == "HTTP/1.1 100 Continue\r\n\r\n");
    reader.on_bytes("ok");
    CHECK(sink.handled == Lines{"POST /pub/a ok"});
  }
  SUBCASE("behind a publish in flight") {
    FakeSink sink;
    Http1Reader reader(sink);
    reader.on_bytes(post("/pub/a", "1") + expecting + "ok");
    CHECK(sink.out.empty());
    CHECK(sink.handled == Lines{"POST /pub/a 1", "POST /pub/a ok"});
  }
}

TEST_CASE("after a half-close the requests sent are answered, then the connection closes") {
  FakeSink sink;
  Http1Reader reader(sink);
  reader.on_bytes(kHold + kGetA);
  CHECK(reader.on_peer_closed());  // GET /a is still owed
  CHECK(reader.peer_closed());
  CHECK_FALSE(sink.flushing);
  sink.end_session(reader);
  CHECK(sink.handled == Lines{"GET /hold", "GET /a"});
  CHECK(sink.flushing);  // everything answered
}

TEST_CASE("a half-close after a partial request leaves nothing owed") {
  // The parser holds the partial head; what was complete has been answered, so the
  // connection may close at once (a request never finished is not answered).
  FakeSink sink;
  Http1Reader reader(sink);
  reader.on_bytes(kGetA + kGetB.substr(0, 7));
  CHECK(sink.handled == Lines{"GET /a"});
  CHECK_FALSE(reader.on_peer_closed());
}

TEST_CASE("nothing is parsed once the connection stopped taking requests") {
  FakeSink sink;
  Http1Reader reader(sink);
  sink.flushing = true;
  reader.on_bytes(kGetA);
  CHECK(sink.handled.empty());
  CHECK(reader.has_buffered());
}

}  // namespace
}  // namespace comet
