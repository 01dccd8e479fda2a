#include "bridge/cluster_redis.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <unordered_set>

#include "bridge/cluster_slots.h"
#include "bridge/redis_reply.h"
#include "bridge/standalone_redis.h"
#include "hub/message.h"
#include "util/log.h"

namespace comet {
namespace {

constexpr int kMaxRedirects = 5;
constexpr int64_t kRetryWindowMs = 2000;  // TRYAGAIN, CLUSTERDOWN, a node still connecting

}  // namespace

struct ClusterRedis::Node {
  std::string name;
  std::string host;
  int port = 0;
  std::unique_ptr<RedisConnection> cmd;
  std::unique_ptr<BridgeHealth::Tracker> cmd_health;
  std::unique_ptr<RedisPushConnection> sub;  // once a channel of this node is subscribed
  std::unique_ptr<BridgeHealth::Tracker> sub_health;
  std::deque<SentSubscription> sent;
  std::unordered_set<std::string> names;  // subscribed (or being subscribed) here
};

struct ClusterRedis::RoutedCommand {
  ClusterRedis* owner = nullptr;
  redisCallbackFn* callback = nullptr;
  void* privdata = nullptr;
  std::vector<std::string> args;
  int slot = 0;
  int64_t deadline_ms = 0;
  int redirects = 0;
  std::string ask_host;  // an ASK to follow once that node is connected
  int ask_port = 0;
};

ClusterRedis::ClusterRedis(event_base* base, const RedisAddress& address,
                           std::vector<const char*> scripts, BridgeHealth& health,
                           Listener& listener)
    : base_(base),
      address_(address),
      scripts_(std::move(scripts)),
      health_(health),
      listener_(listener),
      slot_owner_(kClusterSlots, nullptr) {
  refresh_event_ = evtimer_new(base_, on_refresh, this);
  retry_event_ = evtimer_new(base_, on_retry_waiting, this);
  reap_event_ = event_new(base_, -1, 0, on_reap, this);
  map_watch_event_ = event_new(base_, -1, EV_PERSIST, on_map_watch, this);
}

ClusterRedis::~ClusterRedis() {
  stop();
  event_free(refresh_event_);
  event_free(retry_event_);
  event_free(reap_event_);
  event_free(map_watch_event_);
}

void ClusterRedis::start() {
  stopped_ = false;
  for (const auto& [host, port] : address_.cluster_seeds) node_at(host, port);
  schedule_refresh();
  timeval second{1, 0};
  event_add(map_watch_event_, &second);
}

void ClusterRedis::stop() {
  if (stopped_) return;
  stopped_ = true;
  evtimer_del(refresh_event_);
  evtimer_del(retry_event_);
  event_del(map_watch_event_);
  std::deque<RoutedCommand*> waiting;
  waiting.swap(waiting_);
  for (RoutedCommand* rc : waiting) deliver(rc, nullptr, nullptr);
  if (probe_ != nullptr) probe_->stop();
  for (auto& [name, node] : nodes_) {
    node->cmd->stop();  // pending commands are answered with no reply
    node->cmd_health->up(false);
    if (node->sub) {
      node->sub->stop();
      node->sub_health->up(false);
    }
  }
}

// ---- nodes and the slot map ---------------------------------------------------------

// One node of the cluster, with the URL's credentials.
RedisAddress ClusterRedis::node_address(const std::string& host, int port, bool master_only) const {
  RedisAddress at = address_;
  at.cluster_seeds.clear();
  at.host = host;
  at.port = port;
  at.master_only = master_only;
  return at;
}

ClusterRedis::Node& ClusterRedis::node_at(const std::string& host, int port) {
  const std::string name = node_name(host, port);
  auto it = nodes_.find(name);
  if (it != nodes_.end()) return *it->second;
  auto node = std::make_unique<Node>();
  Node* n = node.get();
  n->name = name;
  n->host = host;
  n->port = port;
  // master_only: a demoted master is left within about a second.
  n->cmd = std::make_unique<RedisConnection>(base_, node_address(host, port, true), "cmd " + name);
  n->cmd_health = std::make_unique<BridgeHealth::Tracker>(health_, name);
  n->cmd->set_handlers(
      [this, n] {
        n->cmd_health->up(true);
        for (const char* script : scripts_)
          n->cmd->command(nullptr, nullptr, {"SCRIPT", "LOAD", script});
        schedule_refresh();
        listener_.on_commands_ready();
      },
      [this, n] {
        n->cmd_health->up(false);
        schedule_refresh();
      });
  nodes_.emplace(name, std::move(node));
  if (!stopped_) n->cmd->start();
  return *n;
}

ClusterRedis::Node* ClusterRedis::owner_of(std::string_view key) const {
  return slot_owner_[static_cast<size_t>(redis_key_slot(key))];
}

void ClusterRedis::schedule_refresh() {
  if (stopped_ || evtimer_pending(refresh_event_, nullptr)) return;
  // At most ten reads of the map a second, however many errors ask for one.
  timeval soon{0, 100 * 1000};
  evtimer_add(refresh_event_, &soon);
}

// A master that died is still "online" in the map its peers give until they agree it
// failed and promote a replica (node timeout + election): while a master's connection is
// down or a slot has no owner, read the map every second until it changes; and every
// 10 s anyway (a failover or reshard done while every connection stayed up).
void ClusterRedis::on_map_watch(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClusterRedis*>(arg);
  bool stale = monotonic_ms() - self->last_refresh_ms_ >= 10000;
  for (const auto& [name, node] : self->nodes_)
    if (!node->cmd->ready()) stale = true;
  // A probe that could not reach its seed within the second: try the next seed.
  if (self->probe_ != nullptr && !self->probe_->ready()) {
    self->retire_probe();
    ++self->probe_seed_;
  }
  if (!stale && std::find(self->slot_owner_.begin(), self->slot_owner_.end(), nullptr) !=
                    self->slot_owner_.end())
    stale = true;
  if (stale) self->schedule_refresh();
}

void ClusterRedis::on_refresh(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClusterRedis*>(arg);
  if (self->stopped_) return;
  if (self->refresh_in_flight_) {
    self->refresh_again_ = true;
    return;
  }
  for (auto& [name, node] : self->nodes_) {
    if (!node->cmd->ready()) continue;
    if (node->cmd->command(on_shards_reply, self, {"CLUSTER", "SHARDS"})) {
      self->refresh_in_flight_ = true;
      return;
    }
  }
  // No master reachable: ask a seed, whatever its role (the next connection that comes
  // up asks again too).
  if (self->probe_ == nullptr) self->start_probe();
}

void ClusterRedis::start_probe() {
  if (address_.cluster_seeds.empty()) return;
  const auto& [host, port] = address_.cluster_seeds[probe_seed_ % address_.cluster_seeds.size()];
  // Any role: a replica knows the map as well as a master.
  probe_ = std::make_unique<RedisConnection>(base_, node_address(host, port, false),
                                             "map probe " + node_name(host, port));
  probe_->set_handlers(
      [this] {
        if (!refresh_in_flight_ && probe_->command(on_shards_reply, this, {"CLUSTER", "SHARDS"}))
          refresh_in_flight_ = true;
      },
      [] {});
  probe_->start();
}

void ClusterRedis::retire_probe() {
  if (probe_ == nullptr) return;
  probe_->stop();  // inside its own callback hiredis frees the context afterwards
  retired_probes_.push_back(std::move(probe_));
  event_active(reap_event_, 0, 0);
}

void ClusterRedis::on_shards_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* self = static_cast<ClusterRedis*>(privdata);
  self->refresh_in_flight_ = false;
  if (self->stopped_) return;
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr) {
    self->schedule_refresh();
    return;
  }
  self->apply_shards(r);
  self->retire_probe();  // the masters in the map take over
  if (self->refresh_again_) {
    self->refresh_again_ = false;
    self->schedule_refresh();
  }
}

