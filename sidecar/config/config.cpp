#include "config/config.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string_view>

#include "http/query.h"
#include "util/ascii.h"

namespace comet {
namespace {

// One row per setting: the flag, its environment name, help text and how to apply it.
// A table rather than an if-chain so --help, env and flags can never disagree.
struct Option {
  const char* flag;
  const char* env;
  const char* value_name;  // nullptr for boolean switches
  const char* help;
  std::function<bool(Config&, const std::string&, std::string&)> apply;
};

bool parse_u64(const std::string& text, uint64_t& out) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = strtoull(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

auto size_setter(size_t Config::*field, size_t min_value) {
  return [field, min_value](Config& c, const std::string& v, std::string& err) {
    size_t n = 0;
    if (!parse_size(v, n) || n < min_value) {
      err = "expected a size of at least " + std::to_string(min_value) + " (e.g. 8192, 64k, 1m)";
      return false;
    }
    c.*field = n;
    return true;
  };
}

auto count_setter(size_t Config::*field, size_t min_value) {
  return [field, min_value](Config& c, const std::string& v, std::string& err) {
    uint64_t n = 0;
    if (!parse_u64(v, n) || n < min_value) {
      err = "expected a whole number of at least " + std::to_string(min_value);
      return false;
    }
    c.*field = static_cast<size_t>(n);
    return true;
  };
}

auto duration_setter(int64_t Config::*field, int64_t min_ms) {
  return [field, min_ms](Config& c, const std::string& v, std::string& err) {
    int64_t ms = 0;
    if (!parse_duration_ms(v, ms) || ms < min_ms) {
      err =
          "expected a duration of at least " + std::to_string(min_ms) + "ms (e.g. 30s, 250ms, 5m)";
      return false;
    }
    c.*field = ms;
    return true;
  };
}

auto string_setter(std::string Config::*field) {
  return [field](Config& c, const std::string& v, std::string&) {
    c.*field = v;
    return true;
  };
}

bool parse_host_port(const std::string& v, std::string& host, uint16_t& port_out, std::string& err);

bool apply_listen(Config& c, const std::string& v, std::string& err) {
  return parse_host_port(v, c.listen_host, c.listen_port, err);
}

bool apply_workers(Config& c, const std::string& v, std::string& err) {
  uint64_t n = 0;
  if (!parse_u64(v, n) || n > 256) {
    err = "expected 0 (one per core) to 256";
    return false;
  }
  c.workers = static_cast<int>(n);
  return true;
}

// A comma-separated list: items trimmed, empty ones dropped.
std::vector<std::string> comma_list(const std::string& v) {
  std::vector<std::string> out;
  for (std::string_view item : http::split_list(v, ',')) out.emplace_back(item);
  return out;
}

bool apply_origins(Config& c, const std::string& v, std::string& err) {
  c.allowed_origins = comma_list(v);
  if (c.allowed_origins.empty()) {
    err = "expected '*' or a comma-separated list of origins (https://app.example.com)";
    return false;
  }
  return true;
}

bool parse_host_port(const std::string& v, std::string& host, uint16_t& port_out,
                     std::string& err) {
  const size_t colon = v.rfind(':');
  uint64_t port = 0;
  if (colon == std::string::npos || !parse_u64(v.substr(colon + 1), port) || port > 65535) {
    err = "expected HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080; port 0 picks a free port)";
    return false;
  }
  host = v.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  port_out = static_cast<uint16_t>(port);
  return true;
}

bool apply_publish_listen(Config& c, const std::string& v, std::string& err) {
  if (v == "off" || v.empty()) {
    c.publish_listen_enabled = false;
    return true;
  }
  c.publish_listen_enabled = true;
  return parse_host_port(v, c.publish_listen_host, c.publish_listen_port, err);
}

bool apply_private_channels(Config& c, const std::string& v, std::string& err) {
  c.private_prefixes.clear();
  for (std::string item : comma_list(v)) {
    if (item == "*") item.clear();  // the empty prefix matches every channel
    for (char ch : item) {
      const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || std::strchr("_.:/=+-", ch) != nullptr;
      if (!ok) {
        err = "expected '*' or comma-separated channel-name prefixes (e.g. private:,presence:)";
        return false;
      }
    }
    c.private_prefixes.push_back(item);
  }
  return true;
}

// A secret kept in a file (out of ps and the environment); trailing newlines dropped.
bool read_secret_file(const std::string& v, std::string& out, std::string& err) {
  FILE* f = fopen(v.c_str(), "rb");
  if (f == nullptr) {
    err = std::string("cannot read: ") + strerror(errno);
    return false;
  }
  std::string secret;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0 && secret.size() < 65536) secret.append(buf, n);
  fclose(f);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) {
    err = "the file is empty";
    return false;
  }
  out = secret;
  return true;
}

bool apply_token_secret_file(Config& c, const std::string& v, std::string& err) {
  return read_secret_file(v, c.token_secret, err);
}

bool apply_webhook_secret_file(Config& c, const std::string& v, std::string& err) {
  return read_secret_file(v, c.webhook_secret, err);
}

bool apply_webhook_url(Config& c, const std::string& v, std::string& err) {
  if (!v.empty() && v.rfind("http://", 0) != 0) {
    err =
        "expected an http:// URL of the app's webhook endpoint (e.g. "
        "http://127.0.0.1/comet-webhook.php)";
    return false;
  }
  c.webhook_url = v;
  return true;
}

bool apply_auth_url(Config& c, const std::string& v, std::string& err) {
  if (!v.empty() && v.rfind("http://", 0) != 0) {
    err =
        "expected an http:// URL of the app's authorization endpoint (e.g. "
        "http://127.0.0.1/comet-auth.php)";
    return false;
  }
  c.auth_url = v;
  return true;
}

bool apply_trusted_proxies(Config& c, const std::string& v, std::string& err) {
  c.trusted_proxies.clear();
  for (const std::string& item : comma_list(v)) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, item.c_str(), buf) != 1 && inet_pton(AF_INET6, item.c_str(), buf) != 1) {
      err = "expected comma-separated numeric IP addresses (e.g. 127.0.0.1,::1)";
      return false;
    }
    c.trusted_proxies.push_back(item);
  }
  return true;
}

