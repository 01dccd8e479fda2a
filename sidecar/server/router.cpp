#include "server/router.h"

#include <string>

#include "http/response.h"
#include "server/http_policy.h"
#include "server/status_endpoints.h"
#include "transports/pipeline.h"
#include "transports/transport_table.h"

namespace comet {
namespace {

bool reply(ClientPort& port, const http::Request& request, int status, std::string_view message,
           std::string_view extra_headers = {}) {
  port.write(http::error_response(status, message, request.keep_alive, extra_headers));
  return request.keep_alive;
}

bool serve_static(ClientPort& port, const SharedState& shared, const http::Request& request) {
  std::string path = request.path;
  if (!path.empty() && path.back() == '/') path += "index.html";
  auto it = shared.static_files.find(path);
  if (it == shared.static_files.end()) return reply(port, request, 404, "no such endpoint or file");
  http::ResponseHead head(200);
  head.header("Content-Type", it->second.content_type).header("Cache-Control", "no-cache");
  // HEAD gets the headers of GET with no body.
  std::string out = head.with_body(it->second.bytes, request.keep_alive);
  if (request.method == "HEAD") out.resize(out.size() - it->second.bytes.size());
  port.write(out);
  return request.keep_alive;
}

// CORS preflight for the XHR-based endpoints.
bool answer_preflight(ClientPort& port, const Config& config, const http::Request& request,
                      const TransportRow* row) {
  const OriginCheck origin = check_origin(config, request);
  if (!origin.allowed) return reply(port, request, 403, "origin not allowed");
  const char* methods = row != nullptr && row->is_publish ? "POST, OPTIONS" : "GET, OPTIONS";
  port.write(http::ResponseHead(204)
                 .lines(origin.cors_headers)
                 .lines(preflight_headers(methods))
                 .with_body("", request.keep_alive));
  return request.keep_alive;
}

}  // namespace

bool route_request(ClientPort& port, WorkerContext& worker, const http::Request& request) {
  const Config& config = worker.config();
  http::QueryParams query;
  if (!http::QueryParams::parse(request.query, query))
    return reply(port, request, 400, "malformed query string (bad percent-escape)");
  const std::string& path = request.path;
  const TransportRow* row = find_transport(path, config);

  if (request.method == "OPTIONS") return answer_preflight(port, config, request, row);

  if (row != nullptr) {
    if (row->is_publish && request.method != "POST" && request.method != "PUT")
      return reply(port, request, 405, "use POST to publish", "Allow: POST, PUT, OPTIONS\r\n");
    if (!row->is_publish && request.method != "GET")
      return reply(port, request, 405, "use GET", "Allow: GET, OPTIONS\r\n");
    if (!transport_enabled(*row, config))
      return reply(port, request, 403,
                   std::string(row->name) + " transport is disabled on this server (--transports)");
    RequestContext ctx{port, worker, request, query, {}, request.keep_alive};
    return run_pipeline(*row, ctx);
  }

  const bool status_endpoint = path == "/healthz" || path == "/metrics";
  if (status_endpoint && request.method != "GET")
    return reply(port, request, 405, "use GET", "Allow: GET, OPTIONS\r\n");
  if (path == "/healthz") return serve_health(port, worker.shared, request);
  if (path == "/metrics") return serve_metrics(port, worker.shared, request);
  if (request.method != "GET" && request.method != "HEAD") {
    const bool known = worker.shared.static_files.count(path) != 0;
    if (known) return reply(port, request, 405, "use GET", "Allow: GET, HEAD\r\n");
    return reply(port, request, 404, "no such endpoint or file");
  }
  return serve_static(port, worker.shared, request);
}

}  // namespace comet
