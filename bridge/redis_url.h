#pragma once
// Redis connection settings from a URL:
//   redis://[[user]:password@]host[:port][/db]
//   unix://[[user]:password@]/path/to/redis.sock[?db=N]
//   redis+sentinel://[[user]:password@]host:port[,host:port...]/MASTER_NAME
//       [?db=N&sentinel_username=U&sentinel_password=P]
//   redis+cluster://[[user]:password@]host:port[,host:port...]
//       (seed nodes of a Redis Cluster; the slot map is read from any of them)
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

  // Redis Cluster: seed nodes; host/port above are unused then.
  std::vector<std::pair<std::string, int>> cluster_seeds;
  // Use the node only while ROLE says "master", checked every second (Sentinel always;
  // each node connection of a cluster).
  bool master_only = false;

  bool uses_sentinel() const { return !sentinels.empty(); }
  bool uses_cluster() const { return !cluster_seeds.empty(); }
  bool checks_role() const { return master_only || uses_sentinel(); }
};

/** Parses `url`; returns "" or a message saying what is wrong. */
std::string parse_redis_url(std::string_view url, RedisAddress& out);

}  // namespace comet
