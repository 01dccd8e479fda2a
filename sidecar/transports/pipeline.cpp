#include "transports/pipeline.h"

namespace comet {

bool run_pipeline(const TransportRow& row, RequestContext& ctx) {
  if (row.close_after_error) ctx.keep_alive = false;

  // Browsers send Origin on cross-site XHR, EventSource and every WebSocket handshake;
  // refusing unknown origins stops other sites from using the user's cookies here
  // (cross-site WebSocket hijacking included). No Origin (curl, PHP, <script> JSONP)
  // passes with no CORS headers.
  ctx.origin = check_origin(ctx.config(), ctx.request);
  if (!ctx.origin.allowed) return ctx.refuse(403, "origin not allowed");

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

  // Authorization (issue 11) belongs here: every subscribing transport reaches this
  // point with its channels parsed, and nothing has been subscribed or answered yet.

  return row.start(ctx, channels);
}

}  // namespace comet
