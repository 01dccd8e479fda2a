#include "transports/authorization.h"

#include <algorithm>
#include <limits>
#include <memory>

#include "auth/access.h"
#include "presence/presence_registry.h"
#include "server/session.h"
#include "transports/channel_request.h"
#include "transports/transport_table.h"
#include "util/clock.h"

namespace comet {
namespace {

constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();

std::string quoted(const std::string& channel) { return "'" + channel + "'"; }

// Holds a request whose private channels wait for the app's answer, then starts its
// transport (which takes the connection over) or refuses it. The request is copied:
// the reader's own is reused for the next one.
class AuthWaitSession final : public Session {
 public:
  AuthWaitSession(const TransportRow& row, const RequestContext& ctx,
                  const ChannelRequest& channels, AuthDecision decision)
      : Session(ctx.port, row.kind),
        row_(row),
        request_(ctx.request),
        query_(ctx.query),
        origin_(ctx.origin),
        keep_alive_(ctx.keep_alive),
        channels_(channels),
        decision_(std::move(decision)) {}

  void ask(const std::string& origin) {
    question_ = worker().auth_url->ask(decision_.cookie, origin, decision_.to_ask,
                                       [this](const AuthAnswer& answer) {
                                         answer_ = answer;
                                         answered_ = true;
                                         port_.defer();
                                       });
  }

  void on_end_of_turn() override {
    if (!answered_) return;
    answered_ = false;
    question_.reset();
    RequestContext ctx{port_, worker(), request_, query_, origin_, keep_alive_};
    const AuthDecision done = complete_with_answer(decision_, answer_);
    if (done.kind == AuthDecision::Kind::kRefused) {
      worker().counters().auth_refused.fetch_add(1, std::memory_order_relaxed);
      port_.end_session(ctx.refuse_channel(done.status, done.message, done.channel));
      return;
    }
    std::string full;
    const std::string error = presence_full_error(worker(), channels_.channels, done.member, full);
    if (!error.empty()) {
      worker().counters().auth_refused.fetch_add(1, std::memory_order_relaxed);
      port_.end_session(ctx.refuse_channel(403, error, full));
      return;
    }
    ctx.private_until_ms = done.private_until_ms;
    ctx.member = done.member;
    const bool keep_alive = row_.start(ctx, channels_);
    // A transport that answered at once (a poll with messages) took no session over.
    if (port_.serving(this)) port_.end_session(keep_alive);
  }

  // Pipelined bytes wait in the socket until the transport has started.
  void on_input(evbuffer*) override { port_.pause_reading(); }
  bool answers_after_eof() const override { return true; }

