#pragma once
// One worker's slice of the hub: channel -> subscribers, plus each channel's bounded
// history. Single-threaded (owned by one worker's event loop); messages reach it
// through the worker's inbox in per-channel order.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hub/cursor.h"
#include "hub/message.h"

namespace comet {

class Channel;
class Subscriber;

/** Why a subscriber's position could not be honoured (sent to clients as "reset"). */
enum class ResetReason {
  kHistoryExpired,  // cursor older than the retained history: messages were lost
  kEpochChanged,    // the channel's sequence restarted (new epoch): ids are not comparable
};
const char* reset_reason_name(ResetReason reason);

/** One subscriber's membership in one channel. Owned by the subscriber; the hub keeps a pointer. */
struct Subscription {
  Subscriber* owner = nullptr;
  Channel* channel = nullptr;
  Position position;  // last id delivered (or skipped over) in channel->epoch()
  size_t slot = 0;    // index in the channel's subscriber list (for O(1) removal)
  // While the channel syncs with Redis the requested position waits in `position`
  // (has_from = false: start at the head) and nothing is delivered.
  bool pending = false;
  bool has_from = false;
  // Subscribed with replay_now = false and not replayed yet: live messages only go to
  // history meanwhile, so the replay delivers them after the older ones, in order.
  bool awaiting_replay = false;
  // Pending with a cursor ahead of what the source of truth held at one read: read once
  // more (a message may have been in flight); still ahead then means it lost messages.
  bool ahead_seen = false;
  // A notice (presence join/leave: id-less, never replayed) went by while this
  // subscription took nothing live (pending or awaiting_replay): its owner sends the
  // channel's current state instead once it is live again (SubscriptionSet).
  bool missed_notice = false;
};

/** Told when a channel gains its first or loses its last local subscriber (the Redis bridge). */
class ChannelObserver {
 public:
  virtual ~ChannelObserver() = default;
  virtual void on_first_subscriber(const std::string& channel) = 0;
  virtual void on_last_subscriber(const std::string& channel) = 0;
  /**
   * A cursor is ahead of what this worker holds of `channel` (in the same epoch): the
   * hub has begun a sync; read the channel from the source of truth again. False when
   * there is none to ask (the hub then takes the cursor as it is).
   */
  virtual bool reread(const std::string&) { return false; }
};

/**
 * What a connection implements to receive messages. Called from the worker's loop.
 * Implementations must not subscribe or unsubscribe from inside these calls (the hub may
 * be iterating the channel's subscriber list); defer such work to the end of the turn.
 */
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  /** One message; sub.position has already been advanced past it. */
  virtual void on_message(Subscription& sub, const MessagePtr& message) = 0;
  /** The client's position was lost; sub.position now points at the oldest retained message. */
  virtual void on_reset(Subscription& sub, ResetReason reason) = 0;
  /**
   * A subscription that waited for its channel to sync now has its real position
   * (its retained messages follow at once). Lets a transport announce the cursor.
   */
  virtual void on_ready(Subscription&) {}
  /**
   * The channel could not be read from its source of truth (Redis unreachable) within
   * the bound a subscriber waits: the subscription is still pending. The owner answers
   * (503, or an error for the channel) and drops it, at the end of the loop turn: not
   * from inside this call.
   */
  virtual void on_unavailable(Subscription&) {}
  /**
   * Asked before each replayed (not live) message: false pauses the replay (the
   * subscription keeps its position and collects nothing live meanwhile) until the
   * owner calls Hub::replay again, so a long backlog flows at the client's pace
   * instead of piling up in memory.
   */
  virtual bool can_take_more() { return true; }
};

class Channel {
 public:
  explicit Channel(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  const std::string& epoch() const { return epoch_; }
  uint64_t last_id() const { return last_id_; }
  /** The retained message with this id, or nullptr. */
  const Message* message_at(uint64_t id) const;
  /** Id of the oldest retained message, or last_id()+1 when none is retained. */
  uint64_t oldest_id() const { return history_.empty() ? last_id_ + 1 : history_.front()->id; }
  const std::deque<MessagePtr>& history() const { return history_; }
  size_t subscriber_count() const { return subscribers_.size(); }
  /** Current head as a position (what a new subscriber without a cursor starts from). */
  Position head() const { return Position{epoch_, last_id_}; }
  /** True between Hub::begin_sync and Hub::finish_sync. */
  bool syncing() const { return syncing_; }

 private:
  friend class Hub;
  std::string name_;
  std::string epoch_;
  uint64_t last_id_ = 0;
  bool syncing_ = false;
  std::deque<MessagePtr> history_;
  std::vector<Subscription*> subscribers_;
};

struct HubLimits {
  size_t history_size = 1000;        // messages kept per channel
  int64_t history_age_ms = 3600000;  // messages older than this are dropped
};

class Hub {
 public:
  explicit Hub(const HubLimits& limits) : limits_(limits) {}
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  /**
   * Adds `sub` (owner already set) to `channel`. With `from` == nullptr it starts at the
   * channel's head; otherwise at `from`, after calling sub.owner->on_reset (and moving
   * the position to the oldest retained message) when `from` cannot be honoured. With
   * `replay_now` the retained messages after the position are then delivered at once;
   * otherwise call replay() later (a transport subscribing several channels first
   * registers them all, so every cursor it writes covers every channel).
   * Not callable from inside Subscriber callbacks.
   */
  void subscribe(Subscription& sub, std::string_view channel, const Position* from,
                 bool replay_now = true);

