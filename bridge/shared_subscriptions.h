#pragma once
// One Redis subscription per channel per process, not per worker. The first worker's
// backend (the owner) holds every pub/sub subscription of the process; each worker asks
// it for the channels its clients need and gets the confirmations and live messages
// back on its own loop, so Redis' fan-out cost does not grow with the worker count.
// Commands (publish, history reads, fences) stay on each worker's own connections.
//
//   worker's RedisBridge --FanoutBackend--> SharedSubscriptions (owner's loop)
//                                              |  one SUBSCRIBE / SSUBSCRIBE per channel
//                                              v
//                                     owner's StandaloneRedis / ClusterRedis

#include <event2/event.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/bridge_health.h"
#include "bridge/loop_mailbox.h"
#include "bridge/redis_backend.h"
#include "bridge/redis_url.h"

namespace comet {

class FanoutBackend;

class SharedSubscriptions {
 public:
  SharedSubscriptions() = default;
  SharedSubscriptions(const SharedSubscriptions&) = delete;
  SharedSubscriptions& operator=(const SharedSubscriptions&) = delete;

  /** Redis pub/sub subscriptions the process holds now (any thread). */
  size_t redis_subscriptions() const { return subscribed_.load(); }

 private:
  friend class FanoutBackend;
  enum class State { kUnsubscribed, kSubscribing, kSubscribed, kUnsubscribing };
  struct Entry {
    std::vector<int> workers;  // that want it (asked and not left)
    State state = State::kUnsubscribed;
  };
  struct Member {
    FanoutBackend* backend = nullptr;
    std::unique_ptr<LoopMailbox> mailbox;
  };

  // Any thread (under mutex_).
  int join(FanoutBackend* backend, event_base* base);
  void leave(int index);
  void request(int index, bool subscribe, std::vector<std::string> names);
  /** Runs `task` with worker `index`'s backend on that worker's loop (the owner's own
   *  worker directly: the caller is on its loop). */
  void deliver(int index, std::function<void(FanoutBackend&)> task);

  // The owner's loop only.
  void owner_request(int index, bool subscribe, const std::vector<std::string>& names);
  void owner_pubsub(std::string_view kind, std::string_view name, std::string_view payload);
  void owner_lost(const std::vector<std::string>* names);
  void owner_retry();
  void subscribe_now(const std::vector<std::string>& names);
  void set_state(Entry& entry, State state);

  mutable std::mutex mutex_;
  std::vector<Member> members_;  // by worker index; index 0 owns the subscriptions
  std::unordered_map<std::string, Entry> entries_;
  std::atomic<size_t> subscribed_{0};
};

/** A worker's view of Redis: its own command connections, pub/sub through the owner. */
class FanoutBackend final : public RedisBackend, private RedisBackend::Listener {
 public:
  FanoutBackend(SharedSubscriptions& shared, event_base* base, const RedisAddress& address,
                std::vector<const char*> scripts, BridgeHealth& health,
                RedisBackend::Listener& bridge);
  ~FanoutBackend() override;

  void start() override { own_->start(); }
  void stop() override;
  /** Always: the owner queues a channel until its node can take the subscription. */
  bool can_subscribe(std::string_view) override { return true; }
  void subscribe(const std::vector<std::string>& names) override;
  void unsubscribe(const std::vector<std::string>& names) override;
  bool command(std::string_view key, redisCallbackFn* callback, void* privdata,
               const std::vector<std::string_view>& args) override {
    return own_->command(key, callback, privdata, args);
  }
  void command_failed(std::string_view error) override { own_->command_failed(error); }
  bool sharded() const override { return own_->sharded(); }

 private:
  friend class SharedSubscriptions;
  bool owner() const { return index_ == 0; }
  // Listener of the own backend: pub/sub events exist only at the owner.
  void on_pubsub(std::string_view kind, std::string_view name, std::string_view payload) override;
  void on_subscriptions_lost(const std::vector<std::string>* names) override;
  void on_subscriber_ready() override;
  void on_commands_ready() override { bridge_.on_commands_ready(); }

  SharedSubscriptions& shared_;
  RedisBackend::Listener& bridge_;
  int index_ = -1;
  bool left_ = false;
  std::unique_ptr<RedisBackend> own_;
};

}  // namespace comet
