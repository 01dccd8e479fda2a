// Long-poll, polling and JSONP: one request, one answer {"cursor":..,"messages":[..]}.
// The client sends the returned cursor with its next request; whatever was published
// in between is replayed from history, so nothing is lost between polls.

#include "http/response.h"
#include "server/session.h"
#include "transports/poll_answer.h"
#include "transports/poll_now.h"
#include "transports/subscription_set.h"
#include "transports/transports.h"
#include "util/clock.h"

namespace comet {
namespace {

class PollSession final : public Session {
 public:
  PollSession(ClientPort& port, std::string callback, std::string cors_headers, bool keep_alive)
      : Session(port, SessionKind::kPoll),
        subs_(port.worker(), *this),
        callback_(std::move(callback)),
        cors_headers_(std::move(cors_headers)),
        keep_alive_(keep_alive) {}

  SubscriptionSet& subs() { return subs_; }
  void set_private_until(int64_t ms) { private_until_ms_ = ms; }
  bool has_items() const { return !items_.empty(); }

  // One answer carries at most half of max-output-bytes of backlog; the cursor in it
  // says where the next poll goes on.
  bool can_take_more() override { return bytes_ <= config().max_output_bytes / 2; }

  void on_message(Subscription& sub, const MessagePtr& m) override {
    if (answered_) return;
    // A held poll whose authorization ran out (plus grace) answers with what it has:
    // nothing private goes out past that. Its cursor must not claim the withheld
    // messages (the hub has already moved the position past this one), so it is frozen
    // here, this channel just before `m`.
    if (private_until_ms_ != 0 && wall_clock_ms() - private_until_ms_ >= config().token_grace_ms) {
      port_.defer();
      private_until_ms_ = 0;
      expired_ = true;
      subs_.append_cursor_before(frozen_cursor_, sub, *m);
    }
    if (expired_) return;
    bytes_ += m->envelope.size();
    items_.push_back(Item{m, {}});
    // Answer at the end of this loop turn so messages published together leave together.
    // (While subscribing, start_poll answers by itself.)
    if (holding_ && syncing_ == 0) port_.defer();
  }

  void on_reset(Subscription& sub, ResetReason reason) override {
    if (answered_) return;
    std::string notice;
    append_reset_json(notice, sub, reason);
    items_.push_back(Item{nullptr, std::move(notice)});
    if (holding_ && syncing_ == 0) port_.defer();
  }

  /**
   * Nothing to answer with yet, or channels still syncing with Redis: wait for every
   * channel to be positioned, then for a message (wait=0: not) or the timeout.
   */
  void hold(bool wait, size_t syncing) {
    holding_ = true;
    wait_ = wait;
    syncing_ = syncing;
  }

  void on_ready(Subscription&) override {
    // Answer once every channel is positioned (only then is the cursor exact): now for a
    // poll that must not wait or already holds something to send. Retained messages
    // follow this call and defer the answer themselves.
    if (syncing_ > 0 && --syncing_ == 0 && (!wait_ || !items_.empty())) port_.defer();
  }

  void on_end_of_turn() override { answer(); }
  // Redis could not be read within the bound: 503 rather than a poll that never answers.
  void on_unavailable(Subscription&) override {
    unavailable_ = true;
    port_.defer();
  }
  void on_timeout() override { answer(); }  // the poll timeout: answer with no messages

  void on_input(evbuffer* input) override {
    // A pipelined next request waits in the buffer until this one is answered.
    if (evbuffer_get_length(input) > config().max_header_bytes)
      port_.close_now("too much pipelined input during a long-poll");
  }

  void on_shutdown() override { answer(); }
  bool answers_after_eof() const override { return true; }
  // A browser closing the page closes the held poll's connection: its presence leaves
  // after the grace from now, not from --poll-timeout. A client that only half-closed
  // still gets the answer; held longer than the grace, it has left by then and its next
  // poll joins again.
  void on_peer_closed() override { subs_.end_memberships(); }

