#pragma once
// A Redis connection for sharded pub/sub (SSUBSCRIBE, Redis 7). hiredis 0.14's async API
// knows only SUBSCRIBE/PSUBSCRIBE and aborts on other pub/sub replies, so this one reads
// with hiredis' reader and hands every reply (confirmations, messages, errors) to one
// handler, in arrival order; the owner matches them to what it sent. AUTH on connect;
// a PING every second, and a node that leaves one unanswered for 2 s (partitioned,
// stopped) is dropped. Reconnects with jittered backoff until stopped.

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace comet {

class RedisPushConnection {
 public:
  RedisPushConnection(event_base* base, std::string host, int port, std::string username,
                      std::string password);
  ~RedisPushConnection();
  RedisPushConnection(const RedisPushConnection&) = delete;
  RedisPushConnection& operator=(const RedisPushConnection&) = delete;

  /**
   * `on_ready` each time the connection is (re)established; `on_reply` for every reply
   * but AUTH's and PING's; `on_lost` when an established connection goes away. The
   * owner must not destroy this object from inside one of them.
   */
  void set_handlers(std::function<void()> on_ready, std::function<void(const redisReply*)> on_reply,
                    std::function<void()> on_lost);
  void start();
  void stop();
  bool ready() const { return ready_; }
  const std::string& name() const { return name_; }

  /** Sends one command; false when not connected. */
  bool send(const std::vector<std::string_view>& args);

 private:
  static void on_read(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);
  static void on_tick(evutil_socket_t, short, void* arg);
  static void on_retry(evutil_socket_t, short, void* arg);
  void connect();
  void connected();
  void drop(const char* why);
  void become_ready();
  void schedule_retry();
  bool write_command(const std::vector<std::string_view>& args);

  event_base* base_;
  std::string host_;
  int port_;
  std::string username_;
  std::string password_;
  std::string name_;
  bufferevent* bev_ = nullptr;
  redisReader* reader_ = nullptr;
  event* tick_event_ = nullptr;   // connect deadline, then the PING every second
  event* retry_event_ = nullptr;  // the next connect attempt
  std::function<void()> on_ready_;
  std::function<void(const redisReply*)> on_reply_;
  std::function<void()> on_lost_;
  bool stopped_ = true;
  bool ready_ = false;
  bool awaiting_auth_ = false;
  int pings_outstanding_ = 0;
  int attempts_ = 0;
};

}  // namespace comet
