#pragma once
// Request checks shared by every endpoint: origin allowlist / CORS headers.

#include <string>

#include "config/config.h"
#include "http/request.h"

namespace comet {

/** Outcome of checking a request's Origin against --allowed-origins. */
struct OriginCheck {
  bool allowed = true;
  std::string cors_headers;  // header lines ("Name: value\r\n") to add to the response
};

/**
 * Requests without an Origin header (curl, PHP, same-origin navigations) pass with no
 * CORS headers. Others must match the allowlist ('*' matches all) and get
 * Access-Control-Allow-Origin echoing their origin; credentials are allowed only for an
 * origin listed by name (never by '*') and only when `allow_credentials` (not on /pub).
 */
OriginCheck check_origin(const Config& config, const http::Request& request,
                         bool allow_credentials = true);

/**
 * Whether the request's Host names this server (--allowed-hosts; any when empty): a
 * page on another name that resolves to 127.0.0.1 (DNS rebinding) is refused.
 */
bool host_allowed(const Config& config, const http::Request& request);

/** Headers for an OPTIONS preflight answer (on top of check_origin's). */
std::string preflight_headers(const char* allowed_methods);

}  // namespace comet
