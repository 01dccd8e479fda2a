#pragma once
// What SSE and the legacy stream formats share: a response that stays open, written
// only once every channel is positioned (with Redis a channel may still be being read),
// so the first cursor it sends is exact and whatever is published after it is delivered;
// reset notices raised before that wait; replays follow the client's reading pace.

#include <memory>
#include <string>
#include <vector>

#include "server/session.h"
#include "transports/channel_request.h"
#include "transports/subscription_set.h"

namespace comet {

class StreamingSession : public Session {
 public:
  /** `head`: the response head (and whatever must directly follow it). */
  StreamingSession(ClientPort& port, SessionKind kind, std::string head);

  /**
   * Takes over the port (begin_session, no read timeout, heartbeats on), subscribes
   * every channel of `channels` and starts once they are positioned. `session` is this
   * session, handed over to the port. `who`: the authorization's user (presence).
   */
  static void open(std::unique_ptr<StreamingSession> session, const ChannelRequest& channels,
                   int64_t private_until_ms, const MemberIdentity& who);

  void on_ready(Subscription&) override { start_when_positioned(); }
  // Replays wait for the stream to start, then follow the client's reading pace.
  bool can_take_more() override { return started_ && Session::can_take_more(); }
  void on_drain() override { subs_.replay_all(); }
  void on_reset(Subscription& sub, ResetReason reason) override;
  void on_unavailable(Subscription&) override;
  void on_end_of_turn() override { refuse_if_unavailable(); }
  void on_input(evbuffer* input) override;

 protected:
  /**
   * Writes what follows the head (a cursor, an "open" notice) and the reset notices
   * raised before the start (`early`, JSON objects), in the order the format wants.
   */
  virtual void write_opening(const std::vector<std::string>& early) = 0;
  /** Writes one reset notice (a JSON object) in the format's framing. */
  virtual void write_notice(const std::string& json) = 0;

  /**
   * Called before each delivery and heartbeat: tells the client once its authorization
   * for private channels ran out, and false (the stream then ends) once the grace period
   * after that is over too: nothing private goes out past expiry plus grace.
   */
  bool authorization_holds(const Subscription* sub = nullptr, const Message* m = nullptr) {
    return private_ == nullptr || check_authorization(sub, m);
  }
  /**
   * The cursor a client should resume from: where delivery stopped when the stream
   * ended at expiry (the hub has moved positions past what was withheld), else now.
   */
  void append_resume_cursor(std::string& out) const;
  /** Writes the auth-expired notice (a JSON object) in the format's framing. */
  virtual void write_auth_expired(const std::string& json) { write_notice(json); }
  /** Ends the stream so the client reconnects (and presents fresh credentials). */
  virtual void end_stream() { port_.close_after_flush(); }

  bool started() const { return started_; }
  /**
   * A channel could not be read (Redis unreachable) before the stream started: answers
   * 503 and closes. True when it did (the session is done).
   */
  bool refuse_if_unavailable();
  SubscriptionSet& subs() { return subs_; }
  const SubscriptionSet& subs() const { return subs_; }

 private:
  void start_when_positioned();
  bool check_authorization(const Subscription* sub, const Message* m);

  SubscriptionSet subs_;
  bool started_ = false;
  bool unavailable_ = false;  // a channel's sync failed before the start: answer 503
  bool refused_ = false;      // answered 503: the stream never starts
  // Only streams with a private channel allocate it: a public stream pays one pointer.
  struct PrivateState {
    int64_t until_ms = 0;  // wall clock: when the authorization runs out
    bool expiry_told = false;
    bool ended = false;         // delivery stopped (expiry + grace)
    std::string frozen_cursor;  // the cursor when it stopped
  };
  std::unique_ptr<PrivateState> private_;
  std::string head_;                // written by start_when_positioned
  std::vector<std::string> early_;  // reset notices raised before the stream started
};

}  // namespace comet
