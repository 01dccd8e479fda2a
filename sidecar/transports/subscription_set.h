#pragma once
// The channels one connection is subscribed to, with their positions. Used by every
// subscribing transport; unsubscribes everything when destroyed.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub.h"
#include "presence/presence_registry.h"
#include "server/worker_context.h"

namespace comet {

class SubscriptionSet {
 public:
  SubscriptionSet(WorkerContext& worker, Subscriber& owner) : worker_(worker), owner_(owner) {}
  ~SubscriptionSet();
  SubscriptionSet(const SubscriptionSet&) = delete;
  SubscriptionSet& operator=(const SubscriptionSet&) = delete;

  /**
   * Subscribes without replaying (resets are reported at once). Returns the
   * subscription, or nullptr when already subscribed to `channel`. For a presence
   * channel, `who` (the authorization's user, checked by the authorization step) makes
   * the connection a member until the subscription ends (docs/protocol.md, "Presence").
   */
  Subscription* add(const std::string& channel, const std::optional<Position>& from,
                    const MemberIdentity* who = nullptr);
  /**
   * Hands the owner the {"type":"members"} notice of `sub`'s channel through
   * on_message, when this set is a member there. Call once the subscription started
   * (after "subscribed", after a stream's opening). Not from inside a hub delivery.
   * Once a set has announced, replay() and replay_all() announce again for a
   * subscription that missed a join/leave notice while paused (Subscription::
   * missed_notice), when its replay completes.
   */
  void announce_members(Subscription& sub);
  /** The same for every subscription. */
  void announce_members();
  /**
   * Appends ,"members":{"<ch>":[..],..} for the presence channels this set is a member
   * of (what a /poll answer carries); nothing when there is none.
   */
  void append_members_field(std::string& out) const;
  /**
   * Replays retained messages for every subscription (call after all add()s), and goes
   * on with paused replays when called again. Returns false while one is still paused.
   */
  bool replay_all();
  /** Replays retained messages for one subscription; false when paused. */
  bool replay(Subscription& sub);
  /** The subscription to `channel`, or nullptr. */
  const Subscription* find(std::string_view channel) const;
  /** Unsubscribes one channel; false when it was not subscribed. Not from a hub callback. */
  bool remove(std::string_view channel);
  size_t size() const { return subs_.size(); }
  /**
   * The presence memberships of this set stay at least `ms` after it ends, whatever
   * --presence-grace says: a poll's set ends with every answer, and its client is back
   * with the next request (without this, grace 0 would make every poll a leave and a
   * join, each answering the other pollers' held requests).
   */
  void keep_memberships_for(int64_t ms);
  /**
   * Ends this set's presence memberships now (their grace starts) while the
   * subscriptions go on: the client went away but an answer is still owed.
   */
  void end_memberships();
  /** False while some channel is still being read from Redis (its position is unknown). */
  bool all_positioned() const;
  const std::vector<std::unique_ptr<Subscription>>& subscriptions() const { return subs_; }

  /** Appends the cursor covering every channel ("a@E.5,b@E.2"). */
  void append_cursor(std::string& out) const;
  /**
   * The same, but `sub`'s channel just before `withheld` (a message the hub counted as
   * delivered that the session held back): the client resumes with it.
   */
  void append_cursor_before(std::string& out, const Subscription& sub,
                            const Message& withheld) const;

 private:
  void unsubscribe(Subscription& sub);

  /** announce_members(sub) when `sub` is live again after missing a notice. */
  void resend_missed_members(Subscription& sub);

  /** The membership of `channel`, or nullptr. */
  const std::string* member_user(std::string_view channel) const;

  WorkerContext& worker_;
  Subscriber& owner_;
  std::vector<std::unique_ptr<Subscription>> subs_;
  // Presence channels this connection is a member of, with the user it counts for.
  // Only connections on presence channels allocate it.
  struct Membership {
    std::string channel;
    std::string user;
    int64_t min_grace_ms = 0;  // the least time the member stays after this ends
    bool ended = false;        // end_memberships: disconnected already
  };
  void end_membership(Membership& m);
  std::unique_ptr<std::vector<Membership>> memberships_;
  // The owner sends members notices (streams, WebSocket); a poll's answers carry the
  // list in "members" instead, so it is never sent one.
  bool announces_members_ = false;
};

/** Appends a reset notice object: {"type":"reset","ch":..,"reason":..,"epoch":..,"id":..}. */
void append_reset_json(std::string& out, const Subscription& sub, ResetReason reason);

}  // namespace comet
