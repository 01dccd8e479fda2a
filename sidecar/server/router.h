#pragma once
#include "http/request.h"

namespace comet {

class Connection;

/**
 * Answers one complete request on `conn`: writes a full response, or starts a session
 * (SSE, WebSocket, long-poll) with Connection::begin_session. Returns whether the
 * connection may read another request after a full response (keep-alive).
 */
bool route_request(Connection& conn, http::Request& request);

}  // namespace comet
