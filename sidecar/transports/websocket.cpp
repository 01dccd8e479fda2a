// WebSocket pub/sub: many channels per socket. Commands are JSON text frames:
//   {"cmd":"sub","ch":"a" | ["a","b"],"since":"EPOCH.ID"}   {"cmd":"unsub","ch":...}
//   {"cmd":"ping"}   {"cmd":"auth","token":"..."} (private channels: ws_authorization.h)
// Messages go out as the shared envelope in one text frame each (compressed once and
// shared when permessage-deflate is on, docs/protocol.md); control answers carry a "type"
// ("subscribed", "unsubscribed", "pong", "reset", "error").

#include <rapidjson/document.h>

#include "auth/access.h"
#include "transports/channel_request.h"
#include "transports/subscription_set.h"
#include "transports/transports.h"
#include "transports/ws_authorization.h"
#include "transports/ws_session.h"
#include "util/json_escape.h"

namespace comet {
namespace {

class PubSubSession final : public WsSession, private WsChannelAuth::Host {
 public:
  PubSubSession(ClientPort& port, ws::DeflateAgreement deflate)
      : WsSession(port, SessionKind::kWebSocket, deflate), subs_(port.worker(), *this) {}

  /**
   * Keeps what the handshake presented for private channels. Only sockets that present
   * something (or subscribe privately later) pay for it.
   */
  void keep_credentials(const Credentials& credentials, const std::string* origin) {
    if (credentials.token.empty() && credentials.cookie.empty()) return;
    auth_ = std::make_unique<WsChannelAuth>(worker(), host(), credentials.token,
                                            std::string(credentials.cookie),
                                            origin != nullptr ? *origin : std::string());
  }

  /** Subscribes one channel and confirms it with its starting position, then replays. */
  void subscribe(const std::string& channel, const std::optional<Position>& from) {
    if (subs_.size() >= config().max_channels) {
      send_error("too many channels (max-channels is " + std::to_string(config().max_channels) +
                 ")");
      return;
    }
    if (is_private_channel(config(), channel)) {
      ensure_auth().request(channel, from);  // calls grant() once authorized
      return;
    }
    subscribe_now(channel, from);
  }

  void on_heartbeat() override {
    WsSession::on_heartbeat();
    if (auth_ != nullptr && !closing()) auth_->run();
  }

  void on_end_of_turn() override {
    if (unavailable_ != nullptr) drop_unavailable();
    if (auth_ != nullptr && !closing()) auth_->run();
  }

  void drop_unavailable() {
    std::unique_ptr<std::vector<std::string>> channels = std::move(unavailable_);
    for (const std::string& channel : *channels) {
      if (closing()) break;
      // Only a subscription still waiting: one that got ready in this same turn stays.
      const Subscription* sub = subs_.find(channel);
      if (sub == nullptr || !sub->pending) continue;
      std::string error = "{\"type\":\"error\",\"error\":\"unavailable\",\"ch\":";
      append_json_string(error, channel);
      error +=
          ",\"status\":503,\"message\":\"the message store cannot be reached; subscribe again "
          "later\"}";
      send_text(error);
      subs_.remove(channel);
    }
  }

  void on_ready(Subscription& sub) override { confirm(sub); }

  /** "subscribed", then (presence channels) the members notice. */
  void confirm(Subscription& sub) {
    send_subscribed(sub);
    subs_.announce_members(sub);
  }

  // Redis could not be read within the bound: the channel is answered with an error
  // (status 503: try again later) and dropped, at the end of the turn.
  void on_unavailable(Subscription& sub) override {
    if (unavailable_ == nullptr) unavailable_ = std::make_unique<std::vector<std::string>>();
    unavailable_->push_back(sub.channel->name());
    port_.defer();
  }

  void on_drain() override { subs_.replay_all(); }

  void on_message(Subscription& sub, const MessagePtr& m) override {
    if (closing() || !port_.check_output_limit()) return;
    if (auth_ != nullptr && !auth_->may_deliver(sub.channel->name())) return;
    // permessage-deflate: the frame compressed once for every deflate client (the first
    // delivery on any worker builds it), unless the message is short or incompressible.
    if (deflate_window_bits() != 0 && m->envelope.size() >= config().ws_deflate_min_bytes) {
      const std::string_view frame = m->ws_deflated_frame(deflate_window_bits());
      if (!frame.empty()) {
        port_.write_shared(m, frame);
        return;
      }
    }
    port_.write(std::string_view(reinterpret_cast<const char*>(m->ws_header), m->ws_header_len));
    port_.write_shared(m, m->envelope);
  }

 private:
  // WsChannelAuth::Host
  void grant(const std::string& channel, const std::optional<Position>& from,
             const MemberIdentity& who) override {
    if (!closing()) subscribe_now(channel, from, &who);
  }
  void revoke(const std::string& channel) override { subs_.remove(channel); }
  void send(const std::string& json) override {
    if (!closing()) send_text(json);
  }
  void wake() override { port_.defer(); }
  void close(uint16_t code, std::string_view reason) override { close_with(code, reason); }
  WsChannelAuth::Host& host() { return *this; }

  WsChannelAuth& ensure_auth() {
    if (auth_ == nullptr)
      auth_ = std::make_unique<WsChannelAuth>(worker(), host(), std::string_view(), std::string(),
                                              std::string());
    return *auth_;
  }

