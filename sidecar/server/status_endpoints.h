#pragma once
// GET /healthz (JSON) and GET /metrics (Prometheus text): the process-wide counters and
// the bus's own health.

#include "http/request.h"
#include "server/client_port.h"
#include "server/shared_state.h"

namespace comet {

/** Writes the /healthz answer; returns request.keep_alive. */
bool serve_health(ClientPort& port, const SharedState& shared, const http::Request& request);
/** Writes the /metrics answer; returns request.keep_alive. */
/** GET /livez: 200 while the process's event loops run (liveness, not readiness). */
bool serve_liveness(ClientPort& port, const http::Request& request);

bool serve_metrics(ClientPort& port, const SharedState& shared, const http::Request& request);

}  // namespace comet
