#pragma once
// One Redis server (or the master Sentinel names): a command connection and a
// SUBSCRIBE connection per worker. See redis_backend.h.

#include <memory>
#include <string>
#include <vector>

#include "bridge/bridge_health.h"
#include "bridge/redis_backend.h"
#include "bridge/redis_connection.h"

namespace comet {

class StandaloneRedis final : public RedisBackend {
 public:
  /** `scripts` are loaded (SCRIPT LOAD) each time the command connection comes up.
   *  Without `with_subscriber` there is no SUBSCRIBE connection (another worker's
   *  backend holds the process' subscriptions). */
  StandaloneRedis(event_base* base, const RedisAddress& address, std::vector<const char*> scripts,
                  BridgeHealth& health, Listener& listener, bool with_subscriber = true);
  ~StandaloneRedis() override;

  void start() override;
  void stop() override;
  bool can_subscribe(std::string_view) override { return sub_.ready(); }
  void subscribe(const std::vector<std::string>& names) override;
  void unsubscribe(const std::vector<std::string>& names) override;
  bool command(std::string_view key, redisCallbackFn* callback, void* privdata,
               const std::vector<std::string_view>& args) override;
  void command_failed(std::string_view error) override;
  bool sharded() const override { return false; }

 private:
  static void on_pubsub_reply(redisAsyncContext* ac, void* reply, void* privdata);
  void send_chunks(const char* verb, const std::vector<std::string>& names);

  const RedisAddress address_;
  std::vector<const char*> scripts_;
  Listener& listener_;
  RedisConnection sub_;
  RedisConnection cmd_;
  std::unique_ptr<BridgeHealth::Tracker> sub_health_;  // with a subscriber connection
  BridgeHealth::Tracker cmd_health_;
};

/** The pub/sub reply kinds the backends pass on, from Redis' own names. */
std::string_view pubsub_kind(std::string_view redis_kind);

/** Channels per SUBSCRIBE/UNSUBSCRIBE command. */
constexpr size_t kChannelsPerCommand = 1000;

}  // namespace comet
