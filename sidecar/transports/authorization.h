#pragma once
// The pipeline's authorization step (docs/protocol.md, "Private channels and
// authorization"): every private channel of a request must be covered by a valid token
// or allowed by the app (--auth-url) before the transport starts. Decided at once when
// it can be (public channels, tokens, cached answers); otherwise the connection waits in
// an AuthWaitSession for the app's answer.

#include <cstdint>
#include <string>
#include <vector>

#include "auth/auth_url_client.h"
#include "auth/token.h"
#include "transports/request_context.h"

namespace comet {

struct TransportRow;
struct ChannelRequest;

struct AuthDecision {
  enum class Kind : uint8_t { kAllowed, kRefused, kAsk };
  Kind kind = Kind::kAllowed;
  // kRefused: the answer (401, 403 or 503) and the channel it is about.
  int status = 0;
  std::string message;
  std::string channel;
  // kAllowed: when the private channels' authorization runs out (0 = none private).
  // kAsk: the limit set by the token so far (INT64_MAX = no token).
  int64_t private_until_ms = 0;
  // kAllowed: who the credentials name (presence); kAsk: what the token named so far.
  MemberIdentity member;
  // kAsk: the private channels no token covers, and the Cookie header to ask with.
  std::vector<std::string> to_ask;
  std::string cookie;

  static AuthDecision refused(int status, std::string message, std::string channel);
};

/**
 * Decides what can be decided without waiting. `embedded`: the answer runs in the page
 * that loaded it (JSONP, iframe, htmlfile), which changes whether cookies count.
 */
AuthDecision authorize_channels(const RequestContext& ctx, const std::vector<std::string>& channels,
                                bool embedded);

/** {"type":"auth-expired","grace":S}: what a client is told when its authorization ran out. */
std::string auth_expired_notice(const Config& config);

/** Completes a kAsk decision with the app's answer: kAllowed or kRefused. */
AuthDecision complete_with_answer(const AuthDecision& asked, const AuthAnswer& answer);

/**
 * The presence check of an authorization naming `who`: refused (403, naming the first
 * presence channel of `channels` `who` cannot be a member of) or kAllowed.
 */
AuthDecision check_presence(const std::vector<std::string>& channels, const MemberIdentity& who);

/**
 * The refusal of a subscription by `who` that would take a presence channel of `channels`
 * past --presence-max-members (403 naming it), or "" when none would be.
 */
std::string presence_full_error(WorkerContext& worker, const std::vector<std::string>& channels,
                                const MemberIdentity& who, std::string& channel);

/**
 * Runs the step for a transport row: true when the transport may start now
 * (ctx.private_until_ms set). Otherwise the request was answered (refused) or handed to
 * a session that waits for the app and then starts the transport itself; `result` is
 * then what the transport's start would have returned.
 */
bool authorize_request(const TransportRow& row, RequestContext& ctx, const ChannelRequest& channels,
                       bool embedded, bool& result);

}  // namespace comet