bool apply_transports(Config& c, const std::string& v, std::string& err) {
  std::vector<std::string> list;
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    if (comma == std::string::npos) comma = v.size();
    const std::string item = v.substr(start, comma - start);
    // The names themselves are checked against the transport table
    // (check_transport_names in transports/transport_table.h) once parsing is done.
    if (item.empty()) {
      err = "expected a comma-separated list of ws, sse, stream, poll";
      return false;
    }
    list.push_back(item);
    start = comma + 1;
  }
  c.transports = list;
  return true;
}

bool apply_redis(Config& c, const std::string& v, std::string& err) {
  if (!v.empty() && v.rfind("redis://", 0) != 0 && v.rfind("unix://", 0) != 0 &&
      v.rfind("redis+sentinel://", 0) != 0 && v.rfind("redis+cluster://", 0) != 0) {
    err =
        "expected redis://[:password@]host:port[/db], unix:///path, "
        "redis+sentinel://host:port[,host:port]/MASTER_NAME or "
        "redis+cluster://host:port[,host:port]";
    return false;
  }
  c.redis_url = v;
  return true;
}

bool apply_log_level(Config& c, const std::string& v, std::string& err) {
  if (v != "debug" && v != "info" && v != "warn" && v != "error") {
    err = "expected debug, info, warn or error";
    return false;
  }
  c.log_level = v;
  return true;
}

bool apply_ws_echo(Config& c, const std::string& v, std::string& err) {
  if (!v.empty() && v[0] != '/') {
    err = "expected a path starting with '/' (e.g. /echo)";
    return false;
  }
  c.ws_echo_path = v;
  return true;
}

