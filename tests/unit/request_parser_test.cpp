#include "http/request_parser.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace comet::http {
namespace {

// What a connection loop observed while parsing a whole byte stream.
struct Run {
  std::vector<Request> requests;
  int continues = 0;
  int error_status = 0;
  size_t consumed_total = 0;
  std::string leftover;  // Unconsumed bytes at the end (e.g. WebSocket frames after upgrade).
};

// Mimics a server's read loop: data arrives `chunk` bytes at a time into a buffer, the
// parser is fed the whole buffer, and exactly `consumed` bytes are drained each time.
Run run(std::string_view wire, size_t chunk, const ParserLimits& limits = ParserLimits{}) {
  RequestParser parser(limits);
  Run out;
  std::string buffer;
  size_t fed = 0;
  bool need_data = true;
  for (int guard = 0; guard < 1000000; ++guard) {
    if (need_data) {
      if (fed == wire.size()) break;
      size_t n = std::min(chunk, wire.size() - fed);
      buffer.append(wire.substr(fed, n));
      fed += n;
    }
    ParseResult res = parser.feed(buffer);
    REQUIRE(res.consumed <= buffer.size());
    buffer.erase(0, res.consumed);
    out.consumed_total += res.consumed;
    switch (res.status) {
      case ParseStatus::kNeedMore:
        CHECK(buffer.empty());
        need_data = true;
        break;
      case ParseStatus::kContinue:
        ++out.continues;
        need_data = buffer.empty();
        break;
      case ParseStatus::kComplete:
        out.requests.push_back(parser.take_request());
        if (out.requests.back().upgrade) {
          out.leftover = buffer + std::string(wire.substr(fed));
          return out;
        }
        need_data = buffer.empty();
        break;
      case ParseStatus::kError:
        out.error_status = parser.error_status();
        CHECK(parser.error_status() != 0);
        CHECK(std::string(parser.error_reason()) != "");
        CHECK(parser.feed("GET / HTTP/1.1\r\n\r\n").status == ParseStatus::kError);
        return out;
    }
  }
  out.leftover = buffer;
  return out;
}

// The error status for `wire`, checked to be the same whether fed whole or byte by byte.
int error_of(std::string_view wire, const ParserLimits& limits = ParserLimits{}) {
  int whole = run(wire, wire.size(), limits).error_status;
  CHECK(run(wire, 1, limits).error_status == whole);
  return whole;
}

// A header's value, or a marker that cannot collide with a real one when it is missing.
std::string header_of(const Request& r, std::string_view name) {
  const std::string* v = r.header(name);
  return v ? *v : "<missing>";
}

// All fields of a Request, so two parses can be compared in one go.
auto fields(const Request& r) {
  return std::tie(r.method, r.target, r.path, r.query, r.headers, r.body, r.http_major,
                  r.http_minor, r.keep_alive, r.upgrade);
}

void check_same(const Run& a, const Run& b) {
  CHECK(a.continues == b.continues);
  CHECK(a.error_status == b.error_status);
  CHECK(a.leftover == b.leftover);
  REQUIRE(a.requests.size() == b.requests.size());
  for (size_t i = 0; i < a.requests.size(); ++i)
    CHECK(fields(a.requests[i]) == fields(b.requests[i]));
}

const char kSimpleGet[] =
    "GET /sse?ch=a%3Ab&x=1 HTTP/1.1\r\nHost: example.com\r\nX-Padded:   spaced value \t\r\n"
    "CoNtEnT-TyPe: text/plain\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n";

const char kChunkedPost[] =
    "POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n6;name=value\r\n world\r\nA\r\n, chunked!\r\n"
    "0\r\nX-Trailer: dropped\r\n\r\n";

const char kUpgrade[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

TEST_CASE("simple GET, with case-insensitive header lookup") {
  RequestParser parser(ParserLimits{});
  std::string_view wire = kSimpleGet;
  ParseResult res = parser.feed(wire);
  CHECK(res.status == ParseStatus::kComplete);
  CHECK(res.consumed == wire.size());
  const Request& req = parser.request();
  CHECK(req.method == "GET");
  CHECK(req.target == "/sse?ch=a%3Ab&x=1");
  CHECK(req.path == "/sse");
  CHECK(req.query == "ch=a%3Ab&x=1");
  REQUIRE(req.headers.size() == 5);
  CHECK(req.headers[0] == std::pair<std::string, std::string>("host", "example.com"));
  CHECK(req.headers[1].second == "spaced value");
  CHECK(req.headers[2].first == "content-type");
  CHECK(header_of(req, "content-type") == "text/plain");
  CHECK(req.header("Content-Type") == req.header("content-type"));
  CHECK(header_of(req, "x-dup") == "1");  // First of repeated headers.
  CHECK(req.header("missing") == nullptr);
  CHECK(req.body.empty());
  CHECK((req.http_major == 1 && req.http_minor == 1 && req.keep_alive && !req.upgrade));
  CHECK(parser.error_status() == 0);
}

TEST_CASE("request targets: path and query in origin-form and absolute-form") {
  struct Case {
    std::string target, path, query;
  };
  const Case cases[] = {
      {"/a%20b?x=1#frag", "/a b", "x=1"},
      {"/a#f?x=1", "/a", ""},  // a '?' in the fragment starts no query
      {"/a?b?c", "/a", "b?c"},
      {"/?", "/", ""},
      {"//double", "//double", ""},
      {"http://example.com/p%2Fq?r=s", "/p/q", "r=s"},  // absolute-form: the URL parser
  };
  for (const Case& c : cases) {
    CAPTURE(c.target);
    RequestParser parser(ParserLimits{});
    const std::string wire = "GET " + c.target + " HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(parser.feed(wire).status == ParseStatus::kComplete);
    CHECK(parser.request().path == c.path);
    CHECK(parser.request().query == c.query);
  }
}

TEST_CASE("every request gives identical results whatever the feed size") {
  const std::vector<std::string> corpus = {
      kSimpleGet,
      kChunkedPost,
      std::string(kUpgrade, sizeof(kUpgrade) - 1),
      "POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world",
      "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c "
      "HTTP/1.0\r\n\r\n",
      "\r\nGET /after-blank-line HTTP/1.1\r\nX-Empty:\r\nX-Next: v\r\n\r\n",
      "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
      "GET /a%20b/c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
  };
  for (const std::string& wire : corpus) {
    CAPTURE(wire);
    Run whole = run(wire, wire.size());
    for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{7}, size_t{13}}) {
      CAPTURE(chunk);
      check_same(whole, run(wire, chunk));
    }
  }
}

