#include "server/router.h"

#include <string>

#include "http/response.h"
#include "server/http_policy.h"
#include "server/static_responses.h"
#include "server/status_endpoints.h"
#include "transports/pipeline.h"
#include "transports/presence_query.h"
#include "transports/request_context.h"
#include "transports/transport_table.h"

namespace comet {
namespace {

bool reply(ClientPort& port, const http::Request& request, int status, std::string_view message,
           std::string_view extra_headers = {}) {
  const bool keep_alive = may_keep_alive(request);
  port.write(http::error_response(status, message, keep_alive, extra_headers));
  return keep_alive;
}

// CORS preflight for the XHR-based endpoints.
bool answer_preflight(ClientPort& port, const Config& config, const http::Request& request,
                      const TransportRow* row) {
  const bool publish = row != nullptr && row->is_publish;
  const OriginCheck origin = check_origin(config, request, !publish);
  if (!origin.allowed) return reply(port, request, 403, "origin not allowed");
  const bool keep_alive = may_keep_alive(request);
  // PUT is a synonym of POST for publishing (protocol.md).
  const char* methods = publish ? "POST, PUT, OPTIONS" : "GET, OPTIONS";
  port.write(http::ResponseHead(204)
                 .lines(origin.cors_headers)
                 .lines(preflight_headers(methods))
                 .with_body("", keep_alive));
  return keep_alive;
}

}  // namespace

bool route_request(ClientPort& port, WorkerContext& worker, const http::Request& request) {
  const Config& config = worker.config();
  http::QueryParams query;
  if (!http::QueryParams::parse(request.query, query))
    return reply(port, request, 400, "malformed query string (bad percent-escape)");
  const std::string& path = request.path;
  const TransportRow* row = find_transport(path, config);
  if (!port.on_publish_listener() && !host_allowed(config, request))
    return reply(port, request, 403, "Host not allowed here (--allowed-hosts)");
  // Over a connection limit: health checks still answer, anything else is told why;
  // either way the connection then closes (the overflow band is small).
  if (port.over_connection_limit()) {
    if (request.method == "GET" && (path == "/healthz" || path == "/livez" || path == "/metrics")) {
      http::Request last = request;
      last.keep_alive = false;
      if (path == "/healthz") serve_health(port, worker.shared, last);
      if (path == "/livez") serve_liveness(port, last);
      if (path == "/metrics") serve_metrics(port, worker.shared, last);
      return false;
    }
    port.write(http::error_response(503, "server at its connection limit, retry later", false,
                                    "Retry-After: 5\r\n"));
    return false;
  }
  // Presence queries follow the publish policy (the app asks, on either listener).
  if (row == nullptr && is_presence_query_path(path) && request.method != "OPTIONS")
    return serve_presence_query(port, worker, request, query);
  // The internal listener publishes and reports, nothing else: no browser is meant to
  // reach it, and no subscription should depend on it.
  if (port.on_publish_listener() && !(row != nullptr && row->is_publish) && path != "/healthz" &&
      path != "/livez" && path != "/metrics")
    return reply(port, request, 404,
                 "the publish listener serves /pub/<channel>, /presence/<channel>, /occupancy, "
                 "/healthz, /livez and /metrics only");

  if (request.method == "OPTIONS") return answer_preflight(port, config, request, row);

  if (row != nullptr) {
    if (!method_allowed(*row, request.method))
      return row->is_publish
                 ? reply(port, request, 405, "use POST to publish", "Allow: POST, PUT, OPTIONS\r\n")
                 : reply(port, request, 405, "use GET", "Allow: GET, OPTIONS\r\n");
    if (!transport_enabled(*row, config))
      return reply(port, request, 403,
                   std::string(row->name) + " transport is disabled on this server (--transports)");
    RequestContext ctx{port, worker, request, query, {}, may_keep_alive(request)};
    return run_pipeline(*row, ctx);
  }

  const bool status_endpoint = path == "/healthz" || path == "/livez" || path == "/metrics";
  if (status_endpoint && request.method != "GET")
    return reply(port, request, 405, "use GET", "Allow: GET, OPTIONS\r\n");
  if (path == "/healthz") return serve_health(port, worker.shared, request);
  if (path == "/livez") return serve_liveness(port, request);
  if (path == "/metrics") return serve_metrics(port, worker.shared, request);
  if (request.method != "GET" && request.method != "HEAD") {
    const bool known = worker.shared.static_files.count(path) != 0;
    if (known) return reply(port, request, 405, "use GET", "Allow: GET, HEAD\r\n");
    return reply(port, request, 404, "no such endpoint or file");
  }
  return serve_static(port, worker.shared, request);
}

}  // namespace comet
