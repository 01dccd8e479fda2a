#pragma once
// Process-wide Redis health, shared by all workers' bridges (for /healthz and /metrics):
// counters, and for each Redis node how many of the workers' connections to it are
// down. A connection counts as down from its creation until it is first up.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace comet {

class BridgeHealth {
 public:
  std::atomic<uint64_t> gaps_filled{0};
  std::atomic<uint64_t> payload_errors{0};
  std::atomic<uint64_t> fences{0};  // channels moved to a new epoch: Redis lost what was delivered
  std::atomic<uint64_t> redirects{0};              // MOVED/ASK answers followed (Redis Cluster)
  std::atomic<uint64_t> publishes_not_durable{0};  // --redis-wait-replicas not met in time

  /** Connections (of all workers) not connected now. */
  int connections_down() const { return connections_down_.load(); }

  struct NodeState {
    std::string node;
    int connections = 0;
    int down = 0;
  };
  std::vector<NodeState> nodes() const;

  /** One connection's share of the health record: down until up(true); removed with it. */
  class Tracker {
   public:
    Tracker(BridgeHealth& health, std::string node);
    ~Tracker();
    Tracker(const Tracker&) = delete;
    Tracker& operator=(const Tracker&) = delete;
    void up(bool is_up);

   private:
    BridgeHealth& health_;
    std::string node_;
    bool up_ = false;
  };

 private:
  void change(const std::string& node, int connections, int down);

  std::atomic<int> connections_down_{0};
  mutable std::mutex mutex_;
  std::map<std::string, NodeState> nodes_;
};

}  // namespace comet