 private:
  const TransportRow& row_;
  http::Request request_;
  http::QueryParams query_;
  OriginCheck origin_;
  bool keep_alive_;
  bool answered_ = false;
  ChannelRequest channels_;
  AuthDecision decision_;
  AuthAnswer answer_;
  std::unique_ptr<AuthQuestion> question_;
};

}  // namespace

std::string auth_expired_notice(const Config& config) {
  return "{\"type\":\"auth-expired\",\"grace\":" + std::to_string(config.token_grace_ms / 1000) +
         "}";
}

AuthDecision AuthDecision::refused(int status, std::string message, std::string channel) {
  AuthDecision d;
  d.kind = Kind::kRefused;
  d.status = status;
  d.message = std::move(message);
  d.channel = std::move(channel);
  return d;
}

AuthDecision authorize_channels(const RequestContext& ctx, const std::vector<std::string>& channels,
                                bool embedded) {
  const Config& config = ctx.config();
  AuthDecision decision;
  if (!has_private_channels(config)) return decision;
  std::vector<std::string> privates;
  for (const std::string& ch : channels)
    if (is_private_channel(config, ch)) privates.push_back(ch);
  if (privates.empty()) return decision;

  const Credentials credentials = find_credentials(config, ctx.request, ctx.query, embedded);
  int64_t until = kNoLimit;
  Grant grant;
  if (!credentials.token.empty()) {
    TokenCheck check = verify_token(credentials.token, config.token_secret, wall_clock_ms());
    if (!check.ok)
      return AuthDecision::refused(
          403, "not authorized for channel " + quoted(privates[0]) + ": " + check.error,
          privates[0]);
    grant = std::move(check.grant);
    until = grant.expires_ms;
  }
  // Within the clock-skew allowance a token may have expired already; past the grace
  // period it would end at once, so it is refused as expired.
  if (until != kNoLimit && wall_clock_ms() - until >= config.token_grace_ms)
    return AuthDecision::refused(
        403, "not authorized for channel " + quoted(privates[0]) + ": token expired", privates[0]);
  std::vector<std::string> uncovered;
  for (const std::string& ch : privates)
    if (!grant.covers(ch)) uncovered.push_back(ch);
  if (uncovered.empty()) {
    decision = check_presence(privates, MemberIdentity{grant.user, grant.info_json});
    decision.private_until_ms = until;
    return decision;
  }
  if (ctx.worker.auth_url != nullptr && !credentials.cookie.empty()) {
    decision.kind = AuthDecision::Kind::kAsk;
    decision.private_until_ms = until;
    decision.member = MemberIdentity{grant.user, grant.info_json};
    // Presence channels the token covers are checked with the token's user now; the
    // ones the app is asked about, with the app's answer.
    std::vector<std::string> covered;
    for (const std::string& ch : privates)
      if (grant.covers(ch)) covered.push_back(ch);
    if (!covered.empty()) {
      AuthDecision presence = check_presence(covered, decision.member);
      if (presence.kind == AuthDecision::Kind::kRefused) return presence;
    }
    decision.cookie.assign(credentials.cookie);
    decision.to_ask = std::move(uncovered);
    AuthAnswer cached;
    if (ctx.worker.auth_url->lookup(decision.cookie, decision.to_ask, cached))
      return complete_with_answer(decision, cached);
    return decision;
  }
  if (credentials.token.empty()) {
    std::string how = "a token (token=, Authorization: Bearer or a comet_token cookie)";
    if (!config.auth_url.empty()) how += " or a session cookie for the app";
    if (ctx.request.header("cookie") != nullptr && !cookies_count(config, ctx.request, embedded))
      how += "; cookies count only from origins listed in --allowed-origins";
    return AuthDecision::refused(401, "private channel " + quoted(uncovered[0]) + " needs " + how,
                                 uncovered[0]);
  }
  return AuthDecision::refused(
      403, "not authorized for channel " + quoted(uncovered[0]) + ": the token does not cover it",
      uncovered[0]);
}

AuthDecision complete_with_answer(const AuthDecision& asked, const AuthAnswer& answer) {
  const std::string& first = asked.to_ask.empty() ? std::string() : asked.to_ask[0];
  switch (answer.outcome) {
    case AuthAnswer::Outcome::kBusy:
      return AuthDecision::refused(503, "authorization busy, retry later: " + answer.error, first);
    case AuthAnswer::Outcome::kFailed:
      return AuthDecision::refused(
          403, "not authorized for channel " + quoted(first) + ": " + answer.error, first);
    case AuthAnswer::Outcome::kAnswered:
      break;
  }
  for (const std::string& ch : asked.to_ask)
    if (!answer.allows(ch))
      return AuthDecision::refused(
          403, "not authorized for channel " + quoted(ch) + ": the app refused it", ch);
  // The token's user (when it named one) wins; the app's otherwise.
  MemberIdentity who = asked.member;
  if (who.user.empty()) who = MemberIdentity{answer.user, answer.info_json};
  std::vector<std::string> presence_channels;
  for (const std::string& ch : asked.to_ask)
    if (is_presence_channel(ch)) presence_channels.push_back(ch);
  AuthDecision decision = check_presence(presence_channels, who);
  if (decision.kind == AuthDecision::Kind::kRefused) return decision;
  decision.private_until_ms = std::min(asked.private_until_ms, answer.expires_ms);
  decision.member = std::move(who);
  return decision;
}

AuthDecision check_presence(const std::vector<std::string>& channels, const MemberIdentity& who) {
  AuthDecision decision;
  for (const std::string& ch : channels) {
    if (!is_presence_channel(ch)) continue;
    const std::string error = member_identity_error(who);
    if (!error.empty()) return AuthDecision::refused(403, error, ch);
    break;
  }
  decision.member = who;
  return decision;
}

std::string presence_full_error(WorkerContext& worker, const std::vector<std::string>& channels,
                                const MemberIdentity& who, std::string& channel) {
  const PresenceRegistry* presence = worker.shared.presence.get();
  if (presence == nullptr || who.user.empty()) return "";
  const size_t max_members = worker.config().presence_max_members;
  for (const std::string& ch : channels) {
    if (!is_presence_channel(ch) || !presence->full_for(ch, who.user, max_members)) continue;
    channel = ch;
    return "presence channel " + quoted(ch) + " is full (" + std::to_string(max_members) +
           " members, --presence-max-members)";
  }
  return "";
}

bool authorize_request(const TransportRow& row, RequestContext& ctx, const ChannelRequest& channels,
                       bool embedded, bool& result) {
  AuthDecision decision = authorize_channels(ctx, channels.channels, embedded);
  switch (decision.kind) {
    case AuthDecision::Kind::kAllowed: {
      std::string full;
      const std::string error =
          presence_full_error(ctx.worker, channels.channels, decision.member, full);
      if (!error.empty()) {
        ctx.worker.counters().auth_refused.fetch_add(1, std::memory_order_relaxed);
        result = ctx.refuse_channel(403, error, full);
        return false;
      }
      ctx.private_until_ms = decision.private_until_ms;
      ctx.member = std::move(decision.member);
      return true;
    }
    case AuthDecision::Kind::kRefused:
      ctx.worker.counters().auth_refused.fetch_add(1, std::memory_order_relaxed);
      result = ctx.refuse_channel(decision.status, decision.message, decision.channel);
      return false;
    case AuthDecision::Kind::kAsk:
      break;
  }
  const std::string* origin = ctx.request.header("origin");
  auto session = std::make_unique<AuthWaitSession>(row, ctx, channels, std::move(decision));
  AuthWaitSession& waiting = *session;
  ctx.port.begin_session(std::move(session));
  waiting.ask(origin != nullptr ? *origin : std::string());
  result = true;
  return false;
}

}  // namespace comet
