#pragma once
// Redis Cluster bookkeeping that needs no connection: which of the 16384 hash slots a
// key belongs to, the slot map read from CLUSTER SHARDS, and the redirections
// (MOVED / ASK) a node answers with when a slot lives elsewhere.

#include <hiredis/hiredis.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace comet {

constexpr int kClusterSlots = 16384;

/** The hash slot of `key` (CRC16 of the key, or of its first non-empty {hash tag}). */
int redis_key_slot(std::string_view key);

/**
 * A short text whose CRC16 is `slot` (0..16383): "{<tag>}" in a key name puts the key
 * on that slot, next to the keys of the channels it is about. The same on every
 * sidecar (the smallest decimal number that hashes there).
 */
const std::string& slot_hash_tag(int slot);

/** "host:port", the name of a node in logs, metrics and maps. */
std::string node_name(const std::string& host, int port);

/** One master and the slot ranges it serves (inclusive). */
struct ClusterShard {
  std::string host;
  int port = 0;
  std::vector<std::pair<int, int>> ranges;
};

/**
 * Parses a CLUSTER SHARDS reply (Redis 7): the master of each shard that is online,
 * with its slots. Returns false with `error` when the reply is not such a list.
 */
bool parse_cluster_shards(const redisReply* reply, std::vector<ClusterShard>& out,
                          std::string& error);

/** "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381". */
struct ClusterRedirect {
  bool ask = false;  // ASK: this one command, after ASKING; MOVED: the slot moved for good
  int slot = 0;
  std::string host;
  int port = 0;
};

/** Reads a MOVED/ASK error; false for any other text. `host` is empty when the node
 *  did not know its address ("MOVED 3999 :6380"): the answering node's host is meant. */
bool parse_cluster_redirect(std::string_view error, ClusterRedirect& out);

}  // namespace comet
