#include "http/http_url.h"

#include <event2/http.h>
#include <event2/util.h>

namespace comet::http {

bool parse_http_url(const std::string& url, HttpUrl& out) {
  evhttp_uri* uri = evhttp_uri_parse(url.c_str());
  if (uri == nullptr) return false;
  const char* scheme = evhttp_uri_get_scheme(uri);
  const char* host = evhttp_uri_get_host(uri);
  const int port = evhttp_uri_get_port(uri);
  const bool ok = scheme != nullptr && evutil_ascii_strcasecmp(scheme, "http") == 0 &&
                  host != nullptr && host[0] != '\0' && (port == -1 || (port > 0 && port <= 65535));
  if (ok) {
    out.host = host;
    out.host_header = out.host;
    if (out.host.size() > 2 && out.host.front() == '[')
      out.host = out.host.substr(1, out.host.size() - 2);
    out.port = port == -1 ? 80 : static_cast<uint16_t>(port);
    if (out.port != 80) out.host_header += ":" + std::to_string(out.port);
    const char* path = evhttp_uri_get_path(uri);
    out.target = path != nullptr && path[0] != '\0' ? path : "/";
    if (const char* query = evhttp_uri_get_query(uri)) out.target += std::string("?") + query;
  }
  evhttp_uri_free(uri);
  return ok;
}

}  // namespace comet::http
