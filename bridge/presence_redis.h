#pragma once
// Presence across sidecars through Redis (docs/protocol.md, "Presence across sidecars
// (Redis)"): the PresenceStore of a sidecar started with --redis (standalone, Sentinel or
// Cluster). Runs on its own thread and event loop, with its own connections
// (StandaloneRedis or ClusterRedis), so nothing of it ever waits on a worker's loop.
//
// * Each local member is an entry "<instance>|<user>" in the channel's sorted set,
//   scored by its expiry; presence_join.lua adds or refreshes it (every kRefreshMs),
//   presence_leave.lua removes it. Both decide join/leave across all sidecars atomically
//   and publish the notice on comet:{<ch>}:presence:events (SPUBLISH on a Cluster). A
//   leave that cannot be sent (Redis unreachable) waits, and is sent once reconnected
//   unless the user joined again.
// * The sidecar subscribes to that channel while it has members there, reads the
//   members hash once subscribed, and hands both to the registry. Notices are numbered
//   (comet:{<ch>}:presence:version): a gap, or a number at a refresh other than the last
//   one received, has the members read again (presence_read.lua, with the number).
// * Sweeping: every channel's keys share its Cluster slot, and so does that slot's due
//   index (channel -> when its earliest entry may expire). comet:{presence}:slots lists the
//   slots with channels by due time. Every kSweepMs a sidecar claims the slots due
//   (presence_slots.lua: one sidecar per slot, for a lease) and runs presence_sweep.lua
//   on each: entries of a sidecar that stopped refreshing (killed) are removed, one leave
//   each (bridge/presence_sweep.cpp). A channel is visited when an entry may have expired,
//   not every second.
// * The transitions its own script calls made are this sidecar's events
//   (PresenceRegistry::report_event): each happens once across all sidecars.

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bridge/bridge_health.h"
#include "bridge/loop_mailbox.h"
#include "bridge/redis_backend.h"
#include "bridge/redis_url.h"
#include "presence/presence_registry.h"

namespace comet {

class PresenceRedis final : public PresenceStore, private RedisBackend::Listener {
 public:
  static constexpr int64_t kEntryTtlMs = 15000;
  static constexpr int64_t kRefreshMs = kEntryTtlMs / 3;
  static constexpr int64_t kSweepMs = 1000;
  // A claimed slot's sweeper has this long before another sidecar may take it over.
  static constexpr int64_t kClaimLeaseMs = 5000;

  /** Registers itself as `registry`'s store. start() connects; stop() before destruction. */
  PresenceRedis(PresenceRegistry& registry, const RedisAddress& address);
  ~PresenceRedis() override;
  PresenceRedis(const PresenceRedis&) = delete;
  PresenceRedis& operator=(const PresenceRedis&) = delete;

  /** Starts the thread and connects. */
  void start();
  /** Disconnects and joins the thread (entries then expire after kEntryTtlMs). */
  void stop();

  /** This process's instance id (random per start). */
  const std::string& instance() const { return instance_; }

  // PresenceStore: queued to the store's thread.
  void add_entry(const std::string& channel, const std::string& user,
                 const std::string& info_json) override;
  void remove_entry(const std::string& channel, const std::string& user) override;
  /** HGETALL of each channel's info hash (one read per channel, answered together). */
  void read(std::vector<std::string> channels, ReadDone done) override;

 private:
  struct Call;
  struct Read;
  struct ReadSlot;
  struct SweepRound;
  static void on_read_reply(redisAsyncContext*, void* reply, void* privdata);
  static void on_join_reply(redisAsyncContext*, void* reply, void* privdata);
  static void on_leave_reply(redisAsyncContext*, void* reply, void* privdata);
  static void on_claim_reply(redisAsyncContext*, void* reply, void* privdata);
  static void on_audit_reply(redisAsyncContext*, void* reply, void* privdata);
  static void on_sweep_reply(redisAsyncContext*, void* reply, void* privdata);
  static void on_slots_reply(redisAsyncContext*, void* reply, void* privdata);
  static void on_snapshot_reply(redisAsyncContext*, void* reply, void* privdata);
  static void on_version_reply(redisAsyncContext*, void* reply, void* privdata);
  static void on_refresh(evutil_socket_t, short, void* arg);
  static void on_sweep(evutil_socket_t, short, void* arg);
  static void on_pending_leaves(evutil_socket_t, short, void* arg);
  static void on_resubscribe(evutil_socket_t, short, void* arg);