const std::vector<Option>& options() {
  static const std::vector<Option> kOptions = {
      {"--listen", "COMET_LISTEN", "HOST:PORT", "address to listen on (default 127.0.0.1:8080)",
       apply_listen},
      {"--workers", "COMET_WORKERS", "N",
       "worker threads, each with its own event loop (default: one per core)", apply_workers},
      {"--redis", "COMET_REDIS_URL", "URL",
       "Redis URL (redis://, unix://, redis+sentinel://host:port[,...]/MASTER, "
       "redis+cluster://host:port[,...]); empty = embedded "
       "in-process bus (default)",
       apply_redis},
      {"--redis-key-ttl", "COMET_REDIS_KEY_TTL", "DURATION",
       "expire a channel's Redis keys this long after its last publish; 0 = never (default 0)",
       duration_setter(&Config::redis_key_ttl_ms, 0)},
      {"--redis-wait-replicas", "COMET_REDIS_WAIT_REPLICAS", "N",
       "answer a publish only once N replicas have it (Redis WAIT), or after "
       "--redis-wait-timeout with \"durable\":false; 0 = do not wait (default 0)",
       count_setter(&Config::redis_wait_replicas, 0)},
      {"--redis-wait-timeout", "COMET_REDIS_WAIT_TIMEOUT", "DURATION",
       "how long a publish waits for --redis-wait-replicas (default 500ms)",
       duration_setter(&Config::redis_wait_timeout_ms, 1)},
      {"--history-size", "COMET_HISTORY_SIZE", "N",
       "messages kept per channel for resume (default 1000)",
       count_setter(&Config::history_size, 1)},
      {"--history-age", "COMET_HISTORY_AGE", "DURATION", "how long messages are kept (default 1h)",
       duration_setter(&Config::history_age_ms, 1000)},
      {"--max-header-bytes", "COMET_MAX_HEADER_BYTES", "SIZE",
       "request line + headers limit, else 431 (default 8k)",
       size_setter(&Config::max_header_bytes, 256)},
      {"--max-url-bytes", "COMET_MAX_URL_BYTES", "SIZE",
       "request target limit, else 414 (default 4k)", size_setter(&Config::max_url_bytes, 64)},
      {"--max-message-bytes", "COMET_MAX_MESSAGE_BYTES", "SIZE",
       "largest publish body / WebSocket message, else 413 / close 1009 (default 64k)",
       size_setter(&Config::max_message_bytes, 16)},
      {"--max-channels", "COMET_MAX_CHANNELS", "N",
       "channels per connection, else 400 (default 32)", count_setter(&Config::max_channels, 1)},
      {"--max-output-bytes", "COMET_MAX_OUTPUT_BYTES", "SIZE",
       "unsent bytes per connection before a slow reader is cut off (default 1m)",
       size_setter(&Config::max_output_bytes, 4096)},
      {"--max-output-soft-bytes", "COMET_MAX_OUTPUT_SOFT_BYTES", "SIZE",
       "unsent bytes a stream may keep for at most one heartbeat interval; 0 = half of "
       "--max-output-bytes (default 0)",
       size_setter(&Config::max_output_soft_bytes, 0)},
      {"--max-output-total-bytes", "COMET_MAX_OUTPUT_TOTAL_BYTES", "SIZE",
       "unsent output of all connections; beyond it the slowest readers are cut first "
       "(default: a quarter of RAM, at most 1g)",
       size_setter(&Config::max_output_total_bytes, 0)},
      {"--max-connections", "COMET_MAX_CONNECTIONS", "N",
       "open connections in all; 0 = what the open-file limit allows after a reserve "
       "(default 0)",
       count_setter(&Config::max_connections, 0)},
      {"--max-connections-per-ip", "COMET_MAX_CONNECTIONS_PER_IP", "N",
       "open connections per client address (IPv6: per /64); 0 = no limit (default 2048)",
       count_setter(&Config::max_connections_per_ip, 0)},
      {"--trusted-proxies", "COMET_TRUSTED_PROXIES", "LIST",
       "addresses not limited per address: your proxies (default 127.0.0.1,::1)",
       apply_trusted_proxies},
      {"--request-timeout", "COMET_REQUEST_TIMEOUT", "DURATION",
       "time to send a whole request, and keep-alive idle time (default 10s)",
       duration_setter(&Config::request_timeout_ms, 100)},
      {"--poll-timeout", "COMET_POLL_TIMEOUT", "DURATION",
       "longest a long-poll is held (default 30s)", duration_setter(&Config::poll_timeout_ms, 100)},
      {"--heartbeat", "COMET_HEARTBEAT", "DURATION",
       "SSE heartbeat / WebSocket ping interval (default 15s)",
       duration_setter(&Config::heartbeat_ms, 100)},
      {"--sse-retry", "COMET_SSE_RETRY", "DURATION",
       "reconnect delay sent to EventSource (default 2s)",
       duration_setter(&Config::sse_retry_ms, 0)},
      {"--stream-byte-budget", "COMET_STREAM_BYTE_BUDGET", "SIZE",
       "legacy streams (xhr, iframe, multipart...) end after this many bytes (default 1m)",
       size_setter(&Config::stream_byte_budget, 1024)},
      {"--stream-padding", "COMET_STREAM_PADDING", "SIZE",
       "padding prelude of legacy streams (default 2k)",
       size_setter(&Config::stream_padding_bytes, 0)},
      {"--transports", "COMET_TRANSPORTS", "LIST",
       "enabled endpoints among ws, sse, stream, poll (default all)", apply_transports},
      {"--allowed-origins", "COMET_ALLOWED_ORIGINS", "LIST",
       "'*' or comma-separated origins allowed for WebSocket and CORS (default *)", apply_origins},
      {"--allowed-hosts", "COMET_ALLOWED_HOSTS", "LIST",
       "host names the public listener answers (Host header, port ignored); others get 403, "
       "against DNS rebinding (default: any)",
       [](Config& c, const std::string& v, std::string&) {
         c.allowed_hosts = comma_list(v);
         for (std::string& host : c.allowed_hosts) lower_ascii(host);
         return true;
       }},
      {"--publish-key", "COMET_PUBLISH_KEY", "KEY",
       "key required on POST /pub (X-Comet-Key header, Bearer token or key=); without it "
       "only the publish listener publishes",
       string_setter(&Config::publish_key)},
      {"--publish-listen", "COMET_PUBLISH_LISTEN", "HOST:PORT",
       "internal listener for /pub, /healthz, /metrics; never put it behind a proxy "
       "(default 127.0.0.1:8081; off = none)",
       apply_publish_listen},
      {"--publish-from-any", "COMET_PUBLISH_FROM_ANY", nullptr,
       "keyless publishes on the publish listener from non-loopback peers too (default: "
       "loopback only)",
       [](Config& c, const std::string& v, std::string&) {
         c.publish_from_any = v != "0" && v != "false";
         return true;
       }},
      {"--private-channels", "COMET_PRIVATE_CHANNELS", "LIST",
       "channel prefixes that need authorization; * = all (default private:,presence:)",
       apply_private_channels},
      {"--token-secret", "COMET_TOKEN_SECRET", "SECRET",
       "HMAC key of comet_token() tokens (HS256) for private channels",
       string_setter(&Config::token_secret)},
      {"--token-secret-file", "COMET_TOKEN_SECRET_FILE", "FILE",
       "read the token secret from FILE (keeps it out of ps and the environment)",
       apply_token_secret_file},
      {"--token-grace", "COMET_TOKEN_GRACE", "DURATION",
       "private subscriptions end this long after their authorization expires (default 30s)",
       duration_setter(&Config::token_grace_ms, 0)},
      {"--auth-url", "COMET_AUTH_URL", "URL",
       "the app's endpoint asked (with the browser's cookies) about private channels",
       apply_auth_url},
      {"--auth-timeout", "COMET_AUTH_TIMEOUT", "DURATION",
       "longest wait for an --auth-url answer; no answer = refused (default 2s)",
       duration_setter(&Config::auth_timeout_ms, 10)},
      {"--presence-grace", "COMET_PRESENCE_GRACE", "DURATION",
       "a presence member whose last subscription ended leaves after this long unless it "
       "comes back (default 5s; 0 = at once)",
       duration_setter(&Config::presence_grace_ms, 0)},
      {"--presence-max-members", "COMET_PRESENCE_MAX_MEMBERS", "N",
       "members per presence channel; a new user beyond it is refused (403) (default 1000)",
       count_setter(&Config::presence_max_members, 1)},
      {"--ws-deflate", "COMET_WS_DEFLATE", "on|off",
       "negotiate WebSocket permessage-deflate when the client offers it (default on)",
       [](Config& c, const std::string& v, std::string& err) {
         if (v != "on" && v != "off") {
           err = "expected on or off";
           return false;
         }
         c.ws_deflate = v == "on";
         return true;
       }},
      {"--ws-deflate-min-bytes", "COMET_WS_DEFLATE_MIN_BYTES", "SIZE",
       "WebSocket messages shorter than this are sent uncompressed (default 256)",
       size_setter(&Config::ws_deflate_min_bytes, 0)},
      {"--tls-cert", "COMET_TLS_CERT", "FILE",
       "PEM certificate (chain) for TLS on --listen (https, wss); needs --tls-key; SIGHUP "
       "reloads both",
       string_setter(&Config::tls_cert)},
      {"--tls-key", "COMET_TLS_KEY", "FILE", "PEM private key for --tls-cert",
       string_setter(&Config::tls_key)},
      {"--ws-echo-path", "COMET_WS_ECHO_PATH", "PATH",
       "enable a WebSocket echo endpoint (conformance tests)", apply_ws_echo},
      {"--static-dir", "COMET_STATIC_DIR", "DIR", "serve files from DIR at / (the demo page)",
       string_setter(&Config::static_dir)},
      {"--webhook-url", "COMET_WEBHOOK_URL", "URL",
       "the app's endpoint POSTed presence events (channel_occupied, member_added, ...); "
       "needs --webhook-secret or --webhook-secret-file",
       apply_webhook_url},
      {"--webhook-secret", "COMET_WEBHOOK_SECRET", "SECRET",
       "HMAC-SHA256 key of the X-Comet-Signature of webhook requests",
       string_setter(&Config::webhook_secret)},
      {"--webhook-secret-file", "COMET_WEBHOOK_SECRET_FILE", "FILE",
       "read the webhook secret from FILE", apply_webhook_secret_file},
      {"--webhook-timeout", "COMET_WEBHOOK_TIMEOUT", "DURATION",
       "longest wait for the webhook endpoint's answer; then the batch is retried (default 5s)",
       duration_setter(&Config::webhook_timeout_ms, 10)},
      {"--webhook-queue", "COMET_WEBHOOK_QUEUE", "N",
       "webhook events kept while the endpoint is slow or down; beyond it the oldest are "
       "dropped (default 10000)",
       count_setter(&Config::webhook_queue, 1)},
      {"--js-client", "COMET_JS_CLIENT", "FILE",
       "file served at /comet.js instead of the built-in client (default: built in)",
       string_setter(&Config::js_client_path)},
      {"--log-level", "COMET_LOG_LEVEL", "LEVEL", "debug, info, warn or error (default info)",
       apply_log_level},
  };
  return kOptions;
}

}  // namespace

