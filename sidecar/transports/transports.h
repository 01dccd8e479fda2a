#pragma once
// Entry points of the transports, called by the pipeline (transports/pipeline.h) once
// the request passed the origin check, the transport's own check and (for subscribing
// transports) the channel parse. Each either writes a full response (returning whether
// the connection may be kept alive) or hands the connection to a session.

#include "transports/channel_request.h"
#include "transports/request_context.h"

namespace comet {

/** GET /sse: Server-Sent Events stream (transports/sse.cpp). */
Refusal check_sse(const RequestContext& ctx);
bool start_sse(RequestContext& ctx, const ChannelRequest& channels);

/** GET /stream?format=xhr|iframe|htmlfile|multipart (transports/stream.cpp); also
 * /sse?format=dom-event-stream. */
Refusal check_stream(const RequestContext& ctx);
bool start_stream(RequestContext& ctx, const ChannelRequest& channels);

/** GET /poll: long-poll, polling (wait=0) and JSONP (callback=) (transports/poll.cpp). */
Refusal check_poll(const RequestContext& ctx);
bool start_poll(RequestContext& ctx, const ChannelRequest& channels);

/** GET /ws: WebSocket with sub/unsub/ping commands (transports/websocket.cpp). */
Refusal check_websocket_upgrade(const RequestContext& ctx);
bool start_websocket(RequestContext& ctx, const ChannelRequest& channels);

/** The --ws-echo-path endpoint: echoes every message (transports/ws_echo.cpp). */
bool start_ws_echo(RequestContext& ctx, const ChannelRequest& channels);

/** POST /pub/<channel>: publish through the bus (transports/publish.cpp). */
bool start_publish(RequestContext& ctx, const ChannelRequest& channels);

/**
 * The publish policy (docs/protocol.md, "Publish"): "" when this request may publish
 * (or read presence), else why not. Refuse with 401 when --publish-key is set, else 403.
 */
std::string publish_refusal(const RequestContext& ctx);

}  // namespace comet
