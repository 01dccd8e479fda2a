#include "bridge/redis_url.h"

#include <charconv>

#include "util/percent_decode.h"

namespace comet {
namespace {

bool parse_int(std::string_view text, int min, int max, int& out) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    return false;
  out = value;
  return true;
}

// Splits "[[user]:password@]rest" and percent-decodes the credentials.
std::string take_credentials(std::string_view& rest, RedisAddress& out) {
  const size_t at = rest.rfind('@');
  if (at == std::string_view::npos) return "";
  const std::string_view userinfo = rest.substr(0, at);
  rest = rest.substr(at + 1);
  const size_t colon = userinfo.find(':');
  const std::string_view user =
      colon == std::string_view::npos ? std::string_view() : userinfo.substr(0, colon);
  const std::string_view pass =
      colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
  if (!percent_decode(user, out.username, false) || !percent_decode(pass, out.password, false))
    return "bad percent-escape in the credentials";
  return "";
}

}  // namespace

std::string parse_redis_url(std::string_view url, RedisAddress& out) {
  out = RedisAddress{};
  constexpr std::string_view kRedis = "redis://";
  constexpr std::string_view kUnix = "unix://";
  if (url.substr(0, kUnix.size()) == kUnix) {
    std::string_view rest = url.substr(kUnix.size());
    std::string error = take_credentials(rest, out);
    if (!error.empty()) return error;
    const size_t q = rest.find('?');
    std::string_view query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
    rest = rest.substr(0, q);
    if (rest.empty() || rest[0] != '/')
      return "unix:// needs an absolute socket path (unix:///run/redis.sock)";
    out.unix_socket = true;
    out.path.assign(rest);
    if (!query.empty()) {
      if (query.substr(0, 3) != "db=" || !parse_int(query.substr(3), 0, 1000000, out.db))
        return "unix:// accepts only ?db=N";
    }
    return "";
  }
  if (url.substr(0, kRedis.size()) != kRedis)
    return "expected redis://[:password@]host:port[/db] or unix:///path";
  std::string_view rest = url.substr(kRedis.size());
  std::string error = take_credentials(rest, out);
  if (!error.empty()) return error;
  const size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !parse_int(db, 0, 1000000, out.db))
      return "database must be a number (redis://host:6379/0)";
  }
  if (!hostport.empty() && hostport[0] == '[') {
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return "unterminated [IPv6] host";
    out.host.assign(hostport.substr(1, close - 1));
    hostport = hostport.substr(close + 1);
    if (!hostport.empty()) {
      if (hostport[0] != ':' || !parse_int(hostport.substr(1), 1, 65535, out.port))
        return "bad port";
    }
    return "";
  }
  const size_t colon = hostport.rfind(':');
  if (colon != std::string_view::npos) {
    if (!parse_int(hostport.substr(colon + 1), 1, 65535, out.port)) return "bad port";
    hostport = hostport.substr(0, colon);
  }
  if (!hostport.empty()) out.host.assign(hostport);
  return "";
}

}  // namespace comet
