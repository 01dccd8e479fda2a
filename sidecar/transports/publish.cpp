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

std::string publish_answer(const PublishResult& result, bool keep_alive, const std::string& cors_headers) {
  if (!result.ok)
    return http::error_response(503, "publish failed: " + result.error, keep_alive, cors_headers);
  std::string body = "{\"ch\":";
  append_json_string(body, result.channel);
  body += ",\"id\":" + std::to_string(result.id) + ",\"epoch\":";
  append_json_string(body, result.epoch);
  body += "}\n";
  std::string out = http::ResponseHead(200)
                        .header("Content-Type", "application/json")
                        .header("Cache-Control", "no-store")
                        .with_body(body, keep_alive);
  if (!cors_headers.empty()) out.insert(out.find("\r\n") + 2, cors_headers);
  return out;
}

// Holds the connection while Redis runs the publish script. The bridge's callback may
// outlive the session (client gone), hence the shared `alive` flag.
class PublishWaitSession final : public Session {
 public:
  PublishWaitSession(Connection& conn, bool keep_alive, std::string cors_headers)
      : Session(conn, SessionKind::kPublish), keep_alive_(keep_alive), cors_headers_(std::move(cors_headers)) {}
  ~PublishWaitSession() override { *alive_ = false; }

  RedisBridge::PublishCallback callback() {
    return [alive = alive_, this](const PublishResult& result) {
      if (!*alive) return;
      result_ = result;
      answered_ = true;
      // Answer from the connection's own deferred step, not from inside hiredis.
      conn_.defer();
    };
  }

  void on_end_of_turn() override {
    if (!answered_) return;
    if (result_.ok) conn_.worker().shared().counters.published.fetch_add(1, std::memory_order_relaxed);
    conn_.write(publish_answer(result_, keep_alive_, cors_headers_));
    conn_.end_session(keep_alive_);
  }

  void on_input(evbuffer* input) override {
    if (evbuffer_get_length(input) > conn_.worker().config().max_header_bytes)
      conn_.close_now("too much pipelined input during a publish");
  }

  bool answers_after_eof() const override { return true; }

 private:
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool keep_alive_;
  std::string cors_headers_;
  bool answered_ = false;
  PublishResult result_;
};

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

  if (RedisBridge* bridge = conn.worker().bridge()) {
    auto session = std::make_unique<PublishWaitSession>(conn, keep_alive, origin.cors_headers);
    auto done = session->callback();
    conn.begin_session(std::move(session));
    bridge->publish(channel, event ? *event : std::string(), request.body, std::move(done));
    return keep_alive;
  }
  const PublishResult result =
      conn.worker().publish_embedded(channel, event ? *event : std::string(), request.body);
  if (result.ok) conn.worker().shared().counters.published.fetch_add(1, std::memory_order_relaxed);
  conn.write(publish_answer(result, keep_alive, origin.cors_headers));
  return keep_alive;
}

}  // namespace comet
