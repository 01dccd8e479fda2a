#include "server/http_policy.h"

#include "util/ascii.h"

namespace comet {

OriginCheck check_origin(const Config& config, const http::Request& request,
                         bool allow_credentials) {
  OriginCheck result;
  const std::string* origin = request.header("origin");
  if (origin == nullptr) return result;
  bool by_wildcard = false, by_name = false;
  for (const std::string& entry : config.allowed_origins) {
    if (entry == "*") by_wildcard = true;
    if (entry == *origin) by_name = true;
  }
  if (!by_wildcard && !by_name) {
    result.allowed = false;
    return result;
  }
  if (origin->find_first_of("\r\n") != std::string::npos) return result;
  // Echo the origin (Vary keeps shared caches from serving one origin's answer to
  // another). Credentials only for origins listed by name: with '*' any site could
  // read answers made with the user's cookies.
  result.cors_headers = "Access-Control-Allow-Origin: " + *origin + "\r\n";
  if (by_name && allow_credentials)
    result.cors_headers += "Access-Control-Allow-Credentials: true\r\n";
  result.cors_headers += "Vary: Origin\r\n";
  return result;
}

bool host_allowed(const Config& config, const http::Request& request) {
  if (config.allowed_hosts.empty()) return true;
  const std::string* host = request.header("host");
  if (host == nullptr) return false;
  std::string name = *host;
  if (!name.empty() && name.front() == '[') {
    name = name.substr(1, name.find(']') == std::string::npos ? 0 : name.find(']') - 1);
  } else if (const size_t colon = name.rfind(':'); colon != std::string::npos) {
    name.resize(colon);
  }
  lower_ascii(name);
  for (const std::string& allowed : config.allowed_hosts)
    if (allowed == name) return true;
  return false;
}

std::string preflight_headers(const char* allowed_methods) {
  return std::string("Access-Control-Allow-Methods: ") + allowed_methods +
         "\r\nAccess-Control-Allow-Headers: Content-Type, Last-Event-ID, X-Comet-Key, "
         "Authorization\r\nAccess-Control-Max-Age: 600\r\n";
}

}  // namespace comet
