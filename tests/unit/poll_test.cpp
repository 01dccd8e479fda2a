// GET /poll: polling (wait=0), long-poll and JSONP (transports/poll.cpp) through the
// fake port.

#include <doctest/doctest.h>

#include <string>

#include "fake_port.h"

namespace comet {
namespace {

using test::error_body;
using test::get;
using test::parse_response;
using test::parse_responses;
using test::TestWorld;

std::string answer(const std::string& body, bool keep_alive = true, bool jsonp = false,
                   const std::string& cors = "") {
  return "HTTP/1.1 200 OK\r\n" + cors +
         "Content-Type: " + (jsonp ? "application/javascript" : "application/json") +
         "; charset=utf-8\r\n"
         "Cache-Control: no-store\r\n"
         "X-Content-Type-Options: nosniff\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\nConnection: " + (keep_alive ? "keep-alive" : "close") +
         "\r\n\r\n" + body;
}

std::string json(const std::string& cursor, const std::string& messages = "") {
  return "{\"cursor\":\"" + cursor + "\",\"messages\":[" + messages + "]}\n";
}

std::string envelope(const std::string& ch, int id, const std::string& data,
                     const std::string& epoch = "E1") {
  return "{\"ch\":\"" + ch + "\",\"id\":" + std::to_string(id) +
         ",\"prev\":" + std::to_string(id - 1) + ",\"epoch\":\"" + epoch + "\",\"data\":\"" + data +
         "\"}";
}

TEST_CASE("poll wait=0: answers at once with the cursor and no messages") {
  TestWorld w;
  w.seed("a", 2);
  CHECK(w.route(get("/poll?ch=a&wait=0")) == true);
  CHECK(w.port.take() == answer(json("a@E1.2")));
  CHECK(w.port.sessions_begun == 0);  // answered from the hub: no session (poll_now.cpp)
  CHECK(w.port.session == nullptr);
  CHECK(w.sessions(SessionKind::kPoll) == 0);
  CHECK(w.port.read_timeout_sets == 0);  // never held
  CHECK_FALSE(w.port.closing());
  CHECK(w.hub.subscription_count() == 0);
}

TEST_CASE("poll wait=0 on a channel this worker never saw: \"@.0\" without a session") {
  TestWorld w;
  CHECK(w.route(get("/poll?ch=a&wait=0")) == true);
  CHECK(w.port.take() == answer(json("a@.0")));
  CHECK(w.port.sessions_begun == 0);
  CHECK(w.hub.find("a") == nullptr);  // nothing left behind in the hub
  // A cursor naming an epoch this worker never saw needs a reset: the session.
  test::FakePort other(w.ctx);
  w.route(get("/poll?ch=a&wait=0&cursor=a@E7.3"), other);
  CHECK(other.sessions_begun == 1);
  CHECK(other.ended_keep_alive == true);
  CHECK(other.session == nullptr);  // destroyed once the answer is out
  CHECK(other.take() == answer(json("a@.0",
                                    "{\"type\":\"reset\",\"ch\":\"a\",\"reason\":\"epoch-changed\","
                                    "\"epoch\":\"\",\"id\":0}")));
}

TEST_CASE("sessionless poll: what needs a reset, a sync or a wait takes the session") {
  TestWorld w;
  w.seed("a", 3);
  struct Case {
    const char* target;
    int sessions;
  };
  const Case cases[] = {
      {"/poll?ch=a&cursor=a@E1.1", 0},          // retained messages: answered now
      {"/poll?ch=a&wait=0&cursor=a@E1.3", 0},   // at the head, wait=0
      {"/poll?ch=a&wait=0&cursor=a@.0", 0},     // "@.0" with the whole history retained
      {"/poll?ch=a&wait=0&cursor=a@OLD.2", 1},  // epoch-changed reset
      {"/poll?ch=a&wait=0&cursor=a@E1.9", 1},   // ahead of the hub
      {"/poll?ch=a&cursor=a@E1.3", 1},          // nothing new, waits: held
  };
  for (const Case& c : cases) {
    const std::string target = c.target;
    CAPTURE(target);
    test::FakePort port(w.ctx);
    w.route(get(c.target), port);
    CHECK(port.sessions_begun == c.sessions);
    port.session.reset();
  }
}

TEST_CASE("poll: a channel named twice is answered as once") {
  TestWorld w;
  w.seed("a", 1);
  w.route(get("/poll?ch=a,a&wait=0"));
  CHECK(w.port.take() == answer(json("a@E1.1")));
}

TEST_CASE("sessionless poll: with Redis only channels this worker follows live") {
  struct Observer final : ChannelObserver {
    void on_first_subscriber(const std::string&) override {}
    void on_last_subscriber(const std::string&) override {}
  } observer;
  TestWorld w;
  w.hub.set_observer(&observer);
  w.seed("a", 2);
  // No subscriber here: what the hub has of "a" may be stale: the session syncs it.
  w.route(get("/poll?ch=a&wait=0&cursor=a@E1.1"));
  CHECK(w.port.sessions_begun == 1);
  CHECK(w.port.take() == answer(json("a@E1.2", envelope("a", 2, "m2"))));
  // A held long-poll keeps the channel followed: now the hub can answer alone.
  test::FakePort held(w.ctx);
  w.route(get("/poll?ch=a"), held);
  REQUIRE(held.session != nullptr);
  test::FakePort next(w.ctx);
  w.route(get("/poll?ch=a&wait=0&cursor=a@E1.1"), next);
  CHECK(next.sessions_begun == 0);
  CHECK(next.take() == answer(json("a@E1.2", envelope("a", 2, "m2"))));
  held.session.reset();
  w.hub.set_observer(nullptr);
}

TEST_CASE("sessionless poll: history trimmed to its size gives the session's reset") {
  HubLimits limits;
  limits.history_size = 2;
  TestWorld w(limits);
  w.seed("a", 5);  // 4 and 5 retained
  w.route(get("/poll?ch=a&wait=0&cursor=a@E1.1"));
  CHECK(w.port.sessions_begun == 1);
  CHECK(w.port.take() ==
        answer(json("a@E1.5",
                    "{\"type\":\"reset\",\"ch\":\"a\",\"reason\":\"history-expired\","
                    "\"epoch\":\"E1\",\"id\":3}," +
                        envelope("a", 4, "m4") + "," + envelope("a", 5, "m5"))));
  // From just before the oldest retained message: answered from the hub.
  test::FakePort next(w.ctx);
  w.route(get("/poll?ch=a&wait=0&cursor=a@E1.3"), next);
  CHECK(next.sessions_begun == 0);
  CHECK(next.take() ==
        answer(json("a@E1.5", envelope("a", 4, "m4") + "," + envelope("a", 5, "m5"))));
}

TEST_CASE("poll: wait=false and wait=no mean wait=0 too; wait=1 holds") {
  TestWorld w;
  for (const char* value : {"0", "false", "no"}) {
    CAPTURE(value);
    test::FakePort port(w.ctx);
    w.route(get(std::string("/poll?ch=a&wait=") + value), port);
    CHECK(port.take() == answer(json("a@.0")));
  }
  test::FakePort held(w.ctx);
  w.route(get("/poll?ch=a&wait=1"), held);
  CHECK(held.out == "");
  CHECK(held.session != nullptr);
}

TEST_CASE("poll: retained messages after the cursor are answered at once, in order") {
  TestWorld w;
  w.seed("a", 3);
  w.route(get("/poll?ch=a&cursor=a@E1.1"));  // no wait=0: retained messages do not wait
  CHECK(w.port.take() ==
        answer(json("a@E1.3", envelope("a", 2, "m2") + "," + envelope("a", 3, "m3"))));
  CHECK(w.port.read_timeout_sets == 0);
  // No end-of-turn call left behind: on a keep-alive connection it would reach the
  // next (pipelined) request's session and answer a held poll at once.
  CHECK(w.port.defer_calls == 0);
}

TEST_CASE("long-poll: holds, and answers at the end of the turn with what was published in it") {
  TestWorld w;
  w.seed("a", 1);
  CHECK(w.route(get("/poll?ch=a")) == true);
  CHECK(w.port.out == "");
  CHECK(w.port.session != nullptr);
  CHECK(w.sessions(SessionKind::kPoll) == 1);
  CHECK(w.port.read_timeout == ReadTimeout::kPoll);
  CHECK_FALSE(w.port.streaming);
  CHECK(w.port.session->answers_after_eof());
  CHECK_FALSE(w.port.session->takes_more_requests());

  w.deliver("a", "first");
  CHECK(w.port.deferred);
  w.deliver("a", "second");  // the same turn: travels with the first
  CHECK(w.port.out == "");
  w.port.end_turn();
  CHECK(w.port.take() ==
        answer(json("a@E1.3", envelope("a", 2, "first") + "," + envelope("a", 3, "second"))));
  CHECK(w.port.end_of_turns == 1);
  CHECK(w.port.ended_keep_alive == true);
  CHECK(w.port.session == nullptr);
  CHECK(w.port.read_timeout == ReadTimeout::kRequest);  // reading requests again
  CHECK(w.sessions(SessionKind::kPoll) == 0);
  w.deliver("a", "later");
  CHECK(w.port.out == "");
}

TEST_CASE("long-poll: the poll timeout answers with no messages and the same cursor") {
  TestWorld w;
  w.seed("a", 4);
  w.route(get("/poll?ch=a&cursor=a@E1.4"));
  CHECK(w.port.out == "");
  w.port.timeout();
  CHECK(w.port.take() == answer(json("a@E1.4")));
  CHECK(w.port.ended_keep_alive == true);
  CHECK(w.port.session == nullptr);
}

TEST_CASE("long-poll: a message on another channel does not answer it") {
  TestWorld w;
  w.route(get("/poll?ch=a"));
  w.deliver("b", "not mine");
  w.port.end_turn();
  CHECK(w.port.out == "");
  CHECK(w.port.session != nullptr);
}

TEST_CASE("long-poll: an id-less message is delivered, the cursor does not move") {
  TestWorld w;
  w.seed("a", 1);
  w.route(get("/poll?ch=a"));
  w.hub.publish(make_message("a", "", 0, 0, "", "bare", monotonic_ms()));
  w.port.end_turn();
  CHECK(w.port.take() == answer(json("a@E1.1", "{\"ch\":\"a\",\"data\":\"bare\"}")));
}

TEST_CASE("JSONP: the answer is a call of the callback, as JavaScript") {
  TestWorld w;
  w.seed("a", 1);
  SUBCASE("immediate") {
    w.route(get("/poll?ch=a&cursor=a@E1.0&callback=app.on_poll"));
    CHECK(w.port.take() ==
          answer("/**/app.on_poll(" + std::string("{\"cursor\":\"a@E1.1\",\"messages\":[") +
                     envelope("a", 1, "m1") + "]});\n",
                 true, true));
  }
  SUBCASE("held, then the timeout") {
    w.route(get("/poll?ch=a&callback=$cb_1"));
    w.port.timeout();
    CHECK(w.port.take() ==
          answer("/**/$cb_1({\"cursor\":\"a@E1.1\",\"messages\":[]});\n", true, true));
  }
}

TEST_CASE("poll: a bad callback is a 400, nothing is subscribed") {
  TestWorld w;
  for (const char* callback : {"1abc", "a..b", "a.", ".a", "alert(1)", "a-b", ""}) {
    CAPTURE(callback);
    test::FakePort port(w.ctx);
    CHECK(w.route(get(std::string("/poll?ch=a&callback=") + callback), port) == true);
    const test::HttpResponse r = parse_response(port.take());
    CHECK(r.status == 400);
    CHECK(r.body ==
          error_body(400, "invalid callback name (a dotted JavaScript identifier, max 64)"));
    CHECK(port.sessions_begun == 0);
  }
  test::FakePort long_name(w.ctx);
  w.route(get("/poll?ch=a&wait=0&callback=" + std::string(65, 'c')), long_name);
  CHECK(parse_response(long_name.take()).status == 400);
  test::FakePort max_name(w.ctx);
  w.route(get("/poll?ch=a&wait=0&callback=" + std::string(64, 'c')), max_name);
  CHECK(parse_response(max_name.take()).status == 200);
  CHECK(w.hub.subscription_count() == 0);
}

TEST_CASE("poll: keep-alive is what the request asked for, down to end_session") {
  TestWorld w;
  SUBCASE("immediate answer") {
    http::Request request = get("/poll?ch=a&wait=0");
    request.keep_alive = false;
    CHECK(w.route(request) == false);
    CHECK(w.port.take() == answer(json("a@.0"), false));
    CHECK(w.port.sessions_begun == 0);  // no session: the connection closes after the answer
  }
  SUBCASE("held answer") {
    http::Request request = get("/poll?ch=a");
    request.keep_alive = false;
    CHECK(w.route(request) == false);
    CHECK(w.port.session != nullptr);
    CHECK_FALSE(w.port.closing());  // held: not closed while waiting
    w.deliver("a", "x");
    w.port.end_turn();
    CHECK(w.port.take() == answer(json("a@E1.1", envelope("a", 1, "x")), false));
    CHECK(w.port.ended_keep_alive == false);
  }
  CHECK(w.port.flush_close);
}

TEST_CASE("poll: one answer carries at most half of max-output-bytes, the crossing one included") {
  TestWorld w;
  w.config().max_output_bytes = 400;  // 200 bytes of envelopes per answer
  w.seed("a", 10);                    // envelopes of 51 bytes
  REQUIRE(envelope("a", 1, "m1").size() == 51);
  w.route(get("/poll?ch=a&cursor=a@E1.0"));
  // 51, 102, 153, 204: the fourth crosses 200 and is the last one.
  std::string four;
  for (int i = 1; i <= 4; ++i)
    four += (i > 1 ? "," : "") + envelope("a", i, "m" + std::to_string(i));
  CHECK(w.port.take() == answer(json("a@E1.4", four)));

  // The next poll goes on from the returned cursor.
  test::FakePort next(w.ctx);
  w.route(get("/poll?ch=a&cursor=a@E1.4"), next);
  std::string then;
  for (int i = 5; i <= 8; ++i)
    then += (i > 5 ? "," : "") + envelope("a", i, "m" + std::to_string(i));
  CHECK(next.take() == answer(json("a@E1.8", then)));
}

TEST_CASE("poll: several channels, one cursor; each channel's retained messages in order") {
  TestWorld w;
  w.seed("a", 2);
  w.seed("b", 3);
  w.route(get("/poll?ch=a,b&cursor=a@E1.1,b@E1.2"));
  CHECK(w.port.take() ==
        answer(json("a@E1.2,b@E1.3", envelope("a", 2, "m2") + "," + envelope("b", 3, "m3"))));
}

TEST_CASE("poll: a reset notice comes first, before the retained messages") {
  TestWorld w;
  w.seed("a", 2);
  w.route(get("/poll?ch=a&cursor=a@OLD.7"));
  CHECK(
      w.port.take() ==
      answer(json("a@E1.2",
                  "{\"type\":\"reset\",\"ch\":\"a\",\"reason\":\"epoch-changed\",\"epoch\":\"E1\","
                  "\"id\":0}," +
                      envelope("a", 1, "m1") + "," + envelope("a", 2, "m2"))));
}

TEST_CASE("poll: an epoch change while held is answered with the reset and the new message") {
  TestWorld w;
  w.seed("a", 2);
  w.route(get("/poll?ch=a"));
  w.hub.publish(make_message("a", "E2", 1, 0, "", "new", monotonic_ms()));
  w.port.end_turn();
  CHECK(
      w.port.take() ==
      answer(json("a@E2.1",
                  "{\"type\":\"reset\",\"ch\":\"a\",\"reason\":\"epoch-changed\",\"epoch\":\"E2\","
                  "\"id\":0}," +
                      envelope("a", 1, "new", "E2"))));
}

TEST_CASE("poll wait=0 on a channel still syncing waits for the sync, then answers") {
  TestWorld w;
  w.hub.begin_sync("a");
  w.route(get("/poll?ch=a&wait=0&cursor=a@E1.1"));
  CHECK(w.port.out == "");
  CHECK(w.port.session != nullptr);
  CHECK(w.port.read_timeout == ReadTimeout::kPoll);
  w.hub.finish_sync("a", "E1", 2,
                    {make_message("a", "E1", 1, 0, "", "m1", monotonic_ms()),
                     make_message("a", "E1", 2, 1, "", "m2", monotonic_ms())});
  CHECK(w.port.deferred);
  w.port.end_turn();
  CHECK(w.port.take() == answer(json("a@E1.2", envelope("a", 2, "m2"))));
}

TEST_CASE("poll wait=0 on a syncing channel with nothing new answers empty after the sync") {
  TestWorld w;
  w.hub.begin_sync("a");
  w.route(get("/poll?ch=a&wait=0"));
  CHECK(w.port.out == "");
  w.hub.finish_sync("a", "E3", 5, {});
  w.port.end_turn();
  CHECK(w.port.take() == answer(json("a@E3.5")));
}

TEST_CASE("long-poll on a syncing channel with nothing new keeps holding after the sync") {
  TestWorld w;
  w.hub.begin_sync("a");
  w.route(get("/poll?ch=a"));
  w.hub.finish_sync("a", "E3", 5, {});
  w.port.end_turn();
  CHECK(w.port.out == "");
  w.deliver("a", "x");
  w.port.end_turn();
  CHECK(w.port.take() == answer(json("a@E3.6", envelope("a", 6, "x", "E3"))));
}

TEST_CASE("poll: a channel still syncing is not answered with a made-up cursor") {
  // a has a retained message after its cursor; b (no cursor: start at its head) is still
  // being read from Redis, so its position is unknown. Answering at once would give b@.0
  // ("before b's first message", as start_poll once did): the next poll would replay all
  // of b's retained history, which this client never asked for. Like SSE and the stream
  // formats, the answer waits for every channel to be positioned.
  TestWorld w;
  w.seed("a", 2);
  w.hub.begin_sync("b");
  w.route(get("/poll?ch=a,b&cursor=a@E1.1"));
  CHECK(w.port.out == "");
  w.hub.finish_sync("b", "E2", 7, {});
  w.port.end_turn();
  CHECK(w.port.take() == answer(json("a@E1.2,b@E2.7", envelope("a", 2, "m2"))));
}

TEST_CASE("poll: pipelined input waits in the buffer; a flood closes") {
  TestWorld w;
  w.route(get("/poll?ch=a"));
  const std::string next = "GET /poll?ch=a HTTP/1.1\r\nHost: x\r\n\r\n";
  w.port.input(next);
  CHECK(w.port.input_left() == next.size());  // left for after the answer
  CHECK_FALSE(w.port.closing());
  w.port.input(std::string(w.config().max_header_bytes, 'x'));
  CHECK(w.port.closed_now);
  CHECK(w.port.close_reason == "too much pipelined input during a long-poll");
}

TEST_CASE("poll: shutdown answers a held poll before closing") {
  TestWorld w;
  w.seed("a", 1);
  w.route(get("/poll?ch=a"));
  w.port.shutdown();
  CHECK(w.port.take() == answer(json("a@E1.1")));
  CHECK(w.port.session == nullptr);
  CHECK(w.port.flush_close);
}

TEST_CASE("poll: only one answer, however many messages and timeouts follow in the turn") {
  TestWorld w;
  w.route(get("/poll?ch=a"));
  w.deliver("a", "x");
  w.port.timeout();  // the timeout fires in the same turn: answers now
  w.deliver("a", "y");
  w.port.end_turn();
  const std::vector<test::HttpResponse> all = parse_responses(w.port.take());
  REQUIRE(all.size() == 1);
  CHECK(all[0].body == json("a@E1.1", envelope("a", 1, "x")));
  CHECK(w.port.end_calls == 1);
}

TEST_CASE("poll: the answer is written once even if the session is called again before it goes") {
  TestWorld w;
  w.route(get("/poll?ch=a"));
  Session* session = w.port.session.get();
  w.deliver("a", "x");
  // Calls of one loop turn, before the connection destroys the ended session.
  session->on_end_of_turn();
  session->on_timeout();
  session->on_shutdown();
  CHECK(parse_responses(w.port.out).size() == 1);
  CHECK(w.port.end_calls == 1);
  w.port.settle();
  CHECK(w.port.session == nullptr);
}

TEST_CASE("poll: CORS headers of an allowed origin") {
  TestWorld w;
  w.config().allowed_origins = {"https://app.example"};
  w.route(get("/poll?ch=a&wait=0", {{"Origin", "https://app.example"}}));
  CHECK(w.port.take() == answer(json("a@.0"), true, false,
                                "Access-Control-Allow-Origin: https://app.example\r\n"
                                "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n"));
}

TEST_CASE("poll: refusals: no channel, too many channels, bad cursor, disallowed origin") {
  TestWorld w;
  w.config().max_channels = 2;
  w.config().allowed_origins = {"https://app.example"};
  struct Case {
    http::Request request;
    int status;
    const char* message;
  };
  const Case cases[] = {
      {get("/poll"), 400, "no channel given (use ch=name[,name...])"},
      {get("/poll?ch=a,b,c"), 400, "too many channels: 3 (max-channels is 2)"},
      {get("/poll?ch=a&cursor=a@E1"), 400,
       "malformed cursor (expected channel@epoch.id[,channel@epoch.id...])"},
      {get("/poll?ch=a", {{"Origin", "https://evil.example"}}), 403, "origin not allowed"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    test::FakePort port(w.ctx);
    CHECK(w.route(c.request, port) == true);
    const test::HttpResponse r = parse_response(port.take());
    CHECK(r.status == c.status);
    CHECK(r.body == error_body(c.status, c.message));
    CHECK(port.sessions_begun == 0);
  }
}

}  // namespace
}  // namespace comet
