// POST /pub/<channel>: the HTTP publish path (also what PHP's fallback uses). The body
// is the message data; ?event=NAME names the event. Answers {"ch","id","epoch"}.

#include <openssl/crypto.h>

#include <deque>
#include <memory>

#include "http/query.h"
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

std::string publish_answer(const PublishResult& result, bool keep_alive,
                           const std::string& cors_headers) {
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

// Holds the connection while Redis runs the publish script. Publishes pipelined behind it
// on the same connection go to Redis at once (one connection per worker, so Redis runs
// them in order) and are answered in order; anything else waits until all are answered.
// The bridge's callbacks may outlive the session (client gone), hence `alive`.
class PublishWaitSession final : public Session {
 public:
  // Bounds what one connection keeps in flight (and the answers it holds).
  static constexpr size_t kMaxInFlight = 64;

  explicit PublishWaitSession(Connection& conn) : Session(conn, SessionKind::kPublish) {}
  ~PublishWaitSession() override { *alive_ = false; }

  /** Queues a publish sent to Redis; the callback answers it. */
  RedisBridge::PublishCallback add_pending(bool keep_alive, std::string cors_headers) {
    auto entry = std::make_shared<Entry>();
    entry->keep_alive = keep_alive;
    entry->cors_headers = std::move(cors_headers);
    queue_.push_back(entry);
    return [alive = alive_, entry, this](const PublishResult& result) {
      if (!*alive) return;
      entry->answer = publish_answer(result, entry->keep_alive, entry->cors_headers);
      entry->ok = result.ok;
      entry->answered = true;
      // Answer from the connection's own deferred step, not from inside hiredis.
      conn_.defer();
    };
  }

  /** Queues an answer known at once (a refused publish), in order behind the others. */
  void add_answered(std::string answer, bool keep_alive) {
    auto entry = std::make_shared<Entry>();
    entry->keep_alive = keep_alive;
    entry->answer = std::move(answer);
    entry->answered = true;
    queue_.push_back(entry);
    conn_.defer();
  }

  void on_end_of_turn() override {
    while (!queue_.empty() && queue_.front()->answered) {
      const Entry& e = *queue_.front();
      if (e.ok) conn_.worker().shared().counters.published.fetch_add(1, std::memory_order_relaxed);
      conn_.write(e.answer);
      last_keep_alive_ = e.keep_alive;
      queue_.pop_front();
    }
    if (queue_.empty()) conn_.end_session(last_keep_alive_);
  }

  bool takes_more_requests() const override {
    return queue_.size() < kMaxInFlight && !queue_.empty() && queue_.back()->keep_alive;
  }

  bool accepts(const http::Request& request) const override {
    // Only what route_request hands to handle_publish and handle_publish answers
    // through this queue: POST/PUT to /pub/ with a well-formed query.
    if (request.path.rfind("/pub/", 0) != 0) return false;
    if (request.method != "POST" && request.method != "PUT") return false;
    http::QueryParams query;
    return http::QueryParams::parse(request.query, query);
  }

  void on_input(evbuffer*) override {
    // More than we take now: leave it in the socket until the answers are out.
    conn_.pause_reading();
  }

  bool answers_after_eof() const override { return true; }

 private:
  struct Entry {
    bool keep_alive = true;
    bool answered = false;
    bool ok = false;
    std::string cors_headers;
    std::string answer;
  };
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::deque<std::shared_ptr<Entry>> queue_;
  bool last_keep_alive_ = true;
};

}  // namespace

bool handle_publish(Connection& conn, const http::Request& request,
                    const http::QueryParams& query) {
  const Config& config = conn.worker().config();
  const bool keep_alive = request.keep_alive;
  const OriginCheck origin = check_origin(config, request);
  // Publishes pipelined behind one still in Redis are answered in order through it.
  auto* waiting = dynamic_cast<PublishWaitSession*>(conn.session());
  auto fail = [&](int status, const std::string& why) {
    std::string answer = http::error_response(status, why, keep_alive, origin.cors_headers);
    if (waiting != nullptr)
      waiting->add_answered(std::move(answer), keep_alive);
    else
      conn.write(answer);
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
    if (waiting == nullptr) {
      auto session = std::make_unique<PublishWaitSession>(conn);
      waiting = session.get();
      conn.begin_session(std::move(session));
    }
    bridge->publish(channel, event ? *event : std::string(), request.body,
                    waiting->add_pending(keep_alive, origin.cors_headers));
    return keep_alive;
  }
  const PublishResult result =
      conn.worker().publish_embedded(channel, event ? *event : std::string(), request.body);
  if (result.ok) conn.worker().shared().counters.published.fetch_add(1, std::memory_order_relaxed);
  conn.write(publish_answer(result, keep_alive, origin.cors_headers));
  return keep_alive;
}

}  // namespace comet
