#include "auth/access.h"

#include "presence/presence_registry.h"

namespace comet {

bool is_private_channel(const Config& config, std::string_view channel) {
  // A presence member needs a user id, which only an authorization gives: presence
  // channels are private whatever --private-channels says (docs/protocol.md, "Presence").
  if (is_presence_channel(channel)) return true;
  for (const std::string& prefix : config.private_prefixes)
    if (channel.substr(0, prefix.size()) == prefix) return true;
  return false;
}

bool origin_listed(const Config& config, std::string_view origin) {
  if (origin.empty()) return false;
  for (const std::string& entry : config.allowed_origins)
    if (entry != "*" && entry == origin) return true;
  return false;
}

std::string referer_origin(const http::Request& request) {
  const std::string* referer = request.header("referer");
  if (referer == nullptr) return "";
  const size_t scheme_end = referer->find("://");
  if (scheme_end == std::string::npos || scheme_end == 0) return "";
  const size_t path = referer->find_first_of("/?#", scheme_end + 3);
  return referer->substr(0, path);
}

bool cookies_count(const Config& config, const http::Request& request, bool embedded) {
  if (const std::string* origin = request.header("origin")) return origin_listed(config, *origin);
  if (embedded) return origin_listed(config, referer_origin(request));
  return true;
}

std::string_view cookie_value(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view pair = header.substr(pos, end - pos);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      std::string_view value = pair.substr(eq + 1);
      while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      return value;
    }
    pos = end + 1;
  }
  return {};
}

std::string_view bearer_token(const http::Request& request) {
  if (const std::string* auth = request.header("authorization")) {
    constexpr std::string_view kBearer = "Bearer ";
    if (auth->size() > kBearer.size() && auth->compare(0, kBearer.size(), kBearer) == 0)
      return std::string_view(*auth).substr(kBearer.size());
  }
  return {};
}

Credentials find_credentials(const Config& config, const http::Request& request,
                             const http::QueryParams& query, bool embedded) {
  Credentials out;
  out.token = bearer_token(request);
  if (out.token.empty())
    if (const std::string* token = query.get("token")) out.token = *token;
  const std::string* cookie = request.header("cookie");
  if (cookie != nullptr && !cookie->empty() && cookies_count(config, request, embedded)) {
    if (out.token.empty()) out.token = cookie_value(*cookie, "comet_token");
    if (!config.auth_url.empty()) out.cookie = *cookie;
  }
  return out;
}

}  // namespace comet
