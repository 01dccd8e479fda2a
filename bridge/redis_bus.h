#pragma once
// The Redis bus of a sidecar process: one RedisBridge per worker, all sharing one
// configuration, one health record (what /healthz and /metrics report) and one set of
// pub/sub subscriptions (held by the first worker's bridge).

#include "bridge/redis_bridge.h"
#include "bus/bus.h"

namespace comet {

class RedisBus final : public BusProvider {
 public:
  explicit RedisBus(const RedisBridgeConfig& config) : config_(config) {}

  std::unique_ptr<Bus> connect_worker(event_base* base, Hub& hub) override;
  const char* name() const override { return "redis"; }
  /** Degraded while any worker's Redis connection is down. */
  bool degraded() const override { return health_.connections_down() > 0; }
  void append_health_json(std::string& out) const override;
  void append_metrics(std::string& out) const override;

 private:
  RedisBridgeConfig config_;
  BridgeHealth health_;
  SharedSubscriptions shared_;
};

}  // namespace comet
