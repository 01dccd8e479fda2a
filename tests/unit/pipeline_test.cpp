// The channel-request pipeline (transports/pipeline.cpp), run on rows made up for the
// test: the order of its steps and what each passes on.

#include "transports/pipeline.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fake_port.h"
#include "http/query.h"

namespace comet {
namespace {

using test::error_body;
using test::get;
using test::parse_response;
using test::TestWorld;

// What the made-up transport saw; static because rows hold plain function pointers.
struct Seen {
  std::vector<std::string> steps;
  ChannelRequest channels;
  std::string cors;
  bool keep_alive = true;
  Refusal refusal;
  bool start_result = true;
};
Seen seen;

Refusal recording_check(const RequestContext& ctx) {
  seen.steps.push_back("check");
  seen.cors = ctx.origin.cors_headers;
  return seen.refusal;
}

bool recording_start(RequestContext& ctx, const ChannelRequest& channels) {
  seen.steps.push_back("start");
  seen.channels = channels;
  seen.keep_alive = ctx.keep_alive;
  return seen.start_result;
}

TransportRow row(ChannelParse channels, bool last_event_id = false,
                 bool close_after_error = false) {
  return TransportRow{"/t",
                      "t",
                      SessionKind::kPoll,
                      true,
                      false,
                      channels,
                      last_event_id,
                      close_after_error,
                      recording_check,
                      recording_start};
}

bool run(TestWorld& w, const TransportRow& r, const http::Request& request) {
  http::QueryParams query;
  REQUIRE(http::QueryParams::parse(request.query, query));
  RequestContext ctx{w.port, w.ctx, request, query, {}, request.keep_alive};
  return run_pipeline(r, ctx);
}

struct Fresh {
  Fresh() { seen = Seen{}; }
};

TEST_CASE("pipeline: origin, then the transport's check, then channels, then start") {
  Fresh fresh;
  TestWorld w;
  w.config().allowed_origins = {"https://app.example"};
  const std::string cors =
      "Access-Control-Allow-Origin: https://app.example\r\n"
      "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n";
  CHECK(run(w, row(ChannelParse::kRequired),
            get("/t?ch=a,b,a&cursor=b@E1.4", {{"Origin", "https://app.example"}})) == true);
  CHECK(seen.steps == std::vector<std::string>{"check", "start"});
  CHECK(seen.cors == cors);  // the check already has the CORS headers
  CHECK(seen.channels.channels == std::vector<std::string>{"a", "b"});  // duplicates dropped
  REQUIRE(seen.channels.from.size() == 2);
  CHECK_FALSE(seen.channels.from[0].has_value());
  REQUIRE(seen.channels.from[1].has_value());
  CHECK(seen.channels.from[1]->epoch == "E1");
  CHECK(seen.channels.from[1]->id == 4);
  CHECK(w.port.out == "");  // the made-up start wrote nothing
}

TEST_CASE("pipeline: a refused origin stops before the check") {
  Fresh fresh;
  TestWorld w;
  w.config().allowed_origins = {"https://app.example"};
  CHECK(run(w, row(ChannelParse::kRequired), get("/t?ch=a", {{"Origin", "https://x.example"}})) ==
        true);
  CHECK(seen.steps.empty());
  CHECK(parse_response(w.port.take()).body == error_body(403, "origin not allowed"));
}

TEST_CASE("pipeline: the check's refusal carries its headers and the CORS ones") {
  Fresh fresh;
  TestWorld w;
  seen.refusal = Refusal{418, "no tea", "X-Extra: 1\r\n"};
  run(w, row(ChannelParse::kRequired), get("/t?ch=bad@name", {{"Origin", "https://o.example"}}));
  CHECK(seen.steps == std::vector<std::string>{"check"});  // channels were never parsed
  const test::HttpResponse r = parse_response(w.port.take());
  CHECK(r.status == 418);
  CHECK(r.body == error_body(418, "no tea"));
  // Allowed by '*' only: no credentials (those need the origin listed by name).
  CHECK(r.head.find("Access-Control-Allow-Origin: https://o.example\r\n"
                    "Vary: Origin\r\nX-Extra: 1\r\n") != std::string::npos);
  CHECK(r.header_or("connection") == "keep-alive");
}

TEST_CASE("pipeline: a channel error stops before start") {
  Fresh fresh;
  TestWorld w;
  run(w, row(ChannelParse::kRequired), get("/t?ch=ok,not ok"));
  CHECK(seen.steps == std::vector<std::string>{"check"});
  CHECK(parse_response(w.port.take()).status == 400);
}

TEST_CASE("pipeline: upgrade rows answer their errors with Connection: close") {
  Fresh fresh;
  TestWorld w;
  CHECK(run(w, row(ChannelParse::kRequired, false, true), get("/t")) == false);
  const test::HttpResponse r = parse_response(w.port.take());
  CHECK(r.status == 400);
  CHECK(r.header_or("connection") == "close");
  seen = Seen{};
  test::FakePort other(w.ctx);
  http::QueryParams query;
  const http::Request request = get("/t?ch=a");
  RequestContext ctx{other, w.ctx, request, query, {}, true};
  REQUIRE(http::QueryParams::parse(request.query, query));
  run_pipeline(row(ChannelParse::kRequired, false, true), ctx);
  CHECK(seen.keep_alive == false);  // the start sees it too
}

TEST_CASE("pipeline: optional channels are parsed only when ch= or cursor= is there") {
  Fresh fresh;
  TestWorld w;
  run(w, row(ChannelParse::kOptional), get("/t"));
  CHECK(seen.steps == std::vector<std::string>{"check", "start"});
  CHECK(seen.channels.channels.empty());
  seen = Seen{};
  run(w, row(ChannelParse::kOptional), get("/t?cursor=a@E1.2"));
  CHECK(seen.channels.channels == std::vector<std::string>{"a"});
  seen = Seen{};
  run(w, row(ChannelParse::kNone), get("/t?ch=not ok"));  // never parsed
  CHECK(seen.steps == std::vector<std::string>{"check", "start"});
  CHECK(w.port.out == "");
}

TEST_CASE("pipeline: Last-Event-ID counts only on rows that say so") {
  Fresh fresh;
  TestWorld w;
  run(w, row(ChannelParse::kRequired, true), get("/t?ch=a", {{"Last-Event-ID", "a@E2.9"}}));
  REQUIRE(seen.channels.from.size() == 1);
  REQUIRE(seen.channels.from[0].has_value());
  CHECK(seen.channels.from[0]->id == 9);
  seen = Seen{};
  run(w, row(ChannelParse::kRequired, false), get("/t?ch=a", {{"Last-Event-ID", "a@E2.9"}}));
  REQUIRE(seen.channels.from.size() == 1);
  CHECK_FALSE(seen.channels.from[0].has_value());
}

TEST_CASE("pipeline: start's result is the pipeline's") {
  Fresh fresh;
  TestWorld w;
  seen.start_result = false;
  CHECK(run(w, row(ChannelParse::kRequired), get("/t?ch=a")) == false);
}

}  // namespace
}  // namespace comet
