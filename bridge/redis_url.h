#pragma once
// Redis connection settings from a URL:
//   redis://[[user]:password@]host[:port][/db]
//   unix://[[user]:password@]/path/to/redis.sock[?db=N]

#include <string>
#include <string_view>

namespace comet {

struct RedisAddress {
  bool unix_socket = false;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string path;      // unix socket path
  std::string username;  // Redis 6 ACL user; empty = default user
  std::string password;  // empty = no AUTH
  int db = 0;
};

/** Parses `url`; returns "" or a message saying what is wrong. */
std::string parse_redis_url(std::string_view url, RedisAddress& out);

}  // namespace comet
