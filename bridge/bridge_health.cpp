#include "bridge/bridge_health.h"

namespace comet {

std::vector<BridgeHealth::NodeState> BridgeHealth::nodes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<NodeState> out;
  for (const auto& [name, state] : nodes_) out.push_back(state);
  return out;
}

void BridgeHealth::change(const std::string& node, int connections, int down) {
  connections_down_.fetch_add(down);
  std::lock_guard<std::mutex> lock(mutex_);
  NodeState& state = nodes_[node];
  state.node = node;
  state.connections += connections;
  state.down += down;
  if (state.connections == 0) nodes_.erase(node);
}

BridgeHealth::Tracker::Tracker(BridgeHealth& health, std::string node)
    : health_(health), node_(std::move(node)) {
  health_.change(node_, 1, 1);
}

BridgeHealth::Tracker::~Tracker() { health_.change(node_, -1, up_ ? 0 : -1); }

void BridgeHealth::Tracker::up(bool is_up) {
  if (is_up == up_) return;
  up_ = is_up;
  health_.change(node_, 0, is_up ? -1 : 1);
}

}  // namespace comet
