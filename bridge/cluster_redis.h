#pragma once
// A Redis Cluster (redis+cluster://seeds): per worker, a command connection to each
// master and, for the masters that own subscribed channels, a sharded-pub/sub connection.
// The slot map comes from CLUSTER SHARDS and is read again whenever a node answers
// MOVED, a connection is lost or a slot's subscriptions are dropped by its node (a slot
// migrated). Commands go to the slot owner: MOVED updates the map and resends, ASK sends
// ASKING and the command to the named node once, TRYAGAIN/CLUSTERDOWN are retried for
// up to 2 s. Each channel is subscribed with SSUBSCRIBE (grouped per slot) at its slot's
// owner, and with SUBSCRIBE on the same connection so that a bare PUBLISH from redis-cli
// (broadcast to every node) still arrives. See redis_backend.h.

#include <event2/event.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/bridge_health.h"
#include "bridge/redis_backend.h"
#include "bridge/redis_connection.h"
#include "bridge/redis_push_connection.h"

namespace comet {

class ClusterRedis final : public RedisBackend {
 public:
  ClusterRedis(event_base* base, const RedisAddress& address, std::vector<const char*> scripts,
               BridgeHealth& health, Listener& listener);
  ~ClusterRedis() override;

  void start() override;
  void stop() override;
  bool can_subscribe(std::string_view name) override;
  void subscribe(const std::vector<std::string>& names) override;
  void unsubscribe(const std::vector<std::string>& names) override;
  bool command(std::string_view key, redisCallbackFn* callback, void* privdata,
               const std::vector<std::string_view>& args) override;
  void command_failed(std::string_view error) override;
  bool sharded() const override { return true; }

 private:
  struct Node;
  struct RoutedCommand;
  // A subscribe command sent on a node's pub/sub connection, waiting for its replies.
  struct SentSubscription {
    std::string kind;  // the confirmation it gets: "ssubscribe", "subscribe", "sunsubscribe"...
    std::vector<std::string> names;
    size_t confirmations_left;
  };

  static void on_routed_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_shards_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_refresh(evutil_socket_t, short, void* arg);
  static void on_retry_waiting(evutil_socket_t, short, void* arg);
  static void on_reap(evutil_socket_t, short, void* arg);
  static void on_map_watch(evutil_socket_t, short, void* arg);

  Node& node_at(const std::string& host, int port);
  RedisAddress node_address(const std::string& host, int port, bool master_only) const;
  Node* owner_of(std::string_view key) const;
  bool dispatch(RoutedCommand* rc, Node& node, bool asking);
  void wait_and_retry(RoutedCommand* rc);
  void deliver(RoutedCommand* rc, redisAsyncContext* ac, redisReply* reply);
  void schedule_refresh();
  void apply_shards(const redisReply* reply);
  void retire(Node& node);
  void start_probe();
  void retire_probe();
  void on_push_reply(Node& node, const redisReply* reply);
  void on_push_lost(Node& node);
  void send_grouped(Node& node, const char* verb, const char* confirmation,
                    const std::vector<std::string>& names);

  event_base* base_;
  RedisAddress address_;  // credentials for every node
  std::vector<const char*> scripts_;
  BridgeHealth& health_;
  Listener& listener_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;  // by "host:port"
  std::vector<std::unique_ptr<Node>> retired_;          // freed at the end of the turn
  // When no master is reachable (every seed may be a replica by now: each master failed
  // over once), a connection to a seed of any role reads the map; one seed a second.
  std::unique_ptr<RedisConnection> probe_;
  std::vector<std::unique_ptr<RedisConnection>> retired_probes_;
  size_t probe_seed_ = 0;
  std::vector<Node*> slot_owner_;                         // kClusterSlots entries
  std::unordered_map<std::string, Node*> subscribed_at_;  // pub/sub name -> node
  std::deque<RoutedCommand*> waiting_;  // redirected to a node not yet connected, or TRYAGAIN
  event* refresh_event_ = nullptr;
  event* retry_event_ = nullptr;
  event* reap_event_ = nullptr;
  event* map_watch_event_ = nullptr;  // every second: is the map still right?
  int64_t last_refresh_ms_ = 0;
  bool refresh_in_flight_ = false;
  bool refresh_again_ = false;
  bool stopped_ = true;
};

}  // namespace comet
