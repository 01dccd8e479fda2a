// POST /pub/<channel>: the HTTP publish path (also what PHP's fallback uses). The body
// is the message data; ?event=NAME names the event. Answers {"ch","id","epoch"}.

#include <openssl/crypto.h>

#include "http/response.h"
#include "server/connection.h"
#include "server/http_policy.h"
#include "server/worker.h"
#include "transports/transports.h"
#include "util/json_escape.h"
#include "util/utf8.h"

namespace comet {
namespace {

bool is_valid_event_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string_view presented_key(const http::Request& request, const http::QueryParams& query) {
  if (const std::string* key = request.header("x-comet-key")) return *key;
  if (const std::string* auth = request.header("authorization")) {
    constexpr std::string_view kBearer = "Bearer ";
    if (auth->size() > kBearer.size() && auth->compare(0, kBearer.size(), kBearer) == 0)
      return std::string_view(*auth).substr(kBearer.size());
  }
  if (const std::string* key = query.get("key")) return *key;
  return {};
}

bool keys_match(std::string_view presented, const std::string& expected) {
  // Constant time, so response timing does not reveal how much of a guess was right.
  return presented.size() == expected.size() &&
         CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

}  // namespace

bool handle_publish(Connection& conn, const http::Request& request, const http::QueryParams& query) {
  const Config& config = conn.worker().config();
  const bool keep_alive = request.keep_alive;
  const OriginCheck origin = check_origin(config, request);
  auto fail = [&](int status, const std::string& why) {
    conn.write(http::error_response(status, why, keep_alive, origin.cors_headers));
    return keep_alive;
  };
  if (!origin.allowed) return fail(403, "origin not allowed");
  if (!config.publish_key.empty()) {
    if (!keys_match(presented_key(request, query), config.publish_key))
      return fail(401, "publish key missing or wrong (X-Comet-Key header, Bearer token or key=)");
  } else if (!config.publish_from_any && !conn.peer_is_loopback()) {
    return fail(403, "publishing is allowed from loopback only unless a publish key is configured");
  }
  const std::string channel = request.path.substr(std::string_view("/pub/").size());
  if (!is_valid_channel_name(channel))
    return fail(400, "invalid channel name (1-128 characters of A-Z a-z 0-9 _ . : / = + -)");
  const std::string* event = query.get("event");
  if (event != nullptr && !is_valid_event_name(*event))
    return fail(400, "invalid event name (1-64 characters of A-Z a-z 0-9 _ - . :)");
  if (!is_valid_utf8(request.body)) return fail(400, "message data must be valid UTF-8");

  const PublishResult result =
      conn.worker().shared().bus.publish(channel, event ? *event : std::string(), request.body);
  if (!result.ok) return fail(503, "publish failed: " + result.error);
  conn.worker().shared().counters.published.fetch_add(1, std::memory_order_relaxed);

  std::string body = "{\"ch\":";
  append_json_string(body, result.channel);
  body += ",\"id\":" + std::to_string(result.id) + ",\"epoch\":";
  append_json_string(body, result.epoch);
  body += "}\n";
  std::string out = http::ResponseHead(200)
                        .header("Content-Type", "application/json")
                        .header("Cache-Control", "no-store")
                        .with_body(body, keep_alive);
  if (!origin.cors_headers.empty()) out.insert(out.find("\r\n") + 2, origin.cors_headers);
  conn.write(out);
  return keep_alive;
}

}  // namespace comet
