#include "transports/presence_query.h"

#include <memory>
#include <mutex>
#include <vector>

#include "http/response.h"
#include "hub/cursor.h"
#include "presence/presence_link.h"
#include "presence/presence_notices.h"
#include "server/http_policy.h"
#include "server/session.h"
#include "transports/request_context.h"
#include "transports/transports.h"
#include "util/json_escape.h"

namespace comet {
namespace {

constexpr std::string_view kPresencePath = "/presence/";

bool answer_json(const RequestContext& ctx, const std::string& body) {
  ctx.port.write(http::ResponseHead(200)
                     .lines(ctx.origin.cors_headers)
                     .header("Content-Type", "application/json")
                     .header("Cache-Control", "no-store")
                     .with_body(body, ctx.keep_alive));
  return ctx.keep_alive;
}

std::string presence_body(const std::string& channel, const PresenceStore::Members& members) {
  std::string body = "{\"ch\":";
  append_json_string(body, channel);
  body += ",\"members\":[";
  for (size_t i = 0; i < members.size(); ++i) {
    if (i != 0) body += ',';
    append_member_json(body, members[i].first, members[i].second);
  }
  body += "],\"count\":" + std::to_string(members.size()) + "}\n";
  return body;
}

std::string occupancy_body(const std::vector<std::string>& channels,
                           const std::vector<PresenceStore::Members>& members,
                           const PresenceRegistry& registry) {
  std::string body = "{\"channels\":{";
  for (size_t i = 0; i < channels.size(); ++i) {
    if (i != 0) body += ',';
    append_json_string(body, channels[i]);
    body += ":{\"members\":" + std::to_string(members[i].size()) +
            ",\"connections\":" + std::to_string(registry.connection_count(channels[i])) + "}";
  }
  body += "}}\n";
  return body;
}

// With --redis the members of every sidecar are in Redis: the query waits for the
// store's read (on its own thread) and is answered on this worker's loop. The request is
// copied: the reader's own is reused for the next one.
class PresenceReadSession final : public Session {
 public:
  // What the store's thread may touch: whether the session still exists.
  struct Life {
    std::mutex mutex;
    bool alive = true;
  };

  PresenceReadSession(ClientPort& port, std::string cors_headers, bool keep_alive,
                      std::vector<std::string> channels, bool occupancy)
      : Session(port, SessionKind::kPublish),
        cors_headers_(std::move(cors_headers)),
        keep_alive_(keep_alive),
        channels_(std::move(channels)),
        occupancy_(occupancy) {}

  ~PresenceReadSession() override {
    std::lock_guard<std::mutex> lock(life_->mutex);
    life_->alive = false;
  }

  void start(PresenceStore& store, PresenceLink& link) {
    std::shared_ptr<Life> life = life_;
    PresenceReadSession* self = this;
    PresenceLink* to = &link;
    store.read(channels_, [life, self, to](bool ok, std::vector<PresenceStore::Members> members) {
      // On the store's thread: hand the result to this worker's loop while the session
      // (and so the worker and its link) still exists.
      std::lock_guard<std::mutex> lock(life->mutex);
      if (!life->alive) return;
      to->post_task([life, self, ok, members = std::move(members)]() mutable {
        {
          std::lock_guard<std::mutex> lock(life->mutex);
          if (!life->alive) return;
        }
        self->ok_ = ok;
        self->members_ = std::move(members);
        self->answered_ = true;
        self->port_.defer();
      });
    });
  }

  void on_end_of_turn() override {
    if (!answered_) return;
    answered_ = false;
    if (!ok_ || members_.size() != channels_.size()) {
      port_.write(http::error_response(503, "presence store (Redis) unreachable, retry",
                                       keep_alive_, cors_headers_ + "Retry-After: 2\r\n"));
      port_.end_session(keep_alive_);
      return;
    }
    const std::string body = occupancy_
                                 ? occupancy_body(channels_, members_, *worker().shared.presence)
                                 : presence_body(channels_[0], members_[0]);
    port_.write(http::ResponseHead(200)
                    .lines(cors_headers_)
                    .header("Content-Type", "application/json")
                    .header("Cache-Control", "no-store")
                    .with_body(body, keep_alive_));
    port_.end_session(keep_alive_);
  }

