#pragma once
// Entry points of the transports, called by the router with a complete request.
// Each either writes a full response (returning whether the connection may be kept
// alive) or hands the connection to a session.

#include <string_view>

#include "http/query.h"
#include "http/request.h"

namespace comet {

class Connection;

/** GET /sse: Server-Sent Events stream (transports/sse.cpp). */
bool start_sse(Connection& conn, const http::Request& request, const http::QueryParams& query);
/** GET /stream?format=xhr|iframe|htmlfile|multipart, and /sse?format=dom-event-stream
 * (transports/stream.cpp). */
bool start_stream(Connection& conn, const http::Request& request, const http::QueryParams& query,
                  std::string_view format);
/** GET /poll: long-poll, polling (wait=0) and JSONP (callback=) (transports/poll.cpp). */
bool start_poll(Connection& conn, const http::Request& request, const http::QueryParams& query);
/** GET /ws: WebSocket with sub/unsub/ping commands (transports/websocket.cpp). */
bool start_websocket(Connection& conn, const http::Request& request,
                     const http::QueryParams& query);
/** The --ws-echo-path endpoint: echoes every message (transports/ws_echo.cpp). */
bool start_ws_echo(Connection& conn, const http::Request& request);
/** POST /pub/<channel>: publish through the bus (transports/publish.cpp). */
bool handle_publish(Connection& conn, const http::Request& request, const http::QueryParams& query);

}  // namespace comet
