#pragma once
// Sidecar configuration: defaults, then COMET_* environment variables, then flags.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace comet {

struct Config {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  int workers = 0;  // 0 = one per core
  std::string redis_url;
  int64_t redis_key_ttl_ms = 0;    // expiry of a channel's Redis keys after its last publish
  size_t redis_wait_replicas = 0;  // WAIT for this many replicas before answering /pub
  int64_t redis_wait_timeout_ms = 500;

  size_t history_size = 1000;
  int64_t history_age_ms = 3600 * 1000;

  size_t max_header_bytes = 8192;
  size_t max_url_bytes = 4096;
  size_t max_message_bytes = 64 * 1024;   // publish body and WebSocket message
  size_t max_channels = 32;               // per connection
  size_t max_output_bytes = 1024 * 1024;  // per connection; a slower reader is cut off
  size_t max_output_soft_bytes = 0;       // ... or over this for a heartbeat interval (0 = half)
  size_t max_output_total_bytes = 0;      // all connections' unsent output; 0 = from RAM
  size_t max_connections = 0;             // per process; 0 = derived from the open-file limit
  size_t max_connections_per_ip = 2048;   // per client address (IPv6: /64); 0 = no limit
  std::vector<std::string> trusted_proxies = {"127.0.0.1", "::1"};  // not limited per address

  int64_t request_timeout_ms = 10 * 1000;   // to receive a whole request (and keep-alive idle)
  int64_t poll_timeout_ms = 30 * 1000;      // longest a long-poll is held
  int64_t heartbeat_ms = 15 * 1000;         // SSE comment / WebSocket ping interval
  int64_t sse_retry_ms = 2000;              // reconnect delay advertised to EventSource
  size_t stream_byte_budget = 1024 * 1024;  // legacy streams end (client reconnects) after this
  size_t stream_padding_bytes = 2048;       // prelude that makes browsers/proxies start at once
  std::vector<std::string> transports = {"ws", "sse", "stream", "poll"};  // enabled endpoints

  std::vector<std::string> allowed_origins = {"*"};
  std::vector<std::string> allowed_hosts;  // Host names served (DNS rebinding); empty = any
  std::string publish_key;                 // required on /pub (both listeners) when set
  // The internal publish listener (docs/protocol.md, "Publish"); port 0 picks a free one.
  bool publish_listen_enabled = true;
  std::string publish_listen_host = "127.0.0.1";
  uint16_t publish_listen_port = 8081;
  bool publish_from_any = false;  // keyless publishes on the publish listener from any peer

  // Private channels (docs/protocol.md, "Private channels and authorization").
  std::vector<std::string> private_prefixes = {"private:", "presence:"};  // "" = every channel
  std::string token_secret;            // HMAC key of comet_token(); "" = tokens refused
  int64_t token_grace_ms = 30 * 1000;  // private delivery goes on this long past expiry
  std::string auth_url;                // the app's authorization endpoint ("" = none)
  int64_t auth_timeout_ms = 2 * 1000;  // per question to auth_url
  std::string ws_echo_path;            // "" = echo endpoint off
  std::string static_dir;              // served at "/" ("" = none)
  // WebSocket permessage-deflate (RFC 7692): negotiated when the client offers it;
  // messages shorter than ws_deflate_min_bytes go uncompressed.
  bool ws_deflate = true;
  size_t ws_deflate_min_bytes = 256;
  // TLS on the public listener (both set = https/wss; PEM, the certificate file may hold
  // the chain; SIGHUP reloads them).
  std::string tls_cert;
  std::string tls_key;

  // Presence (docs/protocol.md, "Presence"): a member whose last subscription ended
  // leaves this long after, unless a subscription of the same user comes back.
  int64_t presence_grace_ms = 5 * 1000;
  // Members per presence channel: each join and leave goes to every subscriber, so a
  // channel's notices grow with the square of its members (Pusher caps at 100).
  size_t presence_max_members = 1000;

  // Presence webhooks (docs/protocol.md, "Webhooks"): "" = off; a URL needs a secret.
  std::string webhook_url;
  std::string webhook_secret;             // HMAC key of X-Comet-Signature
  int64_t webhook_timeout_ms = 5 * 1000;  // per request
  size_t webhook_queue = 10000;           // events waiting; beyond it the oldest are dropped

  std::string js_client_path;  // served at /comet.js ("" = built-in placeholder)
  std::string log_level = "info";
};

/** Outcome of parse_config: either a config or a message for the user. */
struct ConfigResult {
  bool ok = false;
  bool show_help = false;
  std::string error;
  std::vector<std::string> warnings;  // e.g. COMET_* variables the sidecar does not use
  Config config;
};

/**
 * Parses `env` (NAME=value strings, as in environ) and then `argv`. Flags override
 * environment variables. Never exits; the caller prints `error` and exits non-zero.
 */
ConfigResult parse_config(int argc, const char* const* argv, const char* const* env);

/** The --help text (flags, environment names, defaults). */
std::string config_help();

/** Parses "30", "30s", "250ms", "5m", "1h" into milliseconds; false when malformed. */
bool parse_duration_ms(const std::string& text, int64_t& out);

/** Parses "1024", "64k", "1m", "1g" (powers of 1024) into bytes; false when malformed. */
bool parse_size(const std::string& text, size_t& out);

}  // namespace comet