void ClusterRedis::apply_shards(const redisReply* reply) {
  last_refresh_ms_ = monotonic_ms();
  std::vector<ClusterShard> shards;
  std::string error;
  if (!parse_cluster_shards(reply, shards, error)) {
    LOG_ERROR("bridge", "redis cluster: cannot read the slot map: %s", error.c_str());
    timeval later{0, 500 * 1000};
    evtimer_add(refresh_event_, &later);
    return;
  }
  std::fill(slot_owner_.begin(), slot_owner_.end(), nullptr);
  std::unordered_set<Node*> masters;
  size_t covered = 0;
  for (const ClusterShard& shard : shards) {
    Node& node = node_at(shard.host, shard.port);
    masters.insert(&node);
    for (const auto& [lo, hi] : shard.ranges) {
      for (int slot = lo; slot <= hi; ++slot) slot_owner_[static_cast<size_t>(slot)] = &node;
      covered += static_cast<size_t>(hi - lo + 1);
    }
  }
  if (covered < static_cast<size_t>(kClusterSlots)) {
    LOG_WARN("bridge", "redis cluster: %zu of %d slots have an online master", covered,
             kClusterSlots);
    // A shard without a master (failing over): read the map again until it has one.
    timeval later{0, 500 * 1000};
    evtimer_add(refresh_event_, &later);
  }
  if (!masters.empty()) {
    // Nodes that are no longer masters (failed, demoted, removed) are left.
    std::vector<Node*> gone;
    for (auto& [name, node] : nodes_)
      if (masters.count(node.get()) == 0) gone.push_back(node.get());
    for (Node* node : gone) retire(*node);
  }
  listener_.on_subscriber_ready();
}

