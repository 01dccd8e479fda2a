#pragma once
// One request on its way through the transport pipeline (transports/pipeline.h): what
// every transport's check and start functions get.

#include <cstdint>
#include <string>
#include <string_view>

#include "http/query.h"
#include "http/request.h"
#include "presence/presence_registry.h"
#include "server/client_port.h"
#include "server/http_policy.h"
#include "server/worker_context.h"

namespace comet {

struct RequestContext {
  ClientPort& port;
  WorkerContext& worker;
  const http::Request& request;
  const http::QueryParams& query;
  OriginCheck origin;  // filled by the pipeline's first step
  bool keep_alive;     // false on endpoints that close after an error (upgrades)
  // Set by the authorization step: when the private channels' authorization runs out
  // (wall clock ms); 0 = the request has no private channel.
  int64_t private_until_ms = 0;
  // Set by the authorization step: the user (and info) of its token or app answer;
  // what makes a subscription to a presence channel a member.
  MemberIdentity member{};

  const Config& config() const { return worker.config(); }

  /**
   * Writes an error answer ({"error":..,"status":..}) carrying this request's CORS
   * headers and `extra_headers`. Returns keep_alive, what a transport's start returns.
   */
  bool refuse(int status, std::string_view why, std::string_view extra_headers = {}) const;
  /** A refusal about one private channel: the body also names it ("ch"). */
  bool refuse_channel(int status, std::string_view why, std::string_view channel) const;
};

/**
 * Whether an answer to `request` may keep the connection open: not after a request
 * that carried Upgrade, since the connection closes after any refused upgrade (what
 * the client sends next may already be the other protocol).
 */
inline bool may_keep_alive(const http::Request& request) {
  return request.keep_alive && !request.upgrade;
}

/** A transport's verdict on its own query parameters: status 0 = acceptable. */
struct Refusal {
  int status = 0;
  std::string message;
  const char* extra_headers = "";

  static Refusal none() { return {}; }
  static Refusal bad_request(std::string message) { return {400, std::move(message), ""}; }
};

}  // namespace comet
