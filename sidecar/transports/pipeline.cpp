#include "transports/pipeline.h"

#include "auth/access.h"
#include "transports/authorization.h"

namespace comet {
namespace {

bool is_jsonp(const TransportRow& row, const http::QueryParams& query) {
  return row.kind == SessionKind::kPoll && query.has("callback");
}

// Answers that run inside the page that loaded them, which any site can embed.
bool answers_into_page(const TransportRow& row, const http::QueryParams& query) {
  if (is_jsonp(row, query)) return true;
  const std::string* format = query.get("format");
  return format != nullptr && (*format == "iframe" || *format == "htmlfile");
}

bool jsonp_referer_allowed(const Config& config, const http::Request& request) {
  for (const std::string& entry : config.allowed_origins)
    if (entry == "*") return true;
  return origin_listed(config, referer_origin(request));
}

}  // namespace

bool run_pipeline(const TransportRow& row, RequestContext& ctx) {
  if (row.close_after_error) ctx.keep_alive = false;

  // Browsers send Origin on cross-site XHR, EventSource and every WebSocket handshake;
  // refusing unknown origins stops other sites from using the user's cookies here
  // (cross-site WebSocket hijacking included). No Origin (curl, PHP, <script> JSONP)
  // passes with no CORS headers.
  ctx.origin = check_origin(ctx.config(), ctx.request, !row.is_publish);
  if (!ctx.origin.allowed) return ctx.refuse(403, "origin not allowed");
  // A <script> tag sends no Origin: JSONP answers only pages of listed origins when
  // there is a list (the Referer says which page asked).
  if (is_jsonp(row, ctx.query) && !jsonp_referer_allowed(ctx.config(), ctx.request))
    return ctx.refuse(403, "JSONP needs a Referer from an origin in --allowed-origins");

  if (row.check != nullptr) {
    const Refusal refusal = row.check(ctx);
    if (refusal.status != 0)
      return ctx.refuse(refusal.status, refusal.message, refusal.extra_headers);
  }

  ChannelRequest channels;
  const bool parse =
      row.channels == ChannelParse::kRequired ||
      (row.channels == ChannelParse::kOptional && (ctx.query.has("ch") || ctx.query.has("cursor")));
  if (parse) {
    const std::string error =
        parse_channel_request(ctx.request, ctx.query, ctx.config(), row.last_event_id, channels);
    if (!error.empty()) return ctx.refuse(400, error);
  }

  // Every subscribing transport reaches this point with its channels parsed and nothing
  // subscribed or answered yet. WebSocket authorizes channel by channel in its session
  // (a refused channel must not close the socket), so it starts here either way.
  if (parse && row.kind != SessionKind::kWebSocket) {
    bool result = false;
    if (!authorize_request(row, ctx, channels, answers_into_page(row, ctx.query), result))
      return result;
  }

  return row.start(ctx, channels);
}

}  // namespace comet
