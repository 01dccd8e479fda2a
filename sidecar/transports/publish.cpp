// POST /pub/<channel>: the HTTP publish path (also what PHP's fallback uses). The body
// is the message data; ?event=NAME names the event. Answers {"ch","id","epoch"}.

#include <openssl/crypto.h>

#include <deque>
#include <functional>
#include <memory>

#include "auth/access.h"
#include "http/response.h"
#include "server/session.h"
#include "transports/transport_table.h"
#include "transports/transports.h"
#include "util/json_escape.h"
#include "util/utf8.h"

namespace comet {
namespace {

std::string_view presented_key(const http::Request& request, const http::QueryParams& query) {
  if (const std::string* key = request.header("x-comet-key")) return *key;
  if (const std::string_view bearer = bearer_token(request); !bearer.empty()) return bearer;
  if (const std::string* key = query.get("key")) return *key;
  return {};
}

bool keys_match(std::string_view presented, const std::string& expected) {
  // Constant time, so response timing does not reveal how much of a guess was right.
  return presented.size() == expected.size() &&
         CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

// Headers that say a proxy relayed the request or a browser sent it: such a publish is
// never "local", whatever the TCP peer (every proxy connects from loopback).
bool relayed_or_from_browser(const http::Request& request) {
  for (const char* name : {"origin", "forwarded", "x-forwarded-for", "x-real-ip"})
    if (request.header(name) != nullptr) return true;
  return false;
}

std::string publish_answer(const PublishResult& result, bool keep_alive,
                           const std::string& cors_headers) {
  if (!result.ok)
    return http::error_response(503, "publish failed: " + result.error, keep_alive, cors_headers);
  std::string body = "{\"ch\":";
  append_json_string(body, result.channel);
  body += ",\"id\":" + std::to_string(result.id) + ",\"epoch\":";
  append_json_string(body, result.epoch);
  if (result.replicas >= 0) {
    body += ",\"replicas\":" + std::to_string(result.replicas);
    body += result.durable ? ",\"durable\":true" : ",\"durable\":false";
  }
  body += "}\n";
  return http::ResponseHead(200)
      .lines(cors_headers)
      .header("Content-Type", "application/json")
      .header("Cache-Control", "no-store")
      .with_body(body, keep_alive);
}

// The answer owed to one publish request. The bus settles it, at once (embedded bus,
// Redis unreachable) or later from its own callback, which may outlive the client.
struct PublishTicket {
  bool keep_alive = true;
  bool answered = false;
  bool ok = false;
  std::string cors_headers;
  std::string answer;
  std::function<void()> on_settled;  // set while a session waits for it

  void settle(std::string text, bool succeeded) {
    answer = std::move(text);
    ok = succeeded;
    answered = true;
    if (on_settled) on_settled();
  }
};
using TicketPtr = std::shared_ptr<PublishTicket>;

// Holds the connection while a publish is in flight (Redis runs the publish script).
// Publishes pipelined behind it on the same connection go to the bus at once (one Redis
// connection per worker, so Redis runs them in order) and are answered in order;
// anything else waits until all are answered.
class PublishWaitSession final : public Session {
 public:
  // Bounds what one connection keeps in flight (and the answers it holds).
  static constexpr size_t kMaxInFlight = 64;

  explicit PublishWaitSession(ClientPort& port) : Session(port, SessionKind::kPublish) {}
  ~PublishWaitSession() override {
    for (const TicketPtr& ticket : queue_) ticket->on_settled = nullptr;
  }

  /** Queues an answer, in order behind the others; written once it and those are settled. */
  void add(const TicketPtr& ticket) {
    queue_.push_back(ticket);
    // Answer from the connection's own deferred step, never from inside the bus's callback.
    ticket->on_settled = [this] { port_.defer(); };
    if (ticket->answered) port_.defer();
  }

  void on_end_of_turn() override {
    while (!queue_.empty() && queue_.front()->answered) {
      const PublishTicket& t = *queue_.front();
      if (t.ok) worker().counters().published.fetch_add(1, std::memory_order_relaxed);
      port_.write(t.answer);
      last_keep_alive_ = t.keep_alive;
      queue_.front()->on_settled = nullptr;
      queue_.pop_front();
    }
    if (queue_.empty()) port_.end_session(last_keep_alive_);
  }

  bool takes_more_requests() const override {
    return queue_.size() < kMaxInFlight && !queue_.empty() && queue_.back()->keep_alive;
  }

  bool accepts(const http::Request& request) const override {
    // Only what the router hands to the publish transport, with a well-formed query.
    const TransportRow* row = find_transport(request.path, config());
    if (row == nullptr || !row->is_publish || !method_allowed(*row, request.method)) return false;
    http::QueryParams query;
    return http::QueryParams::parse(request.query, query);
  }

  void take_request(const http::Request& request) override;

  void on_input(evbuffer*) override {
    // More than we take now: leave it in the socket until the answers are out.
    port_.pause_reading();
  }

  bool answers_after_eof() const override { return true; }
  bool answers_before_shutdown() const override { return true; }

 private:
  std::deque<TicketPtr> queue_;
  bool last_keep_alive_ = true;
};

// Checks and publishes one request. Its answer goes behind `queue` when publishes are
// already in flight on this connection, else straight out (or into a new queue when
// the bus answers later).
bool publish_one(RequestContext& ctx, PublishWaitSession* queue) {
  const http::Request& request = ctx.request;
  const bool keep_alive = ctx.keep_alive;
  const Config& config = ctx.config();
  auto fail = [&](int status, const std::string& why) {
    if (queue == nullptr) return ctx.refuse(status, why);
    auto ticket = std::make_shared<PublishTicket>();
    ticket->keep_alive = keep_alive;
    ticket->settle(http::error_response(status, why, keep_alive, ctx.origin.cors_headers), false);
    queue->add(ticket);
    return keep_alive;
  };
  if (!ctx.origin.allowed) return fail(403, "origin not allowed");
  const std::string why_not = publish_refusal(ctx);
  if (!why_not.empty()) return fail(config.publish_key.empty() ? 403 : 401, why_not);
  const std::string channel = request.path.substr(std::string_view("/pub/").size());
  if (!is_valid_channel_name(channel))
    return fail(400, "invalid channel name (1-128 characters of A-Z a-z 0-9 _ . : / = + -)");
  const std::string* event = ctx.query.get("event");
  if (event != nullptr && !is_valid_event_name(*event))
    return fail(400, "invalid event name (1-64 characters of A-Z a-z 0-9 _ - . :)");
  if (!is_valid_utf8(request.body)) return fail(400, "message data must be valid UTF-8");

  auto ticket = std::make_shared<PublishTicket>();
  ticket->keep_alive = keep_alive;
  ticket->cors_headers = ctx.origin.cors_headers;
  ctx.worker.bus.publish(
      channel, event ? *event : std::string(), request.body, [ticket](const PublishResult& result) {
        ticket->settle(publish_answer(result, ticket->keep_alive, ticket->cors_headers), result.ok);
      });
  if (queue != nullptr) {
    queue->add(ticket);
  } else if (ticket->answered) {
    // The common case on the embedded bus: answered before publish returned.
    if (ticket->ok) ctx.worker.counters().published.fetch_add(1, std::memory_order_relaxed);
    ctx.port.write(ticket->answer);
  } else {
    auto session = std::make_unique<PublishWaitSession>(ctx.port);
    session->add(ticket);
    ctx.port.begin_session(std::move(session));
  }
  return keep_alive;
}

void PublishWaitSession::take_request(const http::Request& request) {
  http::QueryParams query;
  http::QueryParams::parse(request.query, query);  // accepts() checked that it parses
  RequestContext ctx{port_,
                     worker(),
                     request,
                     query,
                     check_origin(config(), request, false),
                     may_keep_alive(request)};
  publish_one(ctx, this);
}

}  // namespace

std::string publish_refusal(const RequestContext& ctx) {
  const Config& config = ctx.config();
  if (!config.publish_key.empty()) {
    if (keys_match(presented_key(ctx.request, ctx.query), config.publish_key)) return "";
    return "publish key missing or wrong (X-Comet-Key header, Bearer token or key=)";
  }
  if (!ctx.port.on_publish_listener())
    return "publishing here needs --publish-key; without a key, publish on the publish "
           "listener (--publish-listen, default 127.0.0.1:8081)";
  if (!config.publish_from_any && !ctx.port.peer_is_loopback())
    return "keyless publishing is allowed from loopback peers only (--publish-from-any)";
  if (relayed_or_from_browser(ctx.request))
    return "a keyless publish must come straight from the app, not through a proxy or a "
           "browser (Origin, Forwarded, X-Forwarded-For or X-Real-IP present)";
  return "";
}

bool start_publish(RequestContext& ctx, const ChannelRequest&) { return publish_one(ctx, nullptr); }

}  // namespace comet
