#pragma once
// An http:// URL the sidecar sends requests to (--auth-url, --webhook-url), split into
// what evhttp's client needs.

#include <cstdint>
#include <string>

namespace comet::http {

struct HttpUrl {
  std::string host;         // to connect to: an IPv6 literal without its brackets
  std::string host_header;  // the Host header: brackets kept, ":port" unless 80
  std::string target;       // path and query ("/" when the URL has no path)
  uint16_t port = 80;
};

/**
 * Parses an absolute http:// URL (scheme case-insensitive, a host, an optional port
 * 1-65535). Returns false, leaving `out` unspecified, for anything else (https://, no
 * host, a bad port).
 */
bool parse_http_url(const std::string& url, HttpUrl& out);

}  // namespace comet::http