bool parse_duration_ms(const std::string& text, int64_t& out) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  uint64_t value = 0;
  if (digits == 0 || digits > 12 || !parse_u64(text.substr(0, digits), value)) return false;
  const std::string unit = text.substr(digits);
  int64_t scale;
  if (unit.empty() || unit == "s")
    scale = 1000;
  else if (unit == "ms")
    scale = 1;
  else if (unit == "m")
    scale = 60 * 1000;
  else if (unit == "h")
    scale = 3600 * 1000;
  else
    return false;
  out = static_cast<int64_t>(value) * scale;
  return true;
}

bool parse_size(const std::string& text, size_t& out) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  uint64_t value = 0;
  if (digits == 0 || digits > 12 || !parse_u64(text.substr(0, digits), value)) return false;
  std::string unit = text.substr(digits);
  lower_ascii(unit);
  uint64_t scale;
  if (unit.empty() || unit == "b")
    scale = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib")
    scale = 1024;
  else if (unit == "m" || unit == "mb" || unit == "mib")
    scale = 1024 * 1024;
  else if (unit == "g" || unit == "gb" || unit == "gib")
    scale = 1024ull * 1024 * 1024;
  else
    return false;
  if (value > UINT64_MAX / scale || value * scale > SIZE_MAX) return false;
  out = static_cast<size_t>(value * scale);
  return true;
}