void ClusterRedis::retire(Node& node) {
  LOG_INFO("bridge", "redis cluster: %s is not a master in the slot map any more",
           node.name.c_str());
  std::vector<std::string> lost(node.names.begin(), node.names.end());
  for (const std::string& name : lost) subscribed_at_.erase(name);
  node.names.clear();
  node.sent.clear();
  auto it = nodes_.find(node.name);
  retired_.push_back(std::move(it->second));
  nodes_.erase(it);
  node.cmd->stop();
  node.cmd_health.reset();
  if (node.sub) {
    node.sub->stop();
    node.sub_health.reset();
  }
  event_active(reap_event_, 0, 0);
  if (!lost.empty()) listener_.on_subscriptions_lost(&lost);
}

void ClusterRedis::on_reap(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClusterRedis*>(arg);
  self->retired_.clear();
  self->retired_probes_.clear();
}

// ---- commands ----------------------------------------------------------------------

bool ClusterRedis::command(std::string_view key, redisCallbackFn* callback, void* privdata,
                           const std::vector<std::string_view>& args) {
  Node* node = owner_of(key);
  if (node == nullptr || !node->cmd->ready()) {
    if (node == nullptr) schedule_refresh();
    return false;
  }
  auto* rc = new RoutedCommand();
  rc->owner = this;
  rc->callback = callback;
  rc->privdata = privdata;
  rc->args.assign(args.begin(), args.end());
  rc->slot = redis_key_slot(key);
  rc->deadline_ms = monotonic_ms() + kRetryWindowMs;
  if (!dispatch(rc, *node, false)) {
    delete rc;
    return false;
  }
  return true;
}

bool ClusterRedis::dispatch(RoutedCommand* rc, Node& node, bool asking) {
  if (!node.cmd->ready()) return false;
  // ASKING applies to the next command on the same connection: both go out together.
  if (asking) node.cmd->command(nullptr, nullptr, {"ASKING"});
  std::vector<std::string_view> args(rc->args.begin(), rc->args.end());
  return node.cmd->command(on_routed_reply, rc, args);
}

void ClusterRedis::on_routed_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  auto* rc = static_cast<RoutedCommand*>(privdata);
  ClusterRedis* self = rc->owner;
  if (r == nullptr || self->stopped_) {
    if (!self->stopped_) self->schedule_refresh();
    self->deliver(rc, ac, r);
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    const std::string_view error = reply_or_error_text(r);
    ClusterRedirect redirect;
    if (parse_cluster_redirect(error, redirect) && ++rc->redirects <= kMaxRedirects) {
      self->health_.redirects.fetch_add(1, std::memory_order_relaxed);
      if (redirect.host.empty() && ac != nullptr && ac->c.tcp.host != nullptr)
        redirect.host = ac->c.tcp.host;
      Node& target = self->node_at(redirect.host, redirect.port);
      if (redirect.ask) {
        // Kept for TRYAGAIN retries too: the importing node answers TRYAGAIN while the
        // keys are half moved, and going back to the source would only ASK again.
        rc->ask_host = redirect.host;
        rc->ask_port = redirect.port;
      } else {
        // The slot lives there now; the rest of the map may have changed too.
        rc->ask_port = 0;
        self->slot_owner_[static_cast<size_t>(redirect.slot)] = &target;
        self->schedule_refresh();
      }
      if (!self->dispatch(rc, target, redirect.ask)) self->wait_and_retry(rc);
      return;
    }
    const bool transient = error.rfind("TRYAGAIN", 0) == 0 || error.rfind("CLUSTERDOWN", 0) == 0;
    if (transient && monotonic_ms() < rc->deadline_ms) {
      if (error.rfind("CLUSTERDOWN", 0) == 0) self->schedule_refresh();
      self->wait_and_retry(rc);
      return;
    }
  }
  self->deliver(rc, ac, r);
}