  void join(const std::string& channel, const std::string& user, const std::string& info,
            bool restore);
  /** `waited`: the entry was in Redis and this leave waited for a reconnection. */
  void leave(const std::string& channel, const std::string& user, bool waited);
  /** The channel's members and notice number (presence_read.lua), for
   *  PresenceRegistry::apply_snapshot. */
  void read_snapshot(const std::string& channel, int attempt);
  /** Whether a notice numbered `version` is news, and whether it shows a gap. */
  void on_notice(const std::string& channel, uint64_t version, bool joined, const std::string& user,
                 const std::string& info);
  /** Sends the leaves that waited for Redis (on reconnection). */
  void send_pending_leaves();
  /** A leave that failed: sent again a refresh interval later, unless the user is back. */
  void retry_leave(const Call& call, bool stored);
  /** Sweeps one claimed slot (presence_sweep.lua); `round` collects its next due time. */
  void sweep_slot(int slot, const std::shared_ptr<SweepRound>& round);
  /** Tells comet:{presence}:slots that these slots have channels due within `due_in_ms`;
   *  `then` runs once the touch is answered, failed or could not be sent. */
  void touch_slots(const std::vector<int>& slots, std::function<void()> then = nullptr,
                   int64_t due_in_ms = kEntryTtlMs);
  /** EVALSHA of one script on `keys` (routed by the first; EVAL when Redis lost its
   *  script cache). `call` keeps what the reply is about. */
  void eval(int script, std::vector<std::string> keys, std::vector<std::string> argv,
            redisCallbackFn* callback, std::unique_ptr<Call> call);
  /** eval() of presence_join/leave.lua on `channel`'s six keys. */
  void eval_on_channel(int script, std::vector<std::string> argv, redisCallbackFn* callback,
                       std::unique_ptr<Call> call);
  void follow(const std::string& channel);
  /**
   * True when `r` is no usable script answer: lost connection, an error (logged), or
   * NOSCRIPT, after which the call is sent again with the script itself (taking `call`).
   */
  bool failed(std::unique_ptr<Call>& call, const redisReply* r, redisCallbackFn* callback);

  // RedisBackend::Listener
  void on_pubsub(std::string_view kind, std::string_view name, std::string_view payload) override;
  void on_subscriptions_lost(const std::vector<std::string>*) override;
  void on_subscriber_ready() override;
  void on_commands_ready() override;

  PresenceRegistry& registry_;
  RedisAddress address_;
  std::string instance_;
  event_base* base_ = nullptr;
  BridgeHealth health_;  // its own: presence never makes /healthz degraded
  std::unique_ptr<RedisBackend> redis_;
  std::unique_ptr<LoopMailbox> mailbox_;
  event* refresh_event_ = nullptr;
  event* sweep_event_ = nullptr;
  event* pending_event_ = nullptr;      // sends the leaves that waited, after a reconnection
  event* resubscribe_event_ = nullptr;  // on_subscriber_ready() after a loss
  std::thread thread_;
  bool started_ = false;
  struct Local {
    std::string info;
    bool stored = false;  // a join of it got an answer: the entry was in Redis
  };
  // This sidecar's members (channel -> user -> entry): what it refreshes and follows.
  std::unordered_map<std::string, std::unordered_map<std::string, Local>> local_;
  // Leaves not sent yet (Redis unreachable): channel -> user -> whether it was stored.
  std::unordered_map<std::string, std::unordered_map<std::string, bool>> pending_leaves_;
  // Per followed channel: the number of the last notice this sidecar's view holds, and
  // whether every notice up to it is in (a list read, then notices without a gap).
  struct Follow {
    uint64_t known = 0;
    bool synced = false;
  };
  std::unordered_map<std::string, Follow> follows_;
  // Notices' pub/sub channel name -> where its subscription is.
  enum class Subscription : uint8_t { kWanted, kSent, kConfirmed };
  std::unordered_map<std::string, Subscription> subscriptions_;
  std::string publish_;  // PUBLISH, or SPUBLISH on a Cluster (the scripts' notices)
  std::string shas_[5];
};

/** The presence Lua scripts (bridge/lua/presence_*.lua, embedded at build time). */
extern const char* const kPresenceJoinScript;
extern const char* const kPresenceLeaveScript;
extern const char* const kPresenceSweepScript;
extern const char* const kPresenceSlotsScript;
extern const char* const kPresenceReadScript;

}  // namespace comet
