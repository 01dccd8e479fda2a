#pragma once
// One hiredis async connection on a worker's event loop that keeps itself connected:
// AUTH and SELECT on connect, reconnect with jittered exponential backoff when lost.
// With Sentinel (redis+sentinel://) every connect first asks the sentinels where the
// master is, and the connection is used only once ROLE says "master". A command
// connection asks ROLE again every second: a demoted master is left within about a
// second, and one that does not answer within the next second is dropped (a partition,
// a stopped process). Lookups and connects that take over 2 s are dropped too. (A
// subscriber connection cannot send ROLE once subscribed: its owner reconnects it when
// the command connection loses the master.)

#include <event2/event.h>
#include <hiredis/async.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/redis_url.h"

namespace comet {

class RedisConnection {
 public:
  /**
   * `role` names the connection in logs ("sub", "cmd"); `subscriber`: it will be put in
   * pub/sub mode (no periodic ROLE). Does not connect yet.
   */
  RedisConnection(event_base* base, const RedisAddress& address, std::string role,
                  bool subscriber = false);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /**
   * `on_ready` runs each time the connection is (re)established (commands may be sent
   * from it); `on_lost` each time it goes away (pending callbacks have already been
   * called with a null reply). Neither runs after stop().
   */
  void set_handlers(std::function<void()> on_ready, std::function<void()> on_lost);

  /** Starts connecting; keeps reconnecting until stop(). */
  void start();
  /** Disconnects for good; pending command callbacks get a null reply. */
  void stop();

  bool ready() const { return ready_; }

  /**
   * Drops the connection and connects again (with Sentinel: looking the master up
   * again), e.g. after READONLY or LOADING: this node is not (or not yet) the master.
   * Done at the end of the loop turn, so it may be called from any callback.
   */
  void reconnect();

  /**
   * Sends one command (binary-safe arguments). Returns false when not connected; then
   * `callback` is not called. Otherwise it is called exactly once, with a null reply
   * if the connection is lost first.
   */
  bool command(redisCallbackFn* callback, void* privdata,
               const std::vector<std::string_view>& args);

 private:
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_auth_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_retry(evutil_socket_t, short, void* arg);
  static void on_sentinel_connect(const redisAsyncContext* ac, int status);
  static void on_sentinel_disconnect(const redisAsyncContext* ac, int status);
  static void on_master_address(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_role_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_watch(evutil_socket_t, short, void* arg);
  static void on_reconnect(evutil_socket_t, short, void* arg);
  void arm_watch(int64_t ms);
  void drop_connection(const char* why);
  void connection_lost(const char* why);
  void connect();
  void connect_to(const std::string& host, int port);
  void ask_sentinel();
  void drop_sentinel();
  void become_ready();
  void schedule_retry();

  event_base* base_;
  RedisAddress address_;
  std::string role_;
  redisAsyncContext* context_ = nullptr;
  event* retry_event_ = nullptr;
  event* watch_event_ = nullptr;      // Sentinel: deadlines and the periodic ROLE check
  event* reconnect_event_ = nullptr;  // reconnect() at the end of the turn
  bool subscriber_ = false;
  bool role_outstanding_ = false;          // a ROLE was sent and not answered yet
  redisAsyncContext* sentinel_ = nullptr;  // Sentinel: the lookup in progress
  size_t sentinel_index_ = 0;              // the sentinel asked next
  bool announced_ = false;                 // on_ready_ ran for this connection
  std::function<void()> on_ready_;
  std::function<void()> on_lost_;
  bool ready_ = false;
  bool stopped_ = true;
  int attempts_ = 0;
};

}  // namespace comet