TEST_CASE("header names and values split across feeds reassemble") {
  RequestParser parser(ParserLimits{});
  CHECK(parser.feed("GET / HTTP/1.1\r\nX-Sp").status == ParseStatus::kNeedMore);
  CHECK(parser.feed("lit-Name: val").status == ParseStatus::kNeedMore);
  CHECK(parser.feed("ue part\r\nX-Empty:\r\nHo").status == ParseStatus::kNeedMore);
  ParseResult res = parser.feed("st: h\r\n\r\n");
  CHECK(res.status == ParseStatus::kComplete);
  const auto& headers = parser.request().headers;
  REQUIRE(headers.size() == 3);
  CHECK(headers[0] == std::pair<std::string, std::string>("x-split-name", "value part"));
  CHECK(headers[1] == std::pair<std::string, std::string>("x-empty", ""));
  CHECK(headers[2] == std::pair<std::string, std::string>("host", "h"));
}

TEST_CASE("three pipelined requests in one buffer come out one by one") {
  struct Expected {
    std::string wire, path, body;
  };
  const std::vector<Expected> expected = {
      {"GET /one HTTP/1.1\r\nHost: x\r\n\r\n", "/one", ""},
      {"POST /two HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "/two", "hello"},
      {"POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\n", "/3",
       "abc"},
  };
  std::string buffer;
  for (const Expected& e : expected) buffer += e.wire;
  RequestParser parser(ParserLimits{});
  for (const Expected& e : expected) {
    ParseResult res = parser.feed(buffer);
    CHECK(res.status == ParseStatus::kComplete);
    CHECK(res.consumed == e.wire.size());  // Exactly one request, not a byte more or less.
    Request req = parser.take_request();
    CHECK(req.path == e.path);
    CHECK(req.body == e.body);
    CHECK(req.headers.size() == 1);  // Trailers are not merged into the head.
    buffer.erase(0, res.consumed);
  }
  CHECK(buffer.empty());
  ParseResult res = parser.feed("");
  CHECK((res.status == ParseStatus::kNeedMore && res.consumed == 0));
}

TEST_CASE("Content-Length bodies (also on GET) and chunked bodies split at odd places") {
  const std::string with_length =
      "POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
      "GET /g HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
  const std::string chunked = kChunkedPost;
  for (size_t chunk = 1; chunk <= 17; ++chunk) {
    CAPTURE(chunk);
    Run r = run(with_length, chunk);
    REQUIRE(r.requests.size() == 2);
    CHECK((r.requests[0].method == "POST" && r.requests[0].body == "hello world"));
    CHECK((r.requests[1].method == "GET" && r.requests[1].body == "hi"));
    r = run(chunked, chunk);
    REQUIRE(r.requests.size() == 1);
    CHECK(r.requests[0].body == "hello world, chunked!");
    CHECK(r.requests[0].header("x-trailer") == nullptr);
    CHECK(r.consumed_total == chunked.size());
  }
}

TEST_CASE("Expect: 100-continue yields kContinue once, then the body") {
  const std::string head =
      "POST /upload HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n";
  RequestParser parser(ParserLimits{});
  ParseResult res = parser.feed(head);
  CHECK(res.status == ParseStatus::kContinue);
  CHECK(res.consumed == head.size());
  CHECK(parser.request().path == "/upload");
  res = parser.feed("hel");
  CHECK(res.status == ParseStatus::kNeedMore);
  CHECK(res.consumed == 3);
  res = parser.feed("lo");
  CHECK(res.status == ParseStatus::kComplete);
  CHECK(res.consumed == 2);
  CHECK(parser.request().body == "hello");

  // A client that does not wait still gets exactly one kContinue.
  Run r = run(head + "hello" + "GET /next HTTP/1.1\r\n\r\n", 4096);
  CHECK(r.continues == 1);
  REQUIRE(r.requests.size() == 2);
  CHECK(r.requests[0].body == "hello");
  CHECK(r.requests[1].path == "/next");

  r =
      run("POST / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
          "2\r\nok\r\n0\r\n\r\n",
          1);
  CHECK(r.continues == 1);
  REQUIRE(r.requests.size() == 1);
  CHECK(r.requests[0].body == "ok");
  CHECK(error_of("POST / HTTP/1.1\r\nExpect: nope\r\nContent-Length: 1\r\n\r\nx") == 417);
}

TEST_CASE("Expect: 100-continue is ignored without a body or on HTTP/1.0") {
  for (const char* wire :
       {"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"}) {
    CAPTURE(wire);
    Run r = run(wire, 1);
    CHECK(r.continues == 0);
    CHECK(r.requests.size() == 1);
  }
}

TEST_CASE("header section over the limit is 431 without buffering past the limit") {
  ParserLimits limits;
  limits.max_header_bytes = 256;
  std::string endless = "GET / HTTP/1.1\r\nX-Long: " + std::string(100000, 'a');

  RequestParser parser(limits);
  ParseResult res = parser.feed(endless);
  CHECK(res.status == ParseStatus::kError);
  CHECK(res.consumed <= limits.max_header_bytes);
  CHECK(parser.error_status() == 431);
  CHECK(std::string(parser.error_reason()) == "header section exceeds 256 bytes");

  // Dripped one byte at a time: rejected as soon as byte 257 arrives.
  RequestParser drip(limits);
  size_t total = 0;
  ParseResult last{ParseStatus::kNeedMore, 0};
  for (size_t i = 0; i < endless.size() && last.status == ParseStatus::kNeedMore; ++i) {
    last = drip.feed(std::string_view(endless).substr(i, 1));
    total += last.consumed;
  }
  CHECK(last.status == ParseStatus::kError);
  CHECK(drip.error_status() == 431);
  CHECK(total == limits.max_header_bytes);

  // Many short headers hit the same limit.
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  CHECK(error_of(many, limits) == 431);
}

TEST_CASE("header section limit is inclusive") {
  ParserLimits limits;
  limits.max_header_bytes = 64;
  std::string head = "GET / HTTP/1.1\r\nX-Fill: ";
  std::string exact = head + std::string(64 - head.size() - 4, 'f') + "\r\n\r\n";
  REQUIRE(exact.size() == 64);
  for (size_t chunk : {size_t{1}, size_t{64}}) {
    Run ok = run(exact, chunk, limits);
    CHECK(ok.requests.size() == 1);
    CHECK(ok.error_status == 0);
    std::string over = head + std::string(64 - head.size() - 3, 'f') + "\r\n\r\n";
    CHECK(run(over, chunk, limits).error_status == 431);
  }
}

TEST_CASE("URL too long is 414") {
  ParserLimits limits;
  limits.max_url_bytes = 100;
  std::string ok = "GET /" + std::string(99, 'u') + " HTTP/1.1\r\n\r\n";
  std::string bad = "GET /" + std::string(100, 'u') + " HTTP/1.1\r\n\r\n";
  CHECK(run(ok, 1, limits).requests.size() == 1);
  CHECK(run(ok, ok.size(), limits).requests.size() == 1);
  CHECK(error_of(bad, limits) == 414);
  // A request line longer than the whole head budget is still blamed on the URL.
  ParserLimits tight;
  tight.max_header_bytes = 64;
  tight.max_url_bytes = 4096;
  CHECK(error_of("GET /" + std::string(200, 'u'), tight) == 414);
}

TEST_CASE("body too large is 413 for Content-Length and chunked") {
  ParserLimits limits;
  limits.max_body_bytes = 10;
  // Rejected from the header alone, before any body byte arrives.
  CHECK(error_of("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", limits) == 413);
  CHECK(run("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", 1, limits).requests.size() ==
        1);
  CHECK(error_of("POST / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n", limits) == 413);

  std::string chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n";
  CHECK(error_of(chunked + "3\r\nabc\r\n0\r\n\r\n", limits) == 413);
  for (size_t chunk : {size_t{1}, size_t{4096}}) {
    Run fits = run(chunked + "2\r\nab\r\n0\r\n\r\n", chunk, limits);
    REQUIRE(fits.requests.size() == 1);
    CHECK(fits.requests[0].body == "01234567ab");
  }
}

TEST_CASE("malformed or unsupported requests map to the right status") {
  const std::vector<std::pair<std::string, int>> cases = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET / HTTP/9.9\r\n\r\n", 505},
      {"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
      {"GET /\r\n\r\n", 505},  // HTTP/0.9 simple request.
      {"GET / HTTP/1.x\r\n\r\n", 400},
      {"GET / FTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nNo-Colon\r\n\r\n", 400},
      {"FOO / HTTP/1.1\r\n\r\n", 501},
      {"get / HTTP/1.1\r\n\r\n", 501},  // Methods are case-sensitive.
      {std::string(40, 'X'), 501},
      {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
      {"GET / HTTP/1.1\r\nExpect: foo\r\n\r\n", 417},
      {"GET /bad%G1 HTTP/1.1\r\n\r\n", 400},
      {"GET /trunc%4 HTTP/1.1\r\n\r\n", 400},
      {"GET /nul%00 HTTP/1.1\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    CAPTURE(c.first);  // Not a structured binding: clang < 16 cannot capture those.
    CHECK(error_of(c.first) == c.second);
  }
  Run ok = run("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", 1);
  REQUIRE(ok.requests.size() == 1);
  CHECK(ok.requests[0].body == "z");
}

TEST_CASE("kError is sticky until reset(); feed() after kComplete starts afresh") {
  RequestParser parser(ParserLimits{});
  CHECK(parser.feed("GARBAGE\r\n").status == ParseStatus::kError);
  ParseResult res = parser.feed("GET / HTTP/1.1\r\n\r\n");
  CHECK(res.status == ParseStatus::kError);
  CHECK(res.consumed == 0);
  CHECK(parser.error_status() == 400);
  parser.reset();
  CHECK(parser.error_status() == 0);
  CHECK(std::string(parser.error_reason()).empty());
  CHECK(parser.feed("GET /a HTTP/1.1\r\nX-A: 1\r\n\r\n").status == ParseStatus::kComplete);
  // No reset() and no take_request(): the next feed must not inherit anything.
  CHECK(parser.feed("DELETE /b HTTP/1.1\r\n\r\n").status == ParseStatus::kComplete);
  CHECK(parser.request().method == "DELETE");
  CHECK(parser.request().path == "/b");
  CHECK(parser.request().headers.empty());
}

TEST_CASE("upgrade request leaves the WebSocket bytes unconsumed") {
  const std::string wire(kUpgrade, sizeof(kUpgrade) - 1);
  const size_t head_size = wire.find("\r\n\r\n") + 4;
  for (size_t chunk : {size_t{1}, size_t{3}, wire.size()}) {
    Run r = run(wire, chunk);
    REQUIRE(r.requests.size() == 1);
    CHECK(r.requests[0].upgrade);
    CHECK(header_of(r.requests[0], "upgrade") == "websocket");
    CHECK(r.consumed_total == head_size);  // The frame bytes stay in the caller's buffer.
    CHECK(r.leftover == wire.substr(head_size));
  }

  // Even with a Content-Length, the bytes after the head belong to the new protocol.
  std::string with_length =
      "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\nabc";
  Run r = run(with_length, 4096);
  REQUIRE(r.requests.size() == 1);
  CHECK(r.requests[0].body.empty());
  CHECK(r.leftover == "abc");

  r = run("CONNECT host:443 HTTP/1.1\r\n\r\ntunnel", 4096);
  REQUIRE(r.requests.size() == 1);
  CHECK(r.requests[0].upgrade);
  CHECK(r.leftover == "tunnel");

  // An Upgrade header alone (no Connection: upgrade) is not an upgrade.
  r = run("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", 4096);
  REQUIRE(r.requests.size() == 2);
  CHECK_FALSE(r.requests[0].upgrade);
}

TEST_CASE("HTTP/1.0 and Connection handling set keep_alive") {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
  };
  for (const auto& [wire, keep_alive] : cases) {
    Run r = run(wire, 1);
    REQUIRE(r.requests.size() == 1);
    CHECK(r.requests[0].keep_alive == keep_alive);
  }
  CHECK(run("GET / HTTP/1.0\r\n\r\n", 1).requests[0].http_minor == 0);
}

TEST_CASE("path is percent-decoded, query kept raw") {
  Run r = run("GET /a%20b/c%2Fd+e?x=%20+y HTTP/1.1\r\n\r\n", 4096);
  REQUIRE(r.requests.size() == 1);
  CHECK(r.requests[0].path == "/a b/c/d+e");
  CHECK(r.requests[0].query == "x=%20+y");

  r = run("GET /plain HTTP/1.1\r\n\r\n", 4096);
  CHECK(r.requests[0].query.empty());
  r = run("OPTIONS * HTTP/1.1\r\n\r\n", 4096);
  CHECK(r.requests[0].path == "*");
  r = run("GET http://example.com/abs%21?q=1 HTTP/1.1\r\n\r\n", 4096);
  CHECK(r.requests[0].path == "/abs!");
  CHECK(r.requests[0].query == "q=1");
}

TEST_CASE("a moved parser keeps parsing where it left off") {
  RequestParser first(ParserLimits{});
  CHECK(first.feed("GET /moved HTTP/1.1\r\nHo").status == ParseStatus::kNeedMore);
  RequestParser second = std::move(first);
  CHECK(second.feed("st: x\r\n\r\n").status == ParseStatus::kComplete);
  CHECK(second.request().path == "/moved");
  CHECK(header_of(second.request(), "host") == "x");
}

}  // namespace
}  // namespace comet::http

