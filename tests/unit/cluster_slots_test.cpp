#include "bridge/cluster_slots.h"

#include <doctest/doctest.h>

#include "redis_reply_builder.h"

using namespace comet;

TEST_CASE("cluster slots: CRC16 of the key or of its hash tag, as Redis computes it") {
  // Values from CLUSTER KEYSLOT on Redis 7.0.
  CHECK(redis_key_slot("a1") == 7785);
  CHECK(redis_key_slot("foo") == 12182);
  CHECK(redis_key_slot("123456789") == 12739);  // the CRC16/XMODEM check value 0x31C3
  // One channel's keys and pub/sub name share a slot through the {hash tag}.
  CHECK(redis_key_slot("comet:{a1}:seq") == 7785);
  CHECK(redis_key_slot("comet:{a1}") == 7785);
  CHECK(redis_key_slot("comet:{a1}:log") == redis_key_slot("comet:{a1}:epoch"));
  // An empty tag means the whole key; only the first {...} counts.
  CHECK(redis_key_slot("x{}y") == redis_key_slot(std::string("x{}y")));
  CHECK(redis_key_slot("{a1}{zz}") == 7785);
}

TEST_CASE("cluster slots: a hash tag for every slot, the same on every sidecar") {
  // Presence keeps one due index per slot, named with that slot's tag.
  for (int slot = 0; slot < kClusterSlots; ++slot) {
    const std::string& tag = slot_hash_tag(slot);
    REQUIRE(!tag.empty());
    CHECK(redis_key_slot("comet:presence:due:{" + tag + "}") == slot);
  }
  // The smallest decimal number on the slot: "0" is on slot 13907; slot 0 needs a
  // larger one.
  CHECK(slot_hash_tag(13907) == "0");
  CHECK(std::stoi(slot_hash_tag(0)) > 0);
}

TEST_CASE("cluster slots: MOVED and ASK redirections") {
  ClusterRedirect r;
  REQUIRE(parse_cluster_redirect("MOVED 3999 127.0.0.1:6381", r));
  CHECK_FALSE(r.ask);
  CHECK(r.slot == 3999);
  CHECK(r.host == "127.0.0.1");
  CHECK(r.port == 6381);
  REQUIRE(parse_cluster_redirect("ASK 16383 [::1]:7000", r));
  CHECK(r.ask);
  CHECK(r.host == "::1");
  REQUIRE(parse_cluster_redirect("MOVED 1 :6380", r));  // the node does not know its address
  CHECK(r.host.empty());
  CHECK(r.port == 6380);
  CHECK_FALSE(parse_cluster_redirect("MOVED 16384 h:1", r));
  CHECK_FALSE(parse_cluster_redirect("MOVED x h:1", r));
  CHECK_FALSE(parse_cluster_redirect("TRYAGAIN Multiple keys request during rehashing", r));
  CHECK_FALSE(parse_cluster_redirect("ERR MOVED 1 h:1", r));
}

namespace {

using namespace comet::reply_builder;

redisReply* node(const char* ip, long long port, const char* role, const char* health) {
  return array({str("id"), str("abc"), str("port"), integer(port), str("ip"), str(ip),
                str("endpoint"), str(ip), str("role"), str(role), str("replication-offset"),
                integer(1), str("health"), str(health)});
}

}  // namespace

TEST_CASE("cluster slots: CLUSTER SHARDS gives each shard's online master and its slots") {
  redisReply* reply = array({
      array({str("slots"), array({integer(0), integer(5460), integer(10923), integer(10925)}),
             str("nodes"),
             array({node("10.0.0.4", 7003, "replica", "online"),
                    node("10.0.0.1", 7000, "master", "online")})}),
      array({str("slots"), array({integer(5461), integer(10922)}), str("nodes"),
             array({node("10.0.0.2", 7001, "master", "failed"),
                    node("10.0.0.5", 7004, "replica", "online")})}),
  });
  std::vector<ClusterShard> shards;
  std::string error;
  REQUIRE(parse_cluster_shards(reply, shards, error));
  // The second shard is failing over: no online master, so it serves nothing yet.
  REQUIRE(shards.size() == 1);
  CHECK(shards[0].host == "10.0.0.1");
  CHECK(shards[0].port == 7000);
  REQUIRE(shards[0].ranges.size() == 2);
  CHECK(shards[0].ranges[1] == std::make_pair(10923, 10925));
  freeReplyObject(reply);

  redisReply* bad =
      array({array({str("slots"), array({integer(5), integer(16384)}), str("nodes"), array({})})});
  CHECK_FALSE(parse_cluster_shards(bad, shards, error));
  CHECK(error.find("slot range") != std::string::npos);
  freeReplyObject(bad);
  redisReply* not_list = reply_builder::error("ERR This instance has cluster support disabled");
  CHECK_FALSE(parse_cluster_shards(not_list, shards, error));
  CHECK(error.find("cluster support disabled") != std::string::npos);
  freeReplyObject(not_list);
}
