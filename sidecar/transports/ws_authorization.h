#pragma once
// Private channels on one WebSocket (docs/protocol.md, "Private channels and
// authorization"): each `sub` of a private channel is authorized on its own (a refused
// channel gets an error, the socket stays open), credentials can be refreshed with the
// `auth` command, and subscriptions whose authorization ran out end after the grace
// period. Created only for sockets that present credentials or subscribe privately.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth_url_client.h"
#include "auth/token.h"
#include "hub/cursor.h"
#include "presence/presence_registry.h"
#include "server/worker_context.h"

namespace comet {

class WsChannelAuth {
 public:
  /** What the session does on this object's behalf. */
  class Host {
   public:
    virtual ~Host() = default;
    /** Subscribes `channel` now (it is authorized for `who`: a presence member). */
    virtual void grant(const std::string& channel, const std::optional<Position>& from,
                       const MemberIdentity& who) = 0;
    /** Unsubscribes `channel` (never called from inside a hub delivery). */
    virtual void revoke(const std::string& channel) = 0;
    virtual void send(const std::string& json) = 0;
    /** Asks for a call of run() at the end of this loop turn. */
    virtual void wake() = 0;
    /** Closes the socket with `code` once what was sent is written. */
    virtual void close(uint16_t code, std::string_view reason) = 0;
  };

  /** `token`: from the handshake ("" = none); `cookie`/`origin`: for --auth-url. */
  WsChannelAuth(WorkerContext& worker, Host& host, std::string_view token, std::string cookie,
                std::string origin);
  ~WsChannelAuth();

  /** A `sub` of a private channel: subscribed (host.grant) or refused, now or later. */
  void request(const std::string& channel, const std::optional<Position>& from);
  /** An `unsub`: forget the channel (and any pending question about it). */
  void forget(std::string_view channel);
  /**
   * The `auth` command: a new token, or (nullptr) ask the app again. A token or an
   * answer naming another user than the socket's (user_) is refused and the socket
   * closed (1008): its presence memberships are that user's.
   */
  void refresh(const std::string* token);
  /**
   * Before delivering a message of `channel`: false once its authorization is past the
   * grace period (the subscription is then revoked at the end of the loop turn).
   */
  bool may_deliver(std::string_view channel);
  /** Heartbeat / end of turn: expiry notices, revocations, the app's answers. */
  void run();

 private:
  struct Held {  // a private channel subscribed under an authorization that expires
    std::string channel;
    int64_t until_ms;
  };
  struct Waiting {  // a channel waiting for the app's answer
    std::string channel;
    std::optional<Position> from;
    bool subscribed;  // already subscribed: the answer renews or revokes it
  };

  void grant(const std::string& channel, const std::optional<Position>& from, int64_t until_ms,
             bool subscribed, const MemberIdentity& who);
  /** The token's user and info. */
  MemberIdentity token_identity() const { return MemberIdentity{token_.user, token_.info_json}; }
  void refuse(const std::string& channel, int status, const std::string& message, bool subscribed);
  void ask_app();
  void apply_answer(const AuthAnswer& answer, std::vector<Waiting> asked);
  void send_error(const char* code, int status, std::string_view channel, std::string_view message);
  Held* find_held(std::string_view channel);
  /**
   * Whether `user` (not "") may be this socket's user: fixes user_ at the first one
   * named; false for another one, after sending the error and closing the socket.
   */
  bool keeps_user(const std::string& user, std::string_view source);
  bool covered_by_token(std::string_view channel) const;

  WorkerContext& worker_;
  Host& host_;
  std::string token_error_;  // why the presented token is not valid ("" = valid or none)
  bool has_token_ = false;
  bool expiry_told_ = false;
  Grant token_;
  // The user this socket is for: the first one a valid token (sub) or the app (user)
  // named; "" until then. Never changes: memberships were made with it (Centrifugo's
  // rule too), so a refresh for someone else ends the socket instead.
  std::string user_;
  bool user_changed_ = false;  // refused a change: the socket is closing
  std::string cookie_;
  std::string origin_;
  std::vector<Held> held_;
  std::vector<Waiting> waiting_;  // not asked yet
  std::vector<Waiting> asked_;    // the question in flight is about these
  std::unique_ptr<AuthQuestion> question_;
  std::optional<AuthAnswer> answer_;  // arrived, applied in run()
};

}  // namespace comet
