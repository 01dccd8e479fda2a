#pragma once
// Who may see what, from one request: which channels are private, which credentials it
// carries, and whether its cookies count (docs/protocol.md, "The ambient-credential
// rule"). Pure functions of the config and the request.

#include <string>
#include <string_view>

#include "config/config.h"
#include "http/query.h"
#include "http/request.h"

namespace comet {

/**
 * True when `channel` starts with one of --private-channels' prefixes, or is a presence
 * channel (always private: a member needs the user id of an authorization).
 */
bool is_private_channel(const Config& config, std::string_view channel);

/** True when some channel can be private: always, since presence channels are. */
inline bool has_private_channels(const Config&) { return true; }

/** True when `origin` is in --allowed-origins by name (a match by '*' does not count). */
bool origin_listed(const Config& config, std::string_view origin);

/** The origin part (scheme://host[:port]) of the Referer header, "" when none. */
std::string referer_origin(const http::Request& request);

/**
 * Whether cookies sent with `request` may authorize it. `embedded`: the answer runs in
 * the page that loaded it (JSONP, iframe, htmlfile), which any site can make a browser
 * load with the user's cookies.
 */
bool cookies_count(const Config& config, const http::Request& request, bool embedded);

/** What a request presents for private channels. Views into the request. */
struct Credentials {
  std::string_view token;   // Bearer header, token= or the comet_token cookie; "" = none
  std::string_view cookie;  // the Cookie header to forward to --auth-url; "" = none usable
};

/** Finds the credentials in precedence order (protocol.md, "Tokens"). */
Credentials find_credentials(const Config& config, const http::Request& request,
                             const http::QueryParams& query, bool embedded);

/** The credential of an `Authorization: Bearer X` header, "" when there is none. */
std::string_view bearer_token(const http::Request& request);

/** The value of cookie `name` in a Cookie header, "" when absent. */
std::string_view cookie_value(std::string_view cookie_header, std::string_view name);

}  // namespace comet
