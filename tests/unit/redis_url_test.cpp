#include "bridge/redis_url.h"

#include <doctest/doctest.h>

using comet::parse_redis_url;
using comet::RedisAddress;

TEST_CASE("redis URL: host, port, db and credentials") {
  RedisAddress a;
  CHECK(parse_redis_url("redis://127.0.0.1:6390/3", a) == "");
  CHECK(!a.unix_socket);
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 6390);
  CHECK(a.db == 3);
  CHECK(a.password.empty());

  CHECK(parse_redis_url("redis://:s%40cret@redis.local", a) == "");
  CHECK(a.host == "redis.local");
  CHECK(a.port == 6379);  // default
  CHECK(a.password == "s@cret");
  CHECK(a.username.empty());

  CHECK(parse_redis_url("redis://app:pw@[::1]:7000/1", a) == "");
  CHECK(a.host == "::1");
  CHECK(a.port == 7000);
  CHECK(a.username == "app");
  CHECK(a.password == "pw");
  CHECK(a.db == 1);

  CHECK(parse_redis_url("redis://", a) == "");
  CHECK(a.host == "127.0.0.1");
}

TEST_CASE("redis URL: unix sockets") {
  RedisAddress a;
  CHECK(parse_redis_url("unix:///run/redis/redis.sock", a) == "");
  CHECK(a.unix_socket);
  CHECK(a.path == "/run/redis/redis.sock");
  CHECK(parse_redis_url("unix://:pw@/tmp/r.sock?db=2", a) == "");
  CHECK(a.path == "/tmp/r.sock");
  CHECK(a.password == "pw");
  CHECK(a.db == 2);
}

TEST_CASE("redis URL: errors say what is wrong") {
  RedisAddress a;
  CHECK(parse_redis_url("http://x", a) != "");
  CHECK(parse_redis_url("redis://host:0", a) != "");
  CHECK(parse_redis_url("redis://host:99999", a) != "");
  CHECK(parse_redis_url("redis://host:abc", a) != "");
  CHECK(parse_redis_url("redis://host/x", a) != "");
  CHECK(parse_redis_url("redis://[::1", a) != "");
  CHECK(parse_redis_url("unix://relative.sock", a) != "");
  CHECK(parse_redis_url("unix:///tmp/r.sock?foo=1", a) != "");
  CHECK(parse_redis_url("redis://:%zz@host", a) != "");
}

TEST_CASE("redis URL: redis+sentinel:// lists sentinels and names the master") {
  RedisAddress a;
  REQUIRE(parse_redis_url("redis+sentinel://127.0.0.1:26379,[::1]:26380,s3:26381/mymaster", a) ==
          "");
  CHECK(a.uses_sentinel());
  REQUIRE(a.sentinels.size() == 3);
  CHECK(a.sentinels[0] == std::make_pair(std::string("127.0.0.1"), 26379));
  CHECK(a.sentinels[1] == std::make_pair(std::string("::1"), 26380));
  CHECK(a.sentinels[2] == std::make_pair(std::string("s3"), 26381));
  CHECK(a.master_name == "mymaster");
  CHECK(a.password.empty());
  REQUIRE(parse_redis_url("redis+sentinel://app:p%40ss@s1:26379/m?db=3&sentinel_password=sp&"
                          "sentinel_username=su",
                          a) == "");
  CHECK(a.username == "app");
  CHECK(a.password == "p@ss");  // the data nodes' credentials
  CHECK(a.db == 3);
  CHECK(a.sentinel_username == "su");
  CHECK(a.sentinel_password == "sp");
  RedisAddress plain;
  REQUIRE(parse_redis_url("redis://h:1", plain) == "");
  CHECK_FALSE(plain.uses_sentinel());
}

TEST_CASE("redis URL: redis+sentinel:// errors say what is wrong") {
  RedisAddress a;
  CHECK(parse_redis_url("redis+sentinel://s1:26379", a).find("master's name") != std::string::npos);
  CHECK(parse_redis_url("redis+sentinel://s1:26379/", a) != "");
  CHECK(parse_redis_url("redis+sentinel://s1/m", a).find("host:port") != std::string::npos);
  CHECK(parse_redis_url("redis+sentinel://s1:0/m", a) != "");
  CHECK(parse_redis_url("redis+sentinel:///m", a) != "");
  CHECK(parse_redis_url("redis+sentinel://s1:1,/m", a) != "");
  CHECK(parse_redis_url("redis+sentinel://s1:1/m?db=x", a) != "");
  CHECK(parse_redis_url("redis+sentinel://s1:1/m?tls=1", a).find("unknown") != std::string::npos);
}

TEST_CASE("redis URL: redis+cluster:// lists seed nodes") {
  RedisAddress a;
  REQUIRE(parse_redis_url("redis+cluster://u:p%40ss@10.0.0.1:7000,[::1]:7001,node3:7002", a) == "");
  CHECK(a.uses_cluster());
  CHECK_FALSE(a.uses_sentinel());
  CHECK(a.checks_role());  // every node connection is used only while it is a master
  REQUIRE(a.cluster_seeds.size() == 3);
  CHECK(a.cluster_seeds[1] == std::make_pair(std::string("::1"), 7001));
  CHECK(a.cluster_seeds[2] == std::make_pair(std::string("node3"), 7002));
  CHECK(a.username == "u");
  CHECK(a.password == "p@ss");
  CHECK(parse_redis_url("redis+cluster://", a).find("at least one") != std::string::npos);
  CHECK(parse_redis_url("redis+cluster://n1", a).find("host:port") != std::string::npos);
  CHECK(parse_redis_url("redis+cluster://n1:7000/2", a).find("database 0") != std::string::npos);
  CHECK(parse_redis_url("redis+cluster://n1:7000?x=1", a) != "");
  CHECK(parse_redis_url("redis+cluster://n1:7000,", a) != "");
}
