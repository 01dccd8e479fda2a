#include "bridge/redis_bus.h"

#include "util/prometheus.h"

namespace comet {

std::unique_ptr<Bus> RedisBus::connect_worker(event_base* base, Hub& hub) {
  return std::make_unique<RedisBridge>(base, hub, config_, health_);
}

void RedisBus::append_health_json(std::string& out) const {
  out += ",\"redis_connections_down\":" + std::to_string(health_.connections_down.load()) +
         ",\"gaps_filled\":" + std::to_string(health_.gaps_filled.load()) +
         ",\"payload_errors\":" + std::to_string(health_.payload_errors.load()) +
         ",\"fences\":" + std::to_string(health_.fences.load());
}

void RedisBus::append_metrics(std::string& out) const {
  append_metric(out, "comet_redis_connections_down", "gauge",
                "Redis connections (2 per worker) not connected.",
                std::to_string(health_.connections_down.load()));
  append_metric(out, "comet_redis_gaps_filled_total", "counter",
                "Gaps in pub/sub delivery filled from streams.",
                std::to_string(health_.gaps_filled.load()));
  append_metric(out, "comet_redis_payload_errors_total", "counter",
                "Malformed pub/sub payloads dropped.",
                std::to_string(health_.payload_errors.load()));
  append_metric(out, "comet_redis_fences_total", "counter",
                "Channels moved to a new epoch because Redis lost messages already delivered.",
                std::to_string(health_.fences.load()));
}

}  // namespace comet
