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
