#pragma once
// What all workers share: read-only configuration and files, the bus, and counters.

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "bus/embedded_bus.h"
#include "config/config.h"
#include "redis_bridge.h"

namespace comet {

/** A file served from memory (loaded at start-up so serving never blocks the loop). */
struct StaticFile {
  std::string content_type;
  std::string bytes;
};

/** Process-wide counters, read by /healthz and /stats from any thread. */
struct Counters {
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> subscriptions{0};
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> slow_readers_cut{0};
  std::atomic<int64_t> sessions[6] = {};  // by SessionKind
};

struct SharedState {
  Config config;
  EmbeddedBus bus;  // used when no Redis is configured
  bool use_redis = false;
  RedisBridgeConfig redis;  // used when it is
  BridgeHealth bridge_health;
  Counters counters;
  std::map<std::string, StaticFile> static_files;  // by request path ("/", "/comet.js", ...)
};

}  // namespace comet
