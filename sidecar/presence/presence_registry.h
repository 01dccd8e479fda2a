#pragma once
// Who is in each presence channel of this sidecar (docs/protocol.md, "Presence"): one
// registry per process, shared by the workers. A member is a user id with its info;
// every subscription of that user counts as one connection of the member. The first
// connection makes the member join; when the last one ends the member leaves after
// the grace period, unless a connection of the same user comes back first.
//
// Thread-safe: a mutex guards the maps and is held only for map updates (and building
// a members list). Join/leave notices are posted to every attached Inbox (each
// worker's PresenceLink), under the lock, so each worker sees them in order.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/embedded_bus.h"
#include "hub/message.h"
#include "presence/presence_events.h"
#include "presence/presence_store.h"

namespace comet {

/** Who a subscription belongs to, for presence: the authorization's user and info. */
struct MemberIdentity {
  std::string user;       // token "sub" or auth-url "user"; "" = none
  std::string info_json;  // compact JSON object; "" = none ({} on the wire)
};

constexpr size_t kMaxMemberIdBytes = 128;
constexpr size_t kMaxMemberInfoBytes = 1024;
constexpr std::string_view kPresencePrefix = "presence:";

/** True for channels named "presence:...". */
inline bool is_presence_channel(std::string_view channel) {
  return channel.substr(0, kPresencePrefix.size()) == kPresencePrefix;
}

/**
 * Why `who` cannot be a member of a presence channel ("" when it can): no user id, a
 * user id over 128 bytes, info over 1 KiB or not a JSON object.
 */
std::string member_identity_error(const MemberIdentity& who);

class PresenceRegistry {
 public:
  /** `grace_ms`: --presence-grace (0 = leave at once). */
  explicit PresenceRegistry(int64_t grace_ms) : grace_ms_(grace_ms) {}
  PresenceRegistry(const PresenceRegistry&) = delete;
  PresenceRegistry& operator=(const PresenceRegistry&) = delete;

  /**
   * Makes `store` (not owned; it outlives the workers) the truth across sidecars: local
   * joins and leaves become store entries instead of notices and events, and the store
   * reports the transitions back. Call before the workers start.
   */
  void set_store(PresenceStore* store) { store_ = store; }
  /** The store, or nullptr (one sidecar). */
  PresenceStore* store() const { return store_; }

  /**
   * From the store: `user` joined (`joined`) or left `channel` across all sidecars.
   * Sends the notice to this sidecar's subscribers of the channel (ignored when it has
   * none). Callable from any thread.
   */
  void apply_remote(const std::string& channel, bool joined, const std::string& user,
                    const std::string& info_json);
  /**
   * From the store: the members of `channel` as read from it (after subscribing to its
   * notices, and again every few seconds). It replaces this sidecar's view of the other
   * members: one it did not know yet (or with other info) is announced with a join, one
   * that is gone with a leave (a leave missed while the store was unreachable). Never an
   * event: those come from the store's transitions only. Callable from any thread.
   */
  void apply_snapshot(const std::string& channel,
                      const std::vector<std::pair<std::string, std::string>>& members);
  /**
   * From the store: this sidecar's store call made a transition (the store decides each
   * once across sidecars): counts it and tells the event sink. Callable from any thread.
   */
  void report_event(PresenceEvent::Kind kind, const std::string& channel, const std::string& user,
                    const std::string& info_json);

  /** Registers a worker's inbox for notices; the registry does not own it. */
  void attach(Inbox* inbox);
  /** Unregisters it; nothing is posted to it after this returns. */
  void detach(Inbox* inbox);

  /**
   * A subscription of `who.user` to `channel` starts. The user's first connection makes
   * it join (notice + member_added, and channel_occupied for the channel's first
   * member); a connection within the grace after its last one ended cancels the leave
   * and sends nothing. The member's info is its first connection's until it leaves:
   * a later connection's info (another tab, a refreshed token) is ignored.
   */
  void connect(const std::string& channel, const MemberIdentity& who, int64_t now_ms);