  void subscribe_now(const std::string& channel, const std::optional<Position>& from,
                     const MemberIdentity* who = nullptr) {
    if (subs_.size() >= config().max_channels) {
      send_error("too many channels (max-channels is " + std::to_string(config().max_channels) +
                 ")");
      return;
    }
    Subscription* sub = subs_.add(channel, from, who);
    if (sub == nullptr) return;  // already subscribed: keep the existing position
    // A subscription waiting for its channel to sync (Redis) is confirmed in on_ready.
    if (!sub->pending) confirm(*sub);
    subs_.replay(*sub);
  }

 public:
  void on_reset(Subscription& sub, ResetReason reason) override {
    std::string out;
    append_reset_json(out, sub, reason);
    send_text(out);
  }

 protected:
  void on_data(ws::Opcode op, std::string_view data) override {
    if (op != ws::Opcode::kText) {
      close_with(ws::kCloseUnsupported, "binary messages are not accepted");
      return;
    }
    rapidjson::Document doc;
    // Iterative: a message of 100,000 '[' must not recurse 100,000 deep (the stack).
    doc.Parse<rapidjson::kParseIterativeFlag>(data.data(), data.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("cmd") || !doc["cmd"].IsString()) {
      send_error("expected a JSON object with a \"cmd\" string");
      return;
    }
    const std::string_view cmd(doc["cmd"].GetString(), doc["cmd"].GetStringLength());
    if (cmd == "ping") {
      send_text("{\"type\":\"pong\"}");
      return;
    }
    if (cmd == "auth") {
      auto token = doc.FindMember("token");
      if (token != doc.MemberEnd() && !token->value.IsString()) {
        send_error("token must be a string");
        return;
      }
      const std::string text = token != doc.MemberEnd() ? token->value.GetString() : "";
      ensure_auth().refresh(token != doc.MemberEnd() ? &text : nullptr);
      return;
    }
    if (cmd != "sub" && cmd != "unsub") {
      send_error("unknown cmd (expected sub, unsub, auth or ping)");
      return;
    }
    std::vector<std::string> channels;
    if (!read_channels(doc, channels)) return;
    if (cmd == "unsub") {
      for (const std::string& ch : channels) {
        if (auth_ != nullptr) auth_->forget(ch);
        subs_.remove(ch);
        std::string out = "{\"type\":\"unsubscribed\",\"ch\":";
        append_json_string(out, ch);
        send_text(out + "}");
      }
      return;
    }
    std::optional<Position> since;
    if (doc.HasMember("since") && !doc["since"].IsNull()) {
      Position p;
      if (!doc["since"].IsString() ||
          !parse_position(
              std::string_view(doc["since"].GetString(), doc["since"].GetStringLength()), p)) {
        send_error(
            "since must be a position \"EPOCH.ID\" (the epoch and id of the last message seen)");
        return;
      }
      since = p;
    }
    for (const std::string& ch : channels) subscribe(ch, since);
  }

 private:
  bool read_channels(const rapidjson::Document& doc, std::vector<std::string>& out) {
    auto take = [&](const rapidjson::Value& v) {
      if (!v.IsString()) return false;
      std::string name(v.GetString(), v.GetStringLength());
      if (!is_valid_channel_name(name)) return false;
      out.push_back(std::move(name));
      return true;
    };
    bool ok = doc.HasMember("ch");
    if (ok && doc["ch"].IsArray()) {
      for (const auto& v : doc["ch"].GetArray()) ok = ok && take(v);
    } else if (ok) {
      ok = take(doc["ch"]);
    }
    if (!ok || out.empty()) {
      send_error(
          "ch must be a channel name or an array of them (1-128 of A-Z a-z 0-9 _ . : / = + -)");
      return false;
    }
    return true;
  }

  void send_subscribed(const Subscription& sub) {
    std::string out = "{\"type\":\"subscribed\",\"ch\":";
    append_json_string(out, sub.channel->name());
    out += ",\"epoch\":";
    append_json_string(out, sub.position.epoch);
    out += ",\"id\":" + std::to_string(sub.position.id) + "}";
    send_text(out);
  }

  void send_error(const std::string& message) {
    std::string out = "{\"type\":\"error\",\"error\":";
    append_json_string(out, message);
    send_text(out + "}");
  }

  SubscriptionSet subs_;
  std::unique_ptr<WsChannelAuth> auth_;  // private channels; null until needed
  // Channels whose sync failed: error + drop. Rare, so a pointer per socket, not a vector.
  std::unique_ptr<std::vector<std::string>> unavailable_;
};

}  // namespace

bool start_websocket(RequestContext& ctx, const ChannelRequest& channels) {
  // Channels in the query string (/ws?ch=a,b&cursor=...) let simple clients and load
  // tools subscribe without sending a command.
  const ws::DeflateAgreement deflate = accept_websocket(ctx);
  auto session = std::make_unique<PubSubSession>(ctx.port, deflate);
  PubSubSession& pubsub = *session;
  if (has_private_channels(ctx.config()))
    pubsub.keep_credentials(find_credentials(ctx.config(), ctx.request, ctx.query, false),
                            ctx.request.header("origin"));
  ctx.port.begin_session(std::move(session));
  for (size_t i = 0; i < channels.channels.size(); ++i)
    pubsub.subscribe(channels.channels[i], channels.from[i]);
  return true;
}

}  // namespace comet
