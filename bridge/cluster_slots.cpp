#include "bridge/cluster_slots.h"

#include <charconv>

#include "bridge/redis_reply.h"

namespace comet {
namespace {

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as the Redis Cluster spec uses.
uint16_t crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc ^= static_cast<uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
  }
  return crc;
}

// A RESP2 "map": a flat array of name, value pairs.
const redisReply* field(const redisReply* map, std::string_view name) {
  if (map == nullptr || map->type != REDIS_REPLY_ARRAY) return nullptr;
  for (size_t i = 0; i + 1 < map->elements; i += 2)
    if (reply_text(map->element[i]) == name) return map->element[i + 1];
  return nullptr;
}

bool parse_int(std::string_view text, int& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

int redis_key_slot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) & (kClusterSlots - 1);
}

const std::string& slot_hash_tag(int slot) {
  // About 180,000 numbers fill all 16384 slots: a few milliseconds, once per process.
  static const std::vector<std::string> tags = [] {
    std::vector<std::string> out(kClusterSlots);
    size_t filled = 0;
    for (uint32_t n = 0; filled < out.size(); ++n) {
      std::string tag = std::to_string(n);
      std::string& at = out[crc16(tag) & (kClusterSlots - 1)];
      if (at.empty()) {
        at = std::move(tag);
        ++filled;
      }
    }
    return out;
  }();
  return tags[static_cast<size_t>(slot) & (kClusterSlots - 1)];
}

std::string node_name(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool parse_cluster_shards(const redisReply* reply, std::vector<ClusterShard>& out,
                          std::string& error) {
  out.clear();
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
    error = reply != nullptr && reply->type == REDIS_REPLY_ERROR
                ? std::string(reply->str, reply->len)
                : "CLUSTER SHARDS did not answer a list";
    return false;
  }
  for (size_t s = 0; s < reply->elements; ++s) {
    const redisReply* shard = reply->element[s];
    const redisReply* slots = field(shard, "slots");
    const redisReply* nodes = field(shard, "nodes");
    if (slots == nullptr || nodes == nullptr || slots->type != REDIS_REPLY_ARRAY ||
        nodes->type != REDIS_REPLY_ARRAY || slots->elements % 2 != 0) {
      error = "a CLUSTER SHARDS entry without slots and nodes";
      return false;
    }
    ClusterShard entry;
    for (size_t i = 0; i + 1 < slots->elements; i += 2) {
      const redisReply* lo = slots->element[i];
      const redisReply* hi = slots->element[i + 1];
      if (lo->type != REDIS_REPLY_INTEGER || hi->type != REDIS_REPLY_INTEGER || lo->integer < 0 ||
          hi->integer >= kClusterSlots || lo->integer > hi->integer) {
        error = "a bad slot range in CLUSTER SHARDS";
        return false;
      }
      entry.ranges.emplace_back(static_cast<int>(lo->integer), static_cast<int>(hi->integer));
    }
    for (size_t n = 0; n < nodes->elements; ++n) {
      const redisReply* node = nodes->element[n];
      if (reply_text(field(node, "role")) != "master" ||
          reply_text(field(node, "health")) != "online")
        continue;
      std::string_view host = reply_text(field(node, "endpoint"));
      if (host.empty() || host == "?") host = reply_text(field(node, "ip"));
      const redisReply* port = field(node, "port");
      if (host.empty() || port == nullptr || port->type != REDIS_REPLY_INTEGER) continue;
      entry.host.assign(host);
      entry.port = static_cast<int>(port->integer);
      break;
    }
    // A shard with no online master (failing over) serves nothing until one is elected.
    if (entry.port > 0 && !entry.ranges.empty()) out.push_back(std::move(entry));
  }
  return true;
}

bool parse_cluster_redirect(std::string_view error, ClusterRedirect& out) {
  if (error.rfind("MOVED ", 0) == 0) {
    out.ask = false;
    error.remove_prefix(6);
  } else if (error.rfind("ASK ", 0) == 0) {
    out.ask = true;
    error.remove_prefix(4);
  } else {
    return false;
  }
  const size_t space = error.find(' ');
  if (space == std::string_view::npos || !parse_int(error.substr(0, space), out.slot) ||
      out.slot < 0 || out.slot >= kClusterSlots)
    return false;
  const std::string_view address = error.substr(space + 1);
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || !parse_int(address.substr(colon + 1), out.port) ||
      out.port <= 0 || out.port > 65535)
    return false;
  std::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  out.host.assign(host);
  return true;
}

}  // namespace comet