  /**
   * One of `user`'s subscriptions to `channel` ended. At its last one the member leaves
   * at now_ms + grace (sweep() does it), at once when the grace is 0; `min_grace_ms`
   * raises the grace for this one (a poll's subscription).
   */
  void disconnect(const std::string& channel, const std::string& user, int64_t now_ms,
                  int64_t min_grace_ms = 0);

  /** Makes members whose grace ran out by `now_ms` leave. Cheap when none is waiting. */
  void sweep(int64_t now_ms);

  /**
   * A graceful stop without a store: every member leaves now, in its grace period or
   * not (member_removed, and channel_vacated at each channel's last), so the app hears
   * that this sidecar's members are gone. Call once the workers have stopped. With a
   * store it does nothing: the entries are left to expire there, so a client that
   * reconnects to another sidecar in time makes no leave (a rolling restart).
   */
  void leave_all(int64_t now_ms);

  /**
   * The {"type":"members","ch":..,"members":[..]} notice for `channel`, as a message
   * ready for every transport; built once per change of the channel's members and
   * shared. Never nullptr.
   */
  MessagePtr members_notice(const std::string& channel);

  /** Appends the JSON array of `channel`'s members: [{"id":..,"info":{..}},..]. */
  void append_members_json(std::string& out, const std::string& channel) const;

  /**
   * Members of `channel` (in their grace period included; with a store, of every
   * sidecar) and its connections on this sidecar.
   */
  size_t member_count(const std::string& channel) const;
  size_t connection_count(const std::string& channel) const;
  /**
   * Whether one more member (`user`, unless it is one already) would take `channel` past
   * `max_members` (--presence-max-members). Checked at authorization, so concurrent
   * subscriptions of new users may pass it by a few.
   */
  bool full_for(const std::string& channel, const std::string& user, size_t max_members) const;

  /** This sidecar's members of every channel (gauge comet_presence_members). */
  size_t total_members() const { return total_members_.load(std::memory_order_relaxed); }
  /** Events produced so far, by kind (comet_presence_events_total). */
  uint64_t events(PresenceEvent::Kind kind) const {
    return events_[kind].load(std::memory_order_relaxed);
  }
  int64_t grace_ms() const { return grace_ms_; }

 private:
  struct Member {
    std::string info_json;  // as given ("" = none)
    uint32_t connections = 0;
    int64_t leave_at_ms = 0;  // connections == 0: when the grace runs out
  };
  struct ChannelState {
    std::unordered_map<std::string, Member> members;  // this sidecar's
    // With a store: every sidecar's members (user -> info), as the store reported them.
    std::unordered_map<std::string, std::string> global;
    size_t connections = 0;
    MessagePtr members_cache;  // the members notice; reset on every change
  };

  void join(const std::string& channel, ChannelState& state, const std::string& user,
            const Member& member, int64_t now_ms);
  void leave(const std::string& channel, ChannelState& state, const std::string& user,
             int64_t now_ms);
  void emit(PresenceEvent::Kind kind, const std::string& channel, const std::string& user,
            const std::string& info_json);
  void post(const MessagePtr& notice);
  void append_members_locked(std::string& out, const std::string& channel) const;

  PresenceStore* store_ = nullptr;
  const int64_t grace_ms_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, ChannelState> channels_;
  std::vector<Inbox*> inboxes_;
  size_t waiting_ = 0;                    // members in their grace period
  std::atomic<bool> any_waiting_{false};  // waiting_ != 0, read without the lock
  std::atomic<size_t> total_members_{0};
  std::atomic<uint64_t> events_[4] = {};
};

/** Appends comet_presence_members and comet_presence_events_total{kind} (Prometheus). */
void append_presence_metrics(std::string& out, const PresenceRegistry& registry);

}  // namespace comet