ConfigResult parse_config(int argc, const char* const* argv, const char* const* env) {
  ConfigResult result;
  auto fail = [&result](const std::string& where, const std::string& why) {
    result.ok = false;
    result.error = where + ": " + why;
    return result;
  };
  if (env != nullptr) {
    for (const char* const* e = env; *e != nullptr; ++e) {
      std::string_view entry(*e);
      if (entry.rfind("COMET_", 0) != 0) continue;
      const size_t eq = entry.find('=');
      if (eq == std::string_view::npos) continue;
      const std::string name(entry.substr(0, eq));
      const std::string value(entry.substr(eq + 1));
      bool known = false;
      for (const Option& opt : options()) {
        if (name != opt.env) continue;
        known = true;
        std::string why;
        std::string effective = value;
        if (opt.value_name == nullptr) {
          if (value.empty())
            effective = "0";
          else if (value != "1" && value != "true" && value != "0" && value != "false")
            return fail(name + "=" + value, "expected 1/true or 0/false");
        }
        if (!opt.apply(result.config, effective, why)) return fail(name + "=" + value, why);
      }
      // Other COMET_* variables belong to the PHP client or the tests and often share
      // one environment with the sidecar: mention them, do not refuse to start.
      if (!known)
        result.warnings.push_back(name + " is not a sidecar setting; ignored (see --help)");
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      result.show_help = true;
      result.ok = true;
      return result;
    }
    std::string value;
    bool has_inline_value = false;
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline_value = true;
    }
    const Option* match = nullptr;
    for (const Option& opt : options())
      if (arg == opt.flag) match = &opt;
    if (match == nullptr) return fail(arg, "unknown option (see --help)");
    if (match->value_name != nullptr && !has_inline_value) {
      if (i + 1 >= argc) return fail(arg, std::string("needs a value: ") + match->value_name);
      value = argv[++i];
    }
    if (match->value_name == nullptr) {
      // A switch alone means on; "--publish-from-any=false" must mean off.
      if (!has_inline_value)
        value = "1";
      else if (value != "1" && value != "true" && value != "0" && value != "false")
        return fail(arg + "=" + value, "expected 1/true or 0/false");
    }
    std::string why;
    if (!match->apply(result.config, value, why)) return fail(arg + " " + value, why);
  }
  result.ok = true;
  return result;
}

std::string config_help() {
  std::string out =
      "comet-sidecar: push server for PHP apps (WebSocket, SSE, long-poll, JSONP, polling)\n\n"
      "usage: comet-sidecar [options]\n\n"
      "Every option can also be set by the environment variable shown; flags win.\n\n";
  for (const Option& opt : options()) {
    std::string left = std::string("  ") + opt.flag;
    if (opt.value_name != nullptr) left += std::string(" ") + opt.value_name;
    if (left.size() < 30) left.resize(30, ' ');
    out += left + " " + opt.help + "\n";
    out += std::string(31, ' ') + "[" + opt.env + "]\n";
  }
  out += "  -h, --help                   this text\n";
  return out;
}

}  // namespace comet
