#include "server/status_endpoints.h"

#include <string>

#include "http/response.h"
#include "util/prometheus.h"

namespace comet {
namespace {

void append_webhook_metrics(std::string& body, const WebhookStats& webhooks) {
  append_metric_header(body, "comet_webhook_events_total", "counter",
                       "Presence events delivered to --webhook-url (sent) or given up (dropped: "
                       "the queue was full, or the process stopped).");
  body += "comet_webhook_events_total{result=\"sent\"} " +
          std::to_string(webhooks.events_sent.load()) + "\n";
  body += "comet_webhook_events_total{result=\"dropped\"} " +
          std::to_string(webhooks.events_dropped.load()) + "\n";
  append_metric_header(body, "comet_webhook_requests_total", "counter",
                       "Webhook requests answered 2xx (ok) or not (failed: retried).");
  body += "comet_webhook_requests_total{result=\"ok\"} " +
          std::to_string(webhooks.requests_ok.load()) + "\n";
  body += "comet_webhook_requests_total{result=\"failed\"} " +
          std::to_string(webhooks.requests_failed.load()) + "\n";
  append_metric(body, "comet_webhook_queue", "gauge",
                "Presence events waiting for the webhook endpoint (with the batch in flight).",
                std::to_string(webhooks.queued.load()));
}

}  // namespace

bool serve_health(ClientPort& port, const SharedState& shared, const http::Request& request) {
  const Counters& c = shared.counters;
  // Readiness: 503 while some worker has lost the bus (Redis) or the process is stopping,
  // so a load balancer sends new clients to an instance that can serve them. Clients
  // already here stay and are served from memory; /livez says the process is alive.
  const bool draining = shared.draining.load();
  const bool degraded = shared.bus->degraded();
  std::string body = "{\"status\":\"";
  body += draining ? "draining" : degraded ? "degraded" : "ok";
  body += "\",\"bus\":\"";
  body += shared.bus->name();
  body += "\",\"connections\":" + std::to_string(c.connections.load()) +
          ",\"subscriptions\":" + std::to_string(c.subscriptions.load()) +
          ",\"published\":" + std::to_string(c.published.load()) +
          ",\"slow_readers_cut\":" + std::to_string(c.slow_readers_cut.load());
  body += ",\"sessions\":{";
  for (size_t k = 0; k < kSessionKindCount; ++k) {
    if (k != 0) body += ',';
    body += std::string("\"") + session_kind_name(static_cast<SessionKind>(k)) +
            "\":" + std::to_string(c.sessions[k].load());
  }
  body += '}';
  shared.bus->append_health_json(body);
  body += "}\n";
  port.write(http::ResponseHead(draining || degraded ? 503 : 200)
                 .header("Content-Type", "application/json")
                 .header("Cache-Control", "no-store")
                 .with_body(body, request.keep_alive));
  return request.keep_alive;
}

bool serve_liveness(ClientPort& port, const http::Request& request) {
  // Answered by the worker's loop itself: if this arrives, the process is alive.
  port.write(http::ResponseHead(200)
                 .header("Content-Type", "application/json")
                 .header("Cache-Control", "no-store")
                 .with_body("{\"status\":\"alive\"}\n", request.keep_alive));
  return request.keep_alive;
}

bool serve_metrics(ClientPort& port, const SharedState& shared, const http::Request& request) {
  const Counters& c = shared.counters;
  std::string body;
  append_metric(body, "comet_connections", "gauge", "Open client connections.",
                std::to_string(c.connections.load()));
  append_metric(body, "comet_subscriptions", "gauge", "Channel subscriptions of connected clients.",
                std::to_string(c.subscriptions.load()));
  append_metric(body, "comet_published_total", "counter",
                "Messages published through this sidecar's /pub.",
                std::to_string(c.published.load()));
  append_metric(body, "comet_slow_readers_cut_total", "counter",
                "Clients disconnected for not reading.", std::to_string(c.slow_readers_cut.load()));
  append_metric(body, "comet_auth_refused_total", "counter",
                "Subscriptions to private channels refused (401, 403, 503).",
                std::to_string(c.auth_refused.load()));
  append_metric(body, "comet_unsent_bytes", "gauge",
                "Output queued for clients and not yet taken in (counted once a second).",
                std::to_string(c.unsent_bytes.load()));
  append_metric(body, "comet_output_budget_cuts_total", "counter",
                "Slowest readers cut because all unsent output was over "
                "--max-output-total-bytes.",
                std::to_string(c.output_budget_cuts.load()));
  append_metric(body, "comet_memory_trims_total", "counter",
                "Times freed memory was given back to the system (malloc_trim).",
                std::to_string(c.memory_trims.load()));
  if (shared.limits != nullptr) {
    append_metric(body, "comet_connection_limit", "gauge",
                  "--max-connections: open connections allowed in all.",
                  std::to_string(shared.config.max_connections));
    append_metric(body, "comet_connections_refused_total", "counter",
                  "Connections refused or answered 503 at --max-connections or "
                  "--max-connections-per-ip.",
                  std::to_string(shared.limits->refused()));
  }
  append_metric_header(body, "comet_sessions", "gauge", "Long-lived sessions by transport.");
  for (size_t k = 0; k < kSessionKindCount; ++k)
    body += std::string("comet_sessions{transport=\"") +
            session_kind_name(static_cast<SessionKind>(k)) + "\"} " +
            std::to_string(c.sessions[k].load()) + "\n";
  append_webhook_metrics(body, c.webhooks);
  if (shared.presence != nullptr) append_presence_metrics(body, *shared.presence);
  shared.bus->append_metrics(body);
  port.write(http::ResponseHead(200)
                 .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                 .header("Cache-Control", "no-store")
                 .with_body(body, request.keep_alive));
  return request.keep_alive;
}

}  // namespace comet
