#include "server/router.h"

#include <string>

#include "http/response.h"
#include "server/connection.h"
#include "server/http_policy.h"
#include "server/session.h"
#include "server/worker.h"
#include "transports/transports.h"

namespace comet {
namespace {

bool reply(Connection& conn, const http::Request& request, int status, std::string_view message,
           std::string_view extra_headers = {}) {
  conn.write(http::error_response(status, message, request.keep_alive, extra_headers));
  return request.keep_alive;
}

bool serve_health(Connection& conn, const http::Request& request) {
  const SharedState& shared = conn.worker().shared();
  const Counters& c = shared.counters;
  const BridgeHealth& bridge = shared.bridge_health;
  // Degraded: some worker has lost Redis. Still 200: the sidecar keeps its clients and
  // serves resumes from memory, and a load balancer pulling every instance would not help.
  const int redis_down = bridge.connections_down.load();
  std::string body = "{\"status\":\"";
  body += shared.use_redis && redis_down > 0 ? "degraded" : "ok";
  body += shared.use_redis ? "\",\"bus\":\"redis\"" : "\",\"bus\":\"embedded\"";
  body += ",\"connections\":" + std::to_string(c.connections.load()) +
          ",\"subscriptions\":" + std::to_string(c.subscriptions.load()) +
          ",\"published\":" + std::to_string(c.published.load()) +
          ",\"slow_readers_cut\":" + std::to_string(c.slow_readers_cut.load());
  body += ",\"sessions\":{";
  for (int k = 0; k < static_cast<int>(SessionKind::kCount); ++k) {
    if (k != 0) body += ',';
    body += std::string("\"") + session_kind_name(static_cast<SessionKind>(k)) +
            "\":" + std::to_string(c.sessions[k].load());
  }
  body += '}';
  if (shared.use_redis)
    body += ",\"redis_connections_down\":" + std::to_string(redis_down) +
            ",\"gaps_filled\":" + std::to_string(bridge.gaps_filled.load()) +
            ",\"payload_errors\":" + std::to_string(bridge.payload_errors.load());
  body += "}\n";
  conn.write(http::ResponseHead(200)
                 .header("Content-Type", "application/json")
                 .header("Cache-Control", "no-store")
                 .with_body(body, request.keep_alive));
  return request.keep_alive;
}

// Prometheus text exposition of the same counters.
bool serve_metrics(Connection& conn, const http::Request& request) {
  const SharedState& shared = conn.worker().shared();
  const Counters& c = shared.counters;
  std::string body;
  auto metric = [&body](const char* name, const char* type, const char* help,
                        const std::string& value) {
    body += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    body += std::string(name) + " " + value + "\n";
  };
  metric("comet_connections", "gauge", "Open client connections.",
         std::to_string(c.connections.load()));
  metric("comet_subscriptions", "gauge", "Channel subscriptions of connected clients.",
         std::to_string(c.subscriptions.load()));
  metric("comet_published_total", "counter", "Messages published through this sidecar's /pub.",
         std::to_string(c.published.load()));
  metric("comet_slow_readers_cut_total", "counter", "Clients disconnected for not reading.",
         std::to_string(c.slow_readers_cut.load()));
  body += "# HELP comet_sessions Long-lived sessions by transport.\n# TYPE comet_sessions gauge\n";
  for (int k = 0; k < static_cast<int>(SessionKind::kCount); ++k)
    body += std::string("comet_sessions{transport=\"") +
            session_kind_name(static_cast<SessionKind>(k)) + "\"} " +
            std::to_string(c.sessions[k].load()) + "\n";
  if (shared.use_redis) {
    const BridgeHealth& bridge = shared.bridge_health;
    metric("comet_redis_connections_down", "gauge",
           "Redis connections (2 per worker) not connected.",
           std::to_string(bridge.connections_down.load()));
    metric("comet_redis_gaps_filled_total", "counter",
           "Gaps in pub/sub delivery filled from streams.",
           std::to_string(bridge.gaps_filled.load()));
    metric("comet_redis_payload_errors_total", "counter", "Malformed pub/sub payloads dropped.",
           std::to_string(bridge.payload_errors.load()));
  }
  conn.write(http::ResponseHead(200)
                 .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                 .header("Cache-Control", "no-store")
                 .with_body(body, request.keep_alive));
  return request.keep_alive;
}

bool serve_static(Connection& conn, const http::Request& request) {
  const auto& files = conn.worker().shared().static_files;
  std::string path = request.path;
  if (!path.empty() && path.back() == '/') path += "index.html";
  auto it = files.find(path);
  if (it == files.end()) return reply(conn, request, 404, "no such endpoint or file");
  http::ResponseHead head(200);
  head.header("Content-Type", it->second.content_type).header("Cache-Control", "no-cache");
  // HEAD gets the headers of GET with no body.
  std::string out = head.with_body(it->second.bytes, request.keep_alive);
  if (request.method == "HEAD") out.resize(out.size() - it->second.bytes.size());
  conn.write(out);
  return request.keep_alive;
}

bool transport_enabled(const Config& config, const char* name) {
  for (const std::string& t : config.transports)
    if (t == name) return true;
  return false;
}

bool is_get(const http::Request& r) { return r.method == "GET" || r.method == "HEAD"; }

}  // namespace

bool route_request(Connection& conn, http::Request& request) {
  const Config& config = conn.worker().config();
  http::QueryParams query;
  if (!http::QueryParams::parse(request.query, query))
    return reply(conn, request, 400, "malformed query string (bad percent-escape)");
  const std::string& path = request.path;

  // CORS preflight for the XHR-based endpoints.
  if (request.method == "OPTIONS") {
    const OriginCheck origin = check_origin(config, request);
    if (!origin.allowed) return reply(conn, request, 403, "origin not allowed");
    const char* methods = path.rfind("/pub/", 0) == 0 ? "POST, OPTIONS" : "GET, OPTIONS";
    std::string out = http::ResponseHead(204).with_body("", request.keep_alive);
    out.insert(out.find("\r\n") + 2, origin.cors_headers + preflight_headers(methods));
    conn.write(out);
    return request.keep_alive;
  }

  if (path.rfind("/pub/", 0) == 0) {
    if (request.method != "POST" && request.method != "PUT")
      return reply(conn, request, 405, "use POST to publish", "Allow: POST, PUT, OPTIONS\r\n");
    return handle_publish(conn, request, query);
  }
  const bool subscribe_endpoint = path == "/sse" || path == "/poll" || path == "/ws" ||
                                  path == "/stream" || path == "/healthz" || path == "/metrics" ||
                                  (!config.ws_echo_path.empty() && path == config.ws_echo_path);
  if (subscribe_endpoint && request.method != "GET")
    return reply(conn, request, 405, "use GET", "Allow: GET, OPTIONS\r\n");
  const char* transport = path == "/ws"       ? "ws"
                          : path == "/sse"    ? "sse"
                          : path == "/stream" ? "stream"
                          : path == "/poll"   ? "poll"
                                              : nullptr;
  if (transport != nullptr && !transport_enabled(config, transport))
    return reply(conn, request, 403,
                 std::string(transport) + " transport is disabled on this server (--transports)");
  if (path == "/sse") {
    const std::string* format = query.get("format");
    if (format != nullptr && *format == "dom-event-stream")
      return start_stream(conn, request, query, *format);
    return start_sse(conn, request, query);
  }
  if (path == "/stream") {
    const std::string* format = query.get("format");
    return start_stream(conn, request, query,
                        format != nullptr ? std::string_view(*format) : "xhr");
  }
  if (path == "/poll") return start_poll(conn, request, query);
  if (path == "/ws") return start_websocket(conn, request, query);
  if (!config.ws_echo_path.empty() && path == config.ws_echo_path)
    return start_ws_echo(conn, request);
  if (path == "/healthz") return serve_health(conn, request);
  if (path == "/metrics") return serve_metrics(conn, request);
  if (!is_get(request)) {
    const bool known = conn.worker().shared().static_files.count(path) != 0;
    if (known) return reply(conn, request, 405, "use GET", "Allow: GET, HEAD\r\n");
    return reply(conn, request, 404, "no such endpoint or file");
  }
  return serve_static(conn, request);
}

}  // namespace comet
