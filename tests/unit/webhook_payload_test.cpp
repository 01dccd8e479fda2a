// The webhook request body (webhooks/webhook_payload.cpp), parsed back with rapidjson.

#include "webhooks/webhook_payload.h"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <set>

namespace comet {

TEST_CASE("webhook payload: every kind, with user_id and info only where they belong") {
  const std::vector<PresenceEvent> events = {
      {PresenceEvent::kChannelOccupied, "presence:room", "", "", 1},
      {PresenceEvent::kMemberAdded, "presence:room", "7", R"({"name":"Ann \"A\""})", 2},
      {PresenceEvent::kMemberAdded, "presence:room", "8", "{}", 3},
      {PresenceEvent::kMemberRemoved, "presence:room", "7", R"({"name":"Ann"})", 4},
      {PresenceEvent::kChannelVacated, "presence:room", "", "", 5},
  };
  const std::string body = webhook_batch_body(1700000000123, events);
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(doc["time_ms"].GetInt64() == 1700000000123);
  const auto& list = doc["events"].GetArray();
  REQUIRE(list.Size() == 5);
  CHECK(std::string(list[0]["name"].GetString()) == "channel_occupied");
  CHECK(std::string(list[0]["channel"].GetString()) == "presence:room");
  CHECK_FALSE(list[0].HasMember("user_id"));
  CHECK_FALSE(list[0].HasMember("info"));
  CHECK(list[0]["time_ms"].GetInt64() == 1);
  CHECK(std::string(list[1]["name"].GetString()) == "member_added");
  CHECK(std::string(list[1]["user_id"].GetString()) == "7");
  CHECK(std::string(list[1]["info"]["name"].GetString()) == "Ann \"A\"");
  CHECK_FALSE(list[2].HasMember("info"));  // "{}": none
  CHECK(std::string(list[3]["name"].GetString()) == "member_removed");
  CHECK(std::string(list[3]["user_id"].GetString()) == "7");
  CHECK_FALSE(list[3].HasMember("info"));
  CHECK(std::string(list[4]["name"].GetString()) == "channel_vacated");
  CHECK(list[4]["time_ms"].GetInt64() == 5);
}

TEST_CASE("webhook payload: channel and user are JSON-escaped") {
  const std::string body =
      webhook_batch_body(1, {{PresenceEvent::kMemberRemoved, "presence:a\"b", "u\\1", "", 9}});
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(std::string(doc["events"][0]["channel"].GetString()) == "presence:a\"b");
  CHECK(std::string(doc["events"][0]["user_id"].GetString()) == "u\\1");
}

TEST_CASE("webhook payload: an empty batch and batch ids") {
  CHECK(webhook_batch_body(5, {}) == R"({"time_ms":5,"events":[]})");
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = new_webhook_batch_id();
    CHECK(id.size() == 32);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    ids.insert(id);
  }
  CHECK(ids.size() == 1000);
}

}  // namespace comet