  // Pipelined requests wait in the socket until this one is answered.
  void on_input(evbuffer*) override { port_.pause_reading(); }
  bool answers_after_eof() const override { return true; }

 private:
  std::shared_ptr<Life> life_ = std::make_shared<Life>();
  std::string cors_headers_;
  bool keep_alive_;
  std::vector<std::string> channels_;
  bool occupancy_;
  bool answered_ = false;
  bool ok_ = false;
  std::vector<PresenceStore::Members> members_;
};

/** With a store: answers through a PresenceReadSession. False when there is none. */
bool read_from_store(RequestContext& ctx, std::vector<std::string> channels, bool occupancy) {
  PresenceRegistry* presence = ctx.worker.shared.presence.get();
  if (presence == nullptr || presence->store() == nullptr || ctx.worker.presence == nullptr)
    return false;
  auto session = std::make_unique<PresenceReadSession>(
      ctx.port, ctx.origin.cors_headers, ctx.keep_alive, std::move(channels), occupancy);
  PresenceReadSession& reading = *session;
  ctx.port.begin_session(std::move(session));
  reading.start(*presence->store(), *ctx.worker.presence);
  return true;
}

}  // namespace

bool is_presence_query_path(const std::string& path) {
  return path == "/occupancy" || path.compare(0, kPresencePath.size(), kPresencePath) == 0;
}

bool serve_presence_query(ClientPort& port, WorkerContext& worker, const http::Request& request,
                          const http::QueryParams& query) {
  const Config& config = worker.config();
  RequestContext ctx{
      port, worker, request, query, check_origin(config, request, false), may_keep_alive(request)};
  if (request.method != "GET") return ctx.refuse(405, "use GET", "Allow: GET\r\n");
  if (!ctx.origin.allowed) return ctx.refuse(403, "origin not allowed");
  // Who is online is the app's business, like publishing: the same policy guards both.
  const std::string why_not = publish_refusal(ctx);
  if (!why_not.empty())
    return ctx.refuse(config.publish_key.empty() ? 403 : 401,
                      "presence queries follow the publish policy: " + why_not);
  PresenceRegistry* presence = worker.shared.presence.get();
  const char* bad_name = "invalid channel name (1-128 characters of A-Z a-z 0-9 _ . : / = + -)";

  if (request.path != "/occupancy") {
    const std::string channel = request.path.substr(kPresencePath.size());
    if (!is_valid_channel_name(channel)) return ctx.refuse(400, bad_name);
    if (read_from_store(ctx, {channel}, false)) return true;
    std::string body = "{\"ch\":";
    append_json_string(body, channel);
    body += ",\"members\":";
    size_t count = 0;
    if (presence != nullptr) {
      presence->append_members_json(body, channel);
      count = presence->member_count(channel);
    } else {
      body += "[]";
    }
    body += ",\"count\":" + std::to_string(count) + "}\n";
    return answer_json(ctx, body);
  }

  const std::string* list = query.get("ch");
  if (list == nullptr) return ctx.refuse(400, "ch= names the channels (comma-separated)");
  const std::vector<std::string_view> names = http::split_list(*list, ',');
  if (names.empty()) return ctx.refuse(400, "ch= names the channels (comma-separated)");
  if (names.size() > config.max_channels)
    return ctx.refuse(
        400, "too many channels (max-channels is " + std::to_string(config.max_channels) + ")");
  std::vector<std::string> channels;
  for (const std::string_view name : names) {
    if (!is_valid_channel_name(name)) return ctx.refuse(400, bad_name);
    channels.emplace_back(name);
  }
  if (read_from_store(ctx, channels, true)) return true;
  std::string body = "{\"channels\":{";
  for (size_t i = 0; i < channels.size(); ++i) {
    if (i != 0) body += ',';
    append_json_string(body, channels[i]);
    const size_t members = presence != nullptr ? presence->member_count(channels[i]) : 0;
    const size_t connections = presence != nullptr ? presence->connection_count(channels[i]) : 0;
    body += ":{\"members\":" + std::to_string(members) +
            ",\"connections\":" + std::to_string(connections) + "}";
  }
  body += "}}\n";
  return answer_json(ctx, body);
}

}  // namespace comet
