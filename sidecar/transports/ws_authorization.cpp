#include "transports/ws_authorization.h"

#include <algorithm>

#include "transports/authorization.h"
#include "util/clock.h"
#include "util/json_escape.h"
#include "ws/frame_codec.h"

namespace comet {

WsChannelAuth::WsChannelAuth(WorkerContext& worker, Host& host, std::string_view token,
                             std::string cookie, std::string origin)
    : worker_(worker), host_(host), cookie_(std::move(cookie)), origin_(std::move(origin)) {
  if (token.empty()) return;
  TokenCheck check = verify_token(token, worker_.config().token_secret, wall_clock_ms());
  if (check.ok) {
    has_token_ = true;
    token_ = std::move(check.grant);
    user_ = token_.user;
  } else {
    token_error_ = check.error;
  }
}

WsChannelAuth::~WsChannelAuth() = default;

bool WsChannelAuth::covered_by_token(std::string_view channel) const {
  return has_token_ && token_.covers(channel);
}

WsChannelAuth::Held* WsChannelAuth::find_held(std::string_view channel) {
  for (Held& h : held_)
    if (h.channel == channel) return &h;
  return nullptr;
}

void WsChannelAuth::request(const std::string& channel, const std::optional<Position>& from) {
  if (find_held(channel) != nullptr) {
    host_.grant(channel, from, token_identity());  // already subscribed: keeps its position
    return;
  }
  const Config& config = worker_.config();
  if (covered_by_token(channel)) {
    if (wall_clock_ms() - token_.expires_ms >= config.token_grace_ms) {
      refuse(channel, 403, "not authorized for channel '" + channel + "': token expired", false);
      return;
    }
    if (is_presence_channel(channel)) {
      const std::string error = member_identity_error(token_identity());
      if (!error.empty()) {
        refuse(channel, 403, error, false);
        return;
      }
    }
    grant(channel, from, token_.expires_ms, false, token_identity());
    return;
  }
  if (worker_.auth_url != nullptr && !cookie_.empty()) {
    AuthAnswer cached;
    if (worker_.auth_url->lookup(cookie_, {channel}, cached)) {
      apply_answer(cached, {Waiting{channel, from, false}});
      return;
    }
    waiting_.push_back(Waiting{channel, from, false});
    ask_app();
    return;
  }
  if (!token_error_.empty())
    refuse(channel, 403, "not authorized for channel '" + channel + "': " + token_error_, false);
  else if (has_token_)
    refuse(channel, 403,
           "not authorized for channel '" + channel + "': the token does not cover it", false);
  else
    refuse(channel, 401,
           "private channel '" + channel +
               "' needs a token (token= on the handshake, or {\"cmd\":\"auth\",\"token\":...})" +
               (config.auth_url.empty() ? "" : " or a session cookie for the app"),
           false);
}

void WsChannelAuth::forget(std::string_view channel) {
  auto named = [channel](const auto& item) { return item.channel == channel; };
  held_.erase(std::remove_if(held_.begin(), held_.end(), named), held_.end());
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), named), waiting_.end());
  asked_.erase(std::remove_if(asked_.begin(), asked_.end(), named), asked_.end());
}

bool WsChannelAuth::keeps_user(const std::string& user, std::string_view source) {
  if (user_changed_) return false;
  if (user_.empty()) user_ = user;
  if (user == user_) return true;
  user_changed_ = true;
  worker_.counters().auth_refused.fetch_add(1, std::memory_order_relaxed);
  std::string message = std::string(source) + " names user ";
  append_json_string(message, user);
  message += ", but this connection is user ";
  append_json_string(message, user_);
  message += ": a refresh keeps the user (connect again to change it)";
  send_error("forbidden", 403, "", message);
  host_.close(ws::kClosePolicy, "user changed");
  return false;
}

void WsChannelAuth::refresh(const std::string* token) {
  if (user_changed_) return;
  const Config& config = worker_.config();
  std::vector<Held> held = held_;
  if (token != nullptr) {
    TokenCheck check = verify_token(*token, config.token_secret, wall_clock_ms());
    if (!check.ok) {
      send_error("forbidden", 403, "", "token refused: " + check.error);
      return;
    }
    // A token without sub names nobody: only another sub is a change of user. It changes
    // nothing either: the socket keeps the user (and info) its earlier token named.
    if (!check.grant.user.empty() && !keeps_user(check.grant.user, "token refused: its sub"))
      return;
    if (check.grant.user.empty() && has_token_) {
      check.grant.user = token_.user;
      if (check.grant.info_json.empty()) check.grant.info_json = token_.info_json;
    }
    token_ = std::move(check.grant);
    has_token_ = true;
    token_error_.clear();
    expiry_told_ = false;
    for (const Held& h : held) {
      if (token_.covers(h.channel)) {
        find_held(h.channel)->until_ms = token_.expires_ms;
      } else if (worker_.auth_url != nullptr && !cookie_.empty()) {
        waiting_.push_back(Waiting{h.channel, std::nullopt, true});
      } else {
        refuse(h.channel, 403,
               "not authorized for channel '" + h.channel + "': the new token does not cover it",
               true);
      }
    }
    std::string out = "{\"type\":\"auth\",\"exp\":" + std::to_string(token_.expires_ms / 1000);
    if (!token_.user.empty()) {
      out += ",\"sub\":";
      append_json_string(out, token_.user);
    }
    host_.send(out + "}");
  } else {
    if (worker_.auth_url == nullptr || cookie_.empty()) {
      send_error("unauthorized", 401, "",
                 "no token given, and no session cookie to ask the app with (--auth-url)");
      return;
    }
    expiry_told_ = false;
    for (const Held& h : held)
      if (!covered_by_token(h.channel)) waiting_.push_back(Waiting{h.channel, std::nullopt, true});
    host_.send("{\"type\":\"auth\"}");
  }
  if (!waiting_.empty()) ask_app();
}