  /**
   * Delivers the retained messages after sub.position through sub.owner->on_message.
   * Returns false when the owner paused it (can_take_more); call again to go on.
   */
  bool replay(Subscription& sub);

  /** Removes `sub` from its channel (no-op when not subscribed). Not callable from callbacks. */
  void unsubscribe(Subscription& sub);

  /**
   * Takes one published message: drops duplicates (id already seen in the same epoch),
   * appends id'd messages to history (count and age bounded) and hands the message to
   * every subscriber whose position is behind it. Id-less messages are delivered live only;
   * a notice that a paused subscription (pending, awaiting replay) cannot take marks it
   * (Subscription::missed_notice).
   */
  void publish(const MessagePtr& message);

  /**
   * Seeds a channel this worker does not know (no epoch yet) with its head from the
   * source of truth (the bus), so cursors can be judged. No-op when the channel has an epoch.
   */
  void adopt_head(std::string_view channel, const Position& head);

  /** Drops messages past the age bound and forgets channels with no history and no subscribers. */
  void sweep(int64_t now_ms);

  /** Reports first/last local subscribers of each channel to `observer` (may be nullptr). */
  void set_observer(ChannelObserver* observer) { observer_ = observer; }

  /**
   * Marks a channel as being (re)built from an outside source of truth (Redis): until
   * finish_sync, new subscriptions wait (pending) and are judged afterwards.
   */
  void begin_sync(std::string_view channel);

  /**
   * Ends a sync with what the source of truth holds: the channel's epoch, its head id
   * and its newest retained messages (oldest first). Messages the hub lacks are stored
   * and delivered; an epoch change resets subscribers; a hole between what the hub had
   * and `entries` resets the subscribers it affects. Pending subscriptions are then
   * positioned (reset if needed) and replayed. Returns true, leaving the channel
   * syncing and every subscription pending, when a pending cursor is ahead of the head
   * for the first time: read the channel once more. Still ahead at that second read,
   * the subscription alone is reset (epoch-changed) to the head.
   */
  bool finish_sync(std::string_view channel, const std::string& epoch, uint64_t head_id,
                   const std::vector<MessagePtr>& entries);

  /**
   * Whether the source of truth contradicts what this hub took in `epoch`: its head is
   * behind the hub's newest id, or its entry at that id (`entries` must reach back to
   * it) is another message. Publishing on would reuse delivered ids for other messages
   * (a promoted replica that missed writes): the channel needs a new epoch (fencing).
   * Only what this hub delivered counts: a client's cursor never fences a channel.
   */
  bool contradicted_by(std::string_view channel, const std::string& epoch, uint64_t head_id,
                       const std::vector<MessagePtr>& entries) const;

  /** Whether `m` has an id this hub took in its epoch, but is another message. */
  bool conflicts(const Message& m) const;

  /** Tells every pending subscription of `channel` that its sync cannot finish now. */
  void fail_pending(std::string_view channel);

  /** The channel, or nullptr when this worker has never seen it. */
  const Channel* find(std::string_view name) const;
  /**
   * The same, with history past the age bound dropped first: what a subscriber
   * positioned now would be judged against (the sessionless poll reads it).
   */
  const Channel* find_trimmed(std::string_view name);
  /** Whether channel state comes from an outside source of truth (Redis) that must be synced. */
  bool has_observer() const { return observer_ != nullptr; }

  size_t channel_count() const { return channels_.size(); }
  size_t subscription_count() const { return subscription_count_; }

 private:
  Channel& channel_for(std::string_view name);
  void trim_history(Channel& ch, int64_t now_ms);
  /** Subscribers continue at `start_id` of the new epoch (0: from its first message). */
  void start_new_epoch(Channel& ch, const std::string& epoch, uint64_t start_id);
  void position_subscriber(Subscription& sub, const Position* from);
  void reset_if_expired(Subscription& sub);
  void skip_to(Channel& ch, uint64_t id);

  HubLimits limits_;
  std::unordered_map<std::string, std::unique_ptr<Channel>> channels_;
  size_t subscription_count_ = 0;
  bool delivering_ = false;
  ChannelObserver* observer_ = nullptr;
};

}  // namespace comet
