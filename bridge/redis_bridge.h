#pragma once
// The Redis bridge of one worker: subscribes the Redis pub/sub channels its local
// subscribers need, feeds their messages to the worker's hub in id order (filling gaps
// from the channel's stream), rebuilds channels from the stream after (re)subscribing,
// and publishes through the shared Lua script.

#include <event2/event.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/bridge_health.h"
#include "bridge/redis_backend.h"
#include "bridge/redis_url.h"
#include "bridge/shared_subscriptions.h"
#include "bus/bus.h"
#include "hub/hub.h"

namespace comet {

/** How long a subscription waits for its channel to be read from Redis before it is
 *  answered "unavailable" (503) instead of hanging. */
constexpr int64_t kSyncWaitLimitMs = 5000;

struct RedisBridgeConfig {
  RedisAddress address;
  size_t history_size = 1000;   // MAXLEN ~ of each stream, and messages fetched per sync
  int64_t key_ttl_seconds = 0;  // expiry of a channel's keys after its last publish; 0 = none
  size_t max_parked = 10000;    // live messages held per channel while it syncs
  size_t wait_replicas = 0;     // WAIT for this many replicas before a publish is answered
  int64_t wait_timeout_ms = 500;
};

class RedisBridge final : public Bus, public ChannelObserver, private RedisBackend::Listener {
 public:
  using PublishCallback = PublishDone;

  /** Registers itself as `hub`'s channel observer. Call start() to connect. */
  /** `shared` holds the process' pub/sub subscriptions (one per channel, at the first
   *  worker's bridge). */
  RedisBridge(event_base* base, Hub& hub, const RedisBridgeConfig& config, BridgeHealth& health,
              SharedSubscriptions& shared);
  ~RedisBridge() override;
  RedisBridge(const RedisBridge&) = delete;
  RedisBridge& operator=(const RedisBridge&) = delete;

  void start() override;
  /** Disconnects; pending publish callbacks get an error. */
  void stop();

  /**
   * Publishes through publish.lua. `done` is called exactly once, from this worker's
   * loop (possibly before publish returns, when Redis is unreachable).
   */
  void publish(std::string_view channel, std::string_view event, std::string_view data,
               PublishCallback done) override;
  /** Nothing to do at once: the hub holds the subscription pending until the channel syncs. */
  void prepare_subscribe(std::string_view) override {}

  void on_first_subscriber(const std::string& channel) override;
  void on_last_subscriber(const std::string& channel) override;
  bool reread(const std::string& channel) override;

  /** Channels currently subscribed in Redis by this worker (for tests and /stats). */
  size_t redis_subscriptions() const;

 private:
  enum class RedisState { kUnsubscribed, kSubscribing, kSubscribed, kUnsubscribing };
  struct Link {
    bool wanted = false;  // has local subscribers
    RedisState redis = RedisState::kUnsubscribed;
    bool synced = false;  // the hub's view is current; live messages apply directly
    bool fetching = false;
    bool refetch = false;           // fetch again when the current one ends
    uint64_t generation = 0;        // bumps on every reset so stale replies are ignored
    int64_t unsynced_since_ms = 0;  // when the wait for the current sync began (0 = synced)
    std::vector<MessagePtr> parked;
  };
  struct FetchRequest;
  struct FenceRequest;
  struct PublishRequest;

  static void on_fetch_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_publish_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_wait_reply(redisAsyncContext* ac, void* reply, void* privdata);
  struct WaitBatch;
  struct WaitTicket;
  void wait_for_replicas(redisAsyncContext* ac, std::unique_ptr<PublishRequest> request);
  void send_wait(redisAsyncContext* ac, WaitBatch& batch);
  void answer_waited(std::unique_ptr<PublishRequest> request, int replicas);
  static void on_fence_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_flush(evutil_socket_t, short, void* arg);
  static void on_fetch_retry(evutil_socket_t, short, void* arg);
  static void on_sync_watch(evutil_socket_t, short, void* arg);

  void schedule_flush();
  void flush_subscriptions();
  void handle_live(const std::string& channel, std::string_view payload);
  void start_fetch(const std::string& channel, Link& link);
  void finish_fetch(const std::string& channel, Link& link, const redisReply* reply,
                    size_t parked_at_send);
  void apply_parked(const std::string& channel, Link& link);
  void fence(const std::string& channel, Link& link, const std::string& epoch);
  bool send_fence(FenceRequest* request, bool use_eval);
  void resume_reads();

  // RedisBackend::Listener
  void on_pubsub(std::string_view kind, std::string_view name, std::string_view payload) override;
  void on_subscriptions_lost(const std::vector<std::string>* names) override;
  void on_subscriber_ready() override { flush_subscriptions(); }
  void on_commands_ready() override { resume_reads(); }
  void lose(const std::string& channel, Link& link);
  void start_sync_wait(Link& link);
  bool send_publish(PublishRequest* request, bool use_eval);
  bool send_fetch(FetchRequest* request, bool use_eval);
  void forget_if_idle(const std::string& channel);

  event_base* base_;
  Hub& hub_;
  RedisBridgeConfig config_;
  BridgeHealth& health_;
  std::unique_ptr<RedisBackend> redis_;
  event* flush_event_ = nullptr;
  event* fetch_retry_event_ = nullptr;
  event* sync_watch_event_ = nullptr;
  bool flush_scheduled_ = false;
  std::unordered_map<std::string, Link> links_;
  // --redis-wait-replicas: per connection, the publishes its WAIT in flight answers and
  // those the next one will (WAIT blocks the connection: one at a time, for all).
  std::unordered_map<redisAsyncContext*, std::unique_ptr<WaitBatch>> waits_;
  std::string publish_sha_;
  std::string history_sha_;
  std::string fence_sha_;
};

/** The shipped Lua scripts (the .lua files in bridge/lua, embedded at build time). */
extern const char* const kPublishScript;
extern const char* const kHistoryScript;
extern const char* const kFenceScript;

/** Lower-case hex SHA-1 of a script, as SCRIPT LOAD / EVALSHA use. */
std::string script_sha1(std::string_view script);

}  // namespace comet
