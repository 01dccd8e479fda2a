#include "bridge/redis_payload.h"

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>

#include <cstdlib>
#include <cstring>

#include "bridge/redis_bridge.h"
#include "redis_reply_builder.h"

using namespace comet;

TEST_CASE("pub/sub names carry the channel inside a cluster hash tag") {
  CHECK(redis_pubsub_name("chat:42") == "comet:{chat:42}");
  CHECK(channel_from_pubsub_name("comet:{chat:42}") == "chat:42");
  CHECK(channel_from_pubsub_name("comet:{}") == "");
  CHECK(channel_from_pubsub_name("other:{x}") == "");
  CHECK(channel_from_pubsub_name("comet:{x") == "");
}

TEST_CASE("a comet/1 payload becomes a sequenced message") {
  std::string error;
  // cjson in Redis writes numbers like this; ts 2 s before "now" means 2 s old.
  const auto m = parse_pubsub_payload(
      "chat",
      R"(comet/1 {"id":18,"prev":17,"epoch":"6b023d3c0d6222","event":"typing","data":"h\u00e9","ts":1000000})",
      1002000, 50000, error);
  REQUIRE(m != nullptr);
  CHECK(m->channel == "chat");
  CHECK(m->id == 18);
  CHECK(m->prev_id == 17);
  CHECK(m->epoch == "6b023d3c0d6222");
  CHECK(m->event == "typing");
  CHECK(m->data == "h\xc3\xa9");
  CHECK(m->published_ms == 48000);
  CHECK(m->origin_ms == 1000000);  // Redis TIME at publish: tells two messages under one id apart
}

TEST_CASE("anything else is a bare live message") {
  std::string error;
  const auto m = parse_pubsub_payload("chat", "hello from redis-cli", 0, 7, error);
  REQUIRE(m != nullptr);
  CHECK(m->id == 0);
  CHECK(m->epoch.empty());
  CHECK(m->data == "hello from redis-cli");
  CHECK(m->envelope == R"({"ch":"chat","data":"hello from redis-cli"})");
}

TEST_CASE("malformed payloads are refused with a reason") {
  std::string error;
  const char* bad[] = {
      "comet/1 not json",
      R"(comet/1 {"prev":0,"epoch":"e","data":"x"})",           // no id
      R"(comet/1 {"id":3,"prev":3,"epoch":"e","data":"x"})",    // prev must be < id
      R"(comet/1 {"id":1.5,"prev":0,"epoch":"e","data":"x"})",  // not whole
      R"(comet/1 {"id":1,"prev":0,"epoch":"bad epoch!","data":"x"})",
      R"(comet/1 {"id":1,"prev":0,"epoch":"e","data":5})",
      // An event is written raw on an SSE line: CR/LF would forge lines (found by fuzzing).
      R"(comet/1 {"id":1,"prev":0,"epoch":"e","event":"x\n\ndata: forged\nid: c@e.99","data":"x"})",
      R"(comet/1 {"id":1,"prev":0,"epoch":"e","event":"has space","data":"x"})",
  };
  for (const char* payload : bad) {
    error.clear();
    CHECK_MESSAGE(parse_pubsub_payload("c", payload, 0, 0, error) == nullptr, payload);
    CHECK(!error.empty());
  }
  CHECK(parse_pubsub_payload("c", "\xff\xfe", 0, 0, error) == nullptr);  // bare, not UTF-8
}

using namespace comet::reply_builder;

TEST_CASE("history.lua replies become messages, oldest first") {
  redisReply* reply =
      array({str("ep1"), integer(5),
             array({array({str("4"), str("four"), str(""), str("3"), str("0")}),
                    array({str("5"), str("five"), str("ev"), str("4"), str("1795308605598")})})});
  HistoryReply history;
  std::string error;
  REQUIRE(parse_history_reply("c", reply, 0, 100, history, error));
  CHECK(history.epoch == "ep1");
  CHECK(history.head == 5);
  REQUIRE(history.entries.size() == 2);
  CHECK(history.entries[0]->id == 4);
  CHECK(history.entries[0]->prev_id == 3);
  CHECK(history.entries[0]->data == "four");
  CHECK(history.entries[1]->event == "ev");
  CHECK(history.entries[1]->epoch == "ep1");
  CHECK(history.entries[0]->origin_ms == 0);
  CHECK(history.entries[1]->origin_ms == 1795308605598);
  freeReplyObject(reply);

  redisReply* wrong = array({str("ep1"), str("not a number"), array({})});
  CHECK_FALSE(parse_history_reply("c", wrong, 0, 0, history, error));
  freeReplyObject(wrong);
}

TEST_CASE("script SHA-1 matches what SCRIPT LOAD returns") {
  // SHA-1 of the empty string and of "return 1" (Redis: SCRIPT LOAD "return 1").
  CHECK(script_sha1("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(script_sha1("return 1") == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
  CHECK(script_sha1(kPublishScript).size() == 40);
}
