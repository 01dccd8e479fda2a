#pragma once
// GET /presence/<channel> and GET /occupancy?ch=a,b (docs/protocol.md, "Queries"): who
// is in a presence channel, and how many, for the app. Served under the publish policy
// (the publish listener, or --publish-key), never to browsers without the key.

#include "http/query.h"
#include "http/request.h"
#include "server/client_port.h"
#include "server/worker_context.h"

namespace comet {

/** True for the paths this serves: "/presence/..." and "/occupancy". */
bool is_presence_query_path(const std::string& path);

/** Answers one query request. Returns whether the connection may be kept alive. */
bool serve_presence_query(ClientPort& port, WorkerContext& worker, const http::Request& request,
                          const http::QueryParams& query);

}  // namespace comet