void ClusterRedis::wait_and_retry(RoutedCommand* rc) {
  waiting_.push_back(rc);
  if (!evtimer_pending(retry_event_, nullptr)) {
    timeval tv{0, 50 * 1000};
    evtimer_add(retry_event_, &tv);
  }
}

void ClusterRedis::on_retry_waiting(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClusterRedis*>(arg);
  std::deque<RoutedCommand*> waiting;
  waiting.swap(self->waiting_);
  const int64_t now = monotonic_ms();
  for (RoutedCommand* rc : waiting) {
    Node* target = rc->ask_port != 0 ? &self->node_at(rc->ask_host, rc->ask_port)
                                     : self->slot_owner_[static_cast<size_t>(rc->slot)];
    if (target != nullptr && self->dispatch(rc, *target, rc->ask_port != 0)) continue;
    if (now >= rc->deadline_ms) {
      self->deliver(rc, nullptr, nullptr);  // as if the connection were lost: refused
      continue;
    }
    self->wait_and_retry(rc);
  }
}

void ClusterRedis::deliver(RoutedCommand* rc, redisAsyncContext* ac, redisReply* reply) {
  std::unique_ptr<RoutedCommand> owned(rc);
  if (rc->callback != nullptr) rc->callback(ac, reply, rc->privdata);
}

// READONLY: a demoted master; LOADING: a node not ready; either way the map is stale.
void ClusterRedis::command_failed(std::string_view error) {
  if (error.rfind("READONLY", 0) == 0 || error.rfind("LOADING", 0) == 0 ||
      error.rfind("CLUSTERDOWN", 0) == 0)
    schedule_refresh();
}

// ---- sharded subscriptions -----------------------------------------------------------

bool ClusterRedis::can_subscribe(std::string_view name) {
  Node* node = owner_of(name);
  if (node == nullptr) return false;
  if (!node->sub) {
    node->sub = std::make_unique<RedisPushConnection>(base_, node->host, node->port,
                                                      address_.username, address_.password);
    node->sub_health = std::make_unique<BridgeHealth::Tracker>(health_, node->name);
    node->sub->set_handlers(
        [this, node] {
          node->sub_health->up(true);
          listener_.on_subscriber_ready();
        },
        [this, node](const redisReply* r) { on_push_reply(*node, r); },
        [this, node] {
          node->sub_health->up(false);
          on_push_lost(*node);
        });
    node->sub->start();
    return false;
  }
  return node->sub->ready();
}

void ClusterRedis::subscribe(const std::vector<std::string>& names) {
  std::map<Node*, std::vector<std::string>> by_node;
  std::vector<std::string> unplaced;
  for (const std::string& name : names) {
    Node* node = owner_of(name);
    if (node == nullptr || !node->sub || !node->sub->ready()) {
      unplaced.push_back(name);
      continue;
    }
    by_node[node].push_back(name);
    node->names.insert(name);
    subscribed_at_[name] = node;
  }
  for (auto& [node, list] : by_node) {
    send_grouped(*node, "SSUBSCRIBE", "ssubscribe", list);
    // Bare PUBLISHes (redis-cli) are broadcast to every node: one classic subscription
    // per channel, on the same connection, receives them.
    send_grouped(*node, "SUBSCRIBE", "subscribe", list);
  }
  if (!unplaced.empty()) listener_.on_subscriptions_lost(&unplaced);
}

void ClusterRedis::unsubscribe(const std::vector<std::string>& names) {
  std::map<Node*, std::vector<std::string>> by_node;
  for (const std::string& name : names) {
    auto it = subscribed_at_.find(name);
    if (it != subscribed_at_.end()) by_node[it->second].push_back(name);
  }
  for (auto& [node, list] : by_node) {
    send_grouped(*node, "SUNSUBSCRIBE", "sunsubscribe", list);
    send_grouped(*node, "UNSUBSCRIBE", "unsubscribe", list);
  }
}