  /** Writes the answer once; the connection then destroys this session. */
  void answer() {
    if (answered_) return;
    answered_ = true;
    // Unavailable unless every channel got ready meanwhile (in this same turn).
    if (unavailable_ && syncing_ > 0) {
      port_.write(http::error_response(
          503, "channel unavailable: the message store cannot be reached; retry", false,
          cors_headers_ + "Retry-After: 2\r\n"));
      port_.end_session(false);
      return;
    }
    std::string body;
    begin_poll_body(body, callback_);
    if (expired_)
      body += frozen_cursor_;
    else
      subs_.append_cursor(body);
    begin_poll_messages(body);
    for (size_t i = 0; i < items_.size(); ++i) {
      if (i != 0) body += ',';
      body += items_[i].message ? items_[i].message->envelope : items_[i].notice;
    }
    std::string members;  // presence channels: ,"members":{..}
    subs_.append_members_field(members);
    end_poll_body(body, callback_, members);
    std::string response;
    append_poll_response(response, body, callback_, cors_headers_, keep_alive_);
    port_.write(response);
    port_.end_session(keep_alive_);
  }

 private:
  struct Item {
    MessagePtr message;  // a message, or
    std::string notice;  // a reset notice
  };
  SubscriptionSet subs_;
  std::string callback_;
  std::string cors_headers_;
  bool keep_alive_;
  bool answered_ = false;
  bool unavailable_ = false;
  bool expired_ = false;
  bool holding_ = false;
  bool wait_ = true;
  size_t syncing_ = 0;
  size_t bytes_ = 0;
  int64_t private_until_ms_ = 0;  // wall clock; 0 = no private channel
  std::string frozen_cursor_;     // the cursor when delivery stopped at expiry
  std::vector<Item> items_;
};

// A polling client is gone between its requests; it stays a member at least this long
// after each answer (docs/protocol.md, "Presence": grace).
constexpr int64_t kPollMemberGraceMs = 5000;

bool parse_bool_param(const std::string* value, bool fallback) {
  if (value == nullptr) return fallback;
  return !(*value == "0" || *value == "false" || *value == "no");
}

}  // namespace

Refusal check_poll(const RequestContext& ctx) {
  const std::string* callback = ctx.query.get("callback");
  if (callback != nullptr && !is_valid_callback_name(*callback))
    return Refusal::bad_request("invalid callback name (a dotted JavaScript identifier, max 64)");
  return Refusal::none();
}

bool start_poll(RequestContext& ctx, const ChannelRequest& channels) {
  const bool keep_alive = ctx.keep_alive;
  const std::string* callback = ctx.query.get("callback");
  const bool wait = parse_bool_param(ctx.query.get("wait"), true);
  if (answer_poll_now(ctx, channels, callback ? *callback : std::string_view(), wait))
    return keep_alive;
  auto session = std::make_unique<PollSession>(ctx.port, callback ? *callback : std::string(),
                                               ctx.origin.cors_headers, keep_alive);
  PollSession& poll = *session;
  poll.set_private_until(ctx.private_until_ms);
  ctx.port.begin_session(std::move(session));
  for (size_t i = 0; i < channels.channels.size(); ++i)
    poll.subs().add(channels.channels[i], channels.from[i], &ctx.member);
  poll.subs().keep_memberships_for(kPollMemberGraceMs);
  poll.subs().replay_all();
  size_t syncing = 0;
  for (const auto& sub : poll.subs().subscriptions()) syncing += sub->pending ? 1 : 0;
  // A channel still syncing with Redis has no position yet: answering now would give
  // the client a made-up cursor for it, so wait until it is positioned.
  if (syncing == 0 && (poll.has_items() || !wait)) {
    poll.answer();
    return keep_alive;
  }
  poll.hold(wait, syncing);
  ctx.port.set_read_timeout(ReadTimeout::kPoll);
  return keep_alive;
}

}  // namespace comet
