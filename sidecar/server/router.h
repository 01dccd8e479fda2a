#pragma once
#include "http/request.h"
#include "server/client_port.h"
#include "server/worker_context.h"

namespace comet {

/**
 * Answers one complete request on `port`: writes a full response, or starts a session
 * (SSE, WebSocket, long-poll) with ClientPort::begin_session. Transports are found in
 * the transport table and run through the pipeline (transports/pipeline.h). Returns
 * whether the connection may read another request after a full response (keep-alive).
 */
bool route_request(ClientPort& port, WorkerContext& worker, const http::Request& request);

}  // namespace comet