void ClusterRedis::send_grouped(Node& node, const char* verb, const char* confirmation,
                                const std::vector<std::string>& names) {
  // One slot per command: Redis refuses SSUBSCRIBE across slots (CROSSSLOT).
  std::map<int, std::vector<std::string>> by_slot;
  for (const std::string& name : names) by_slot[redis_key_slot(name)].push_back(name);
  for (auto& [slot, list] : by_slot) {
    for (size_t start = 0; start < list.size(); start += kChannelsPerCommand) {
      SentSubscription sent{confirmation, {}, 0};
      std::vector<std::string_view> args = {verb};
      for (size_t i = start; i < list.size() && i < start + kChannelsPerCommand; ++i) {
        args.push_back(list[i]);
        sent.names.push_back(list[i]);
      }
      sent.confirmations_left = sent.names.size();
      if (node.sub->send(args)) node.sent.push_back(std::move(sent));
    }
  }
}

void ClusterRedis::on_push_reply(Node& node, const redisReply* r) {
  if (r->type == REDIS_REPLY_ERROR) {
    // The whole command at the front failed (e.g. MOVED: the slot moved meanwhile).
    if (node.sent.empty()) return;
    SentSubscription failed = std::move(node.sent.front());
    node.sent.pop_front();
    LOG_WARN("bridge", "redis cluster %s: %s of %zu channel(s) refused: %s", node.name.c_str(),
             failed.kind.c_str(), failed.names.size(), r->str);
    ClusterRedirect redirect;
    if (parse_cluster_redirect(reply_or_error_text(r), redirect) && !redirect.ask) {
      if (redirect.host.empty()) redirect.host = node.host;
      slot_owner_[static_cast<size_t>(redirect.slot)] = &node_at(redirect.host, redirect.port);
    }
    schedule_refresh();
    if (failed.kind != "ssubscribe") return;
    for (const std::string& name : failed.names) {
      node.names.erase(name);
      auto it = subscribed_at_.find(name);
      if (it != subscribed_at_.end() && it->second == &node) subscribed_at_.erase(it);
    }
    // Its classic twin (sent right after) did subscribe here: undo it.
    send_grouped(node, "UNSUBSCRIBE", "unsubscribe", failed.names);
    listener_.on_subscriptions_lost(&failed.names);
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  const std::string_view kind = reply_or_error_text(r->element[0]);
  const std::string name(reply_or_error_text(r->element[1]));
  if (kind == "smessage" || kind == "message") {
    listener_.on_pubsub("message", name, reply_or_error_text(r->element[2]));
    return;
  }
  // A confirmation of the command at the front, in the order its names were sent?
  bool confirmed = false;
  if (!node.sent.empty()) {
    SentSubscription& front = node.sent.front();
    if (front.kind == kind && front.names[front.names.size() - front.confirmations_left] == name) {
      confirmed = true;
      if (--front.confirmations_left == 0) node.sent.pop_front();
    }
  }
  if (kind == "ssubscribe") {
    listener_.on_pubsub("subscribe", name, {});
  } else if (kind == "sunsubscribe") {
    node.names.erase(name);
    auto it = subscribed_at_.find(name);
    const bool was_here = it != subscribed_at_.end() && it->second == &node;
    if (was_here) subscribed_at_.erase(it);
    if (confirmed) {
      listener_.on_pubsub("unsubscribe", name, {});
    } else if (was_here) {
      // Not asked for: the node gave the slot away (a migration). Subscribe again at
      // the new owner, and read the channel again there.
      LOG_INFO("bridge", "redis cluster %s: %s dropped (its slot moved); moving it",
               node.name.c_str(), name.c_str());
      send_grouped(node, "UNSUBSCRIBE", "unsubscribe", {name});
      schedule_refresh();
      std::vector<std::string> lost = {name};
      listener_.on_subscriptions_lost(&lost);
    }
  }
}

void ClusterRedis::on_push_lost(Node& node) {
  std::vector<std::string> lost(node.names.begin(), node.names.end());
  for (const std::string& name : lost) {
    auto it = subscribed_at_.find(name);
    if (it != subscribed_at_.end() && it->second == &node) subscribed_at_.erase(it);
  }
  node.names.clear();
  node.sent.clear();
  schedule_refresh();
  // Only this shard's channels are read again.
  if (!lost.empty()) listener_.on_subscriptions_lost(&lost);
}

}  // namespace comet