namespace comet::http {
namespace {

int strict_error(const std::string& wire) {
  ParserLimits limits;
  limits.require_host = true;
  RequestParser parser(limits);
  const ParseResult res = parser.feed(wire);
  return res.status == ParseStatus::kError ? parser.error_status() : 0;
}

TEST_CASE("Host: required once on HTTP/1.1, at most once on 1.0 (when the server asks)") {
  CHECK(strict_error("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
  CHECK(strict_error("GET / HTTP/1.1\r\n\r\n") == 400);
  CHECK(strict_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
  CHECK(strict_error("GET / HTTP/1.1\r\nHost: a\r\nhOsT: a\r\n\r\n") == 400);
  CHECK(strict_error("GET / HTTP/1.0\r\n\r\n") == 0);
  CHECK(strict_error("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n") == 400);
}

TEST_CASE("obs-fold (a header line starting with a space or tab) is a 400, however it is split") {
  const std::string folded = "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n";
  CHECK(strict_error(folded) == 400);
  CHECK(strict_error("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n") == 400);
  CHECK(strict_error("GET / HTTP/1.1\r\n Host: a\r\n\r\n") == 400);
  for (size_t cut = 1; cut < folded.size(); ++cut) {
    CAPTURE(cut);
    RequestParser parser(ParserLimits{});
    ParseResult first = parser.feed(folded.substr(0, cut));
    if (first.status == ParseStatus::kError) {
      CHECK(parser.error_status() == 400);
      continue;
    }
    const ParseResult second = parser.feed(folded.substr(first.consumed));
    CHECK(second.status == ParseStatus::kError);
    CHECK(parser.error_status() == 400);
  }
  // Spaces inside a value, leading blank lines and a body starting with a space are fine.
  CHECK(strict_error("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX-A: one two\r\n\r\n") == 0);
  CHECK(strict_error("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n\n x") == 0);
}

}  // namespace
}  // namespace comet::http

namespace comet::http {
namespace {

TEST_CASE("whether a request is accepted never depends on how its bytes are split") {
  // Found by fuzzing: a head ended by LF CR <byte> (libhttp-parser is lenient there)
  // followed by a folded-looking line was accepted byte by byte and refused whole.
  const std::string inputs[] = {
      std::string("GET / HTTP/1.1\nHost: x\n\ro\n "),
      "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + std::string(300, 'v') + "\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n \t\n GET / HTTP/1.1\r\n\r\n",
  };
  for (const std::string& input : inputs) {
    CAPTURE(input);
    ParserLimits limits;
    limits.require_host = true;
    auto outcome = [&limits](const std::string& bytes, size_t step) {
      RequestParser parser(limits);
      std::string result;
      size_t pos = 0;
      while (pos < bytes.size()) {
        const std::string piece = bytes.substr(pos, step);
        ParseResult res = parser.feed(piece);
        if (res.status == ParseStatus::kError) return result + "error";
        if (res.status == ParseStatus::kComplete)
          result += "complete:" + parser.take_request().path + ";";
        pos += res.consumed == 0 ? piece.size() : res.consumed;
        if (res.consumed == 0) break;
      }
      return result;
    };
    const std::string whole = outcome(input, input.size());
    for (size_t step : {1u, 2u, 3u, 7u}) CHECK(outcome(input, step) == whole);
  }
}

}  // namespace
}  // namespace comet::http
