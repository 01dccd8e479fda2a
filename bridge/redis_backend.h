#pragma once
// How a worker's bridge reaches Redis: commands routed by key, and pub/sub subscriptions.
// StandaloneRedis is one server (or the master Sentinel names): a command connection and
// a SUBSCRIBE connection. ClusterRedis is a Redis Cluster: a connection per master,
// commands sent to the slot owner, SSUBSCRIBE at the owner of each channel's slot.

#include <hiredis/async.h>

#include <string>
#include <string_view>
#include <vector>

namespace comet {

class RedisBackend {
 public:
  /** What the backend tells its bridge. Called on the worker's loop. */
  class Listener {
   public:
    virtual ~Listener() = default;
    /** "message" (a channel's pub/sub message), "subscribe" (now subscribed) or
     *  "unsubscribe" (an unsubscribe the bridge asked for is done). */
    virtual void on_pubsub(std::string_view kind, std::string_view name,
                           std::string_view payload) = 0;
    /** These subscriptions are gone (connection lost, slot moved elsewhere); nullptr =
     *  every subscription. Also for a subscribe that failed. */
    virtual void on_subscriptions_lost(const std::vector<std::string>* names) = 0;
    /** can_subscribe() may say yes to more names now. */
    virtual void on_subscriber_ready() = 0;
    /** A command connection is (back) up: resume reads that waited for it. */
    virtual void on_commands_ready() = 0;
  };

  virtual ~RedisBackend() = default;
  virtual void start() = 0;
  /** Disconnects for good; pending command callbacks get a null reply. */
  virtual void stop() = 0;

  /** Whether a subscribe of `name` can be sent now (its node is connected). */
  virtual bool can_subscribe(std::string_view name) = 0;
  /** Each is confirmed by on_pubsub("subscribe") or reported lost. */
  virtual void subscribe(const std::vector<std::string>& names) = 0;
  virtual void unsubscribe(const std::vector<std::string>& names) = 0;

  /**
   * Sends a command about `key` (binary-safe arguments) to the node that holds it.
   * Returns false when that node is not reachable now; then `callback` is not called.
   * Otherwise it is called exactly once (null reply: connection lost). `callback` may
   * be null (no answer wanted).
   */
  virtual bool command(std::string_view key, redisCallbackFn* callback, void* privdata,
                       const std::vector<std::string_view>& args) = 0;
  /** A command met this error: READONLY/LOADING mean the node is not (yet) the master. */
  virtual void command_failed(std::string_view error) = 0;
  /** Publish with SPUBLISH (sharded pub/sub): the subscriptions are SSUBSCRIBE. */
  virtual bool sharded() const = 0;
};

}  // namespace comet
