#include "server/http_policy.h"

namespace comet {

OriginCheck check_origin(const Config& config, const http::Request& request) {
  OriginCheck result;
  const std::string* origin = request.header("origin");
  if (origin == nullptr) return result;
  bool allowed = false;
  for (const std::string& entry : config.allowed_origins)
    if (entry == "*" || entry == *origin) allowed = true;
  if (!allowed) {
    result.allowed = false;
    return result;
  }
  // Echo the origin instead of '*': browsers refuse '*' on credentialed requests, and
  // Vary keeps shared caches from serving one origin's answer to another.
  if (origin->find_first_of("\r\n") == std::string::npos)
    result.cors_headers = "Access-Control-Allow-Origin: " + *origin +
                          "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n";
  return result;
}

std::string preflight_headers(const char* allowed_methods) {
  return std::string("Access-Control-Allow-Methods: ") + allowed_methods +
         "\r\nAccess-Control-Allow-Headers: Content-Type, Last-Event-ID, X-Comet-Key, "
         "Authorization\r\nAccess-Control-Max-Age: 600\r\n";
}

}  // namespace comet