bool WsChannelAuth::may_deliver(std::string_view channel) {
  const Held* h = held_.empty() ? nullptr : find_held(channel);
  if (h == nullptr) return true;
  const int64_t late = wall_clock_ms() - h->until_ms;
  if (late < 0) return true;
  host_.wake();  // run() tells the client, or revokes
  return late < worker_.config().token_grace_ms;
}

void WsChannelAuth::run() {
  if (user_changed_) return;
  if (answer_) {
    const AuthAnswer answer = std::move(*answer_);
    answer_.reset();
    question_.reset();
    std::vector<Waiting> asked;
    asked.swap(asked_);
    apply_answer(answer, std::move(asked));
    if (!waiting_.empty()) ask_app();
  }
  if (held_.empty()) return;
  const int64_t now = wall_clock_ms();
  const int64_t grace = worker_.config().token_grace_ms;
  bool expired = false;
  std::vector<std::string> ended;
  for (const Held& h : held_) {
    if (now < h.until_ms) continue;
    expired = true;
    if (now - h.until_ms >= grace) ended.push_back(h.channel);
  }
  if (expired && !expiry_told_) {
    expiry_told_ = true;
    host_.send(auth_expired_notice(worker_.config()));
  }
  for (const std::string& channel : ended) {
    forget(channel);
    host_.revoke(channel);
    send_error("auth-expired", 403, channel,
               "authorization expired; refresh it and subscribe again");
  }
}

void WsChannelAuth::grant(const std::string& channel, const std::optional<Position>& from,
                          int64_t until_ms, bool subscribed, const MemberIdentity& who) {
  if (!subscribed) {
    std::string full;
    const std::string error = presence_full_error(worker_, {channel}, who, full);
    if (!error.empty()) {
      refuse(channel, 403, error, false);
      return;
    }
  }
  if (Held* h = find_held(channel)) {
    h->until_ms = until_ms;
  } else {
    held_.push_back(Held{channel, until_ms});
  }
  if (!subscribed) host_.grant(channel, from, who);
}

void WsChannelAuth::refuse(const std::string& channel, int status, const std::string& message,
                           bool subscribed) {
  worker_.counters().auth_refused.fetch_add(1, std::memory_order_relaxed);
  if (subscribed) {
    forget(channel);
    host_.revoke(channel);
  }
  send_error(status == 401 ? "unauthorized" : "forbidden", status, channel, message);
}

void WsChannelAuth::ask_app() {
  if (question_ != nullptr || waiting_.empty()) return;  // the next round asks the rest
  asked_.swap(waiting_);
  std::vector<std::string> channels;
  for (const Waiting& w : asked_) channels.push_back(w.channel);
  question_ = worker_.auth_url->ask(cookie_, origin_, channels, [this](const AuthAnswer& answer) {
    answer_ = answer;
    host_.wake();
  });
}

void WsChannelAuth::apply_answer(const AuthAnswer& answer, std::vector<Waiting> asked) {
  for (const Waiting& w : asked) {
    if (answer.outcome == AuthAnswer::Outcome::kAnswered && answer.allows(w.channel)) {
      // The token's user (when it named one) wins, as on the HTTP transports.
      const MemberIdentity who = has_token_ && !token_.user.empty()
                                     ? token_identity()
                                     : MemberIdentity{answer.user, answer.info_json};
      if (!who.user.empty() && !keeps_user(who.user, "the app's answer")) return;
      const std::string error =
          is_presence_channel(w.channel) ? member_identity_error(who) : std::string();
      if (error.empty()) {
        grant(w.channel, w.from, answer.expires_ms, w.subscribed, who);
        continue;
      }
      refuse(w.channel, 403, error, w.subscribed);
      continue;
    }
    const bool busy = answer.outcome == AuthAnswer::Outcome::kBusy;
    const std::string why = answer.outcome == AuthAnswer::Outcome::kAnswered
                                ? std::string("the app refused it")
                                : answer.error;
    refuse(w.channel, busy ? 503 : 403, "not authorized for channel '" + w.channel + "': " + why,
           w.subscribed);
  }
}

void WsChannelAuth::send_error(const char* code, int status, std::string_view channel,
                               std::string_view message) {
  std::string out = "{\"type\":\"error\",\"error\":\"";
  out += code;
  out += '"';
  if (!channel.empty()) {
    out += ",\"ch\":";
    append_json_string(out, channel);
  }
  out += ",\"status\":" + std::to_string(status) + ",\"message\":";
  append_json_string(out, message);
  host_.send(out + "}");
}

}  // namespace comet
