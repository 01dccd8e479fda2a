#include "bridge/redis_bus.h"

#include "util/prometheus.h"

namespace comet {

std::unique_ptr<Bus> RedisBus::connect_worker(event_base* base, Hub& hub) {
  return std::make_unique<RedisBridge>(base, hub, config_, health_, shared_);
}

void RedisBus::append_health_json(std::string& out) const {
  out += ",\"redis_connections_down\":" + std::to_string(health_.connections_down()) +
         ",\"gaps_filled\":" + std::to_string(health_.gaps_filled.load()) +
         ",\"payload_errors\":" + std::to_string(health_.payload_errors.load()) +
         ",\"fences\":" + std::to_string(health_.fences.load()) +
         ",\"redis_subscriptions\":" + std::to_string(shared_.redis_subscriptions()) +
         ",\"redis_nodes\":[";
  bool first = true;
  for (const BridgeHealth::NodeState& node : health_.nodes()) {
    out += first ? "" : ",";
    first = false;
    out += "{\"node\":\"" + node.node + "\",\"connections\":" + std::to_string(node.connections) +
           ",\"down\":" + std::to_string(node.down) + "}";
  }
  out += "]";
}

void RedisBus::append_metrics(std::string& out) const {
  append_metric(out, "comet_redis_connections_down", "gauge",
                "Redis connections not connected (2 per worker, per master with a cluster).",
                std::to_string(health_.connections_down()));
  append_metric(out, "comet_redis_gaps_filled_total", "counter",
                "Gaps in pub/sub delivery filled from streams.",
                std::to_string(health_.gaps_filled.load()));
  append_metric(out, "comet_redis_payload_errors_total", "counter",
                "Malformed pub/sub payloads dropped.",
                std::to_string(health_.payload_errors.load()));
  append_metric(out, "comet_redis_fences_total", "counter",
                "Channels moved to a new epoch because Redis lost messages already delivered.",
                std::to_string(health_.fences.load()));
  append_metric(
      out, "comet_redis_subscriptions", "gauge",
      "Redis pub/sub subscriptions of this process (one per channel, shared by the workers).",
      std::to_string(shared_.redis_subscriptions()));
  append_metric(out, "comet_redis_publishes_not_durable_total", "counter",
                "Publishes answered before --redis-wait-replicas replicas had them.",
                std::to_string(health_.publishes_not_durable.load()));
  append_metric(out, "comet_redis_redirects_total", "counter",
                "MOVED/ASK answers from a Redis Cluster followed to the slot's node.",
                std::to_string(health_.redirects.load()));
  // Per node (a cluster's masters, or the one server): connections of all workers.
  append_metric_header(out, "comet_redis_node_connections", "gauge",
                       "Redis connections to a node, and how many are down.");
  for (const BridgeHealth::NodeState& node : health_.nodes()) {
    out += "comet_redis_node_connections{node=\"" + node.node + "\",state=\"up\"} " +
           std::to_string(node.connections - node.down) + "\n";
    out += "comet_redis_node_connections{node=\"" + node.node + "\",state=\"down\"} " +
           std::to_string(node.down) + "\n";
  }
}

}  // namespace comet
