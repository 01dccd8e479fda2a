#pragma once
// Redis connection settings from a URL:
//   redis://[[user]:password@]host[:port][/db]
//   unix://[[user]:password@]/path/to/redis.sock[?db=N]
//   redis+sentinel://[[user]:password@]host:port[,host:port...]/MASTER_NAME
//       [?db=N&sentinel_username=U&sentinel_password=P]
// (the credentials before @ are the data nodes'; the sentinels' are query options)

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace comet {

struct RedisAddress {
  bool unix_socket = false;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string path;      // unix socket path
  std::string username;  // Redis 6 ACL user; empty = default user
  std::string password;  // empty = no AUTH
  int db = 0;
  // Sentinel: the master named `master_name` is looked up at these sentinels (in order)
  // on every connect; host/port above are unused then.
  std::vector<std::pair<std::string, int>> sentinels;
  std::string master_name;
  std::string sentinel_username;
  std::string sentinel_password;

  bool uses_sentinel() const { return !sentinels.empty(); }
};

/** Parses `url`; returns "" or a message saying what is wrong. */
std::string parse_redis_url(std::string_view url, RedisAddress& out);

}  // namespace comet
