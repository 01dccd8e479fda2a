#pragma once
// The channel-request pipeline: the one path every transport's request takes, in order
//   origin / CORS policy -> the transport's own check -> channels and cursor
//   -> authorization -> the transport's start (a session or a full answer).

#include "transports/request_context.h"
#include "transports/transport_table.h"

namespace comet {

/**
 * Runs `row`'s pipeline for the request in `ctx`. Returns whether the connection may
 * read another request after a full answer (what route_request returns).
 */
bool run_pipeline(const TransportRow& row, RequestContext& ctx);

}  // namespace comet
