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

// "host:port" or "[v6]:port" (the port is required: sentinels listen on 26379).
std::string parse_host_port(std::string_view text, std::pair<std::string, int>& out,
                            const char* what = "sentinel") {
  const std::string needs = std::string(what) + " needs host:port";
  std::string_view host = text;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return "unterminated [IPv6] host";
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return needs;
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return needs;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) return needs;
  out.first.assign(host);
  if (!parse_int(port, 1, 65535, out.second)) return std::string("bad ") + what + " port";
  return "";
}

std::string parse_host_list(std::string_view hosts, const char* what,
                            std::vector<std::pair<std::string, int>>& out) {
  for (;;) {
    const size_t comma = hosts.find(',');
    std::pair<std::string, int> node;
    const std::string error = parse_host_port(hosts.substr(0, comma), node, what);
    if (!error.empty()) return error;
    out.push_back(std::move(node));
    if (comma == std::string_view::npos) return "";
    hosts = hosts.substr(comma + 1);
  }
}

std::string parse_cluster_url(std::string_view rest, RedisAddress& out) {
  std::string error = take_credentials(rest, out);
  if (!error.empty()) return error;
  if (rest.find_first_of("/?") != std::string_view::npos)
    return "redis+cluster:// takes only host:port[,host:port...] (a cluster has database 0 only)";
  if (rest.empty()) return "redis+cluster:// needs at least one node host:port";
  out.master_only = true;
  return parse_host_list(rest, "cluster node", out.cluster_seeds);
}

std::string parse_sentinel_url(std::string_view rest, RedisAddress& out) {
  std::string error = take_credentials(rest, out);
  if (!error.empty()) return error;
  const size_t q = rest.find('?');
  const std::string_view query =
      q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
  rest = rest.substr(0, q);
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash + 1 >= rest.size())
    return "redis+sentinel:// needs the master's name: redis+sentinel://host:26379/mymaster";
  std::string_view hosts = rest.substr(0, slash);
  if (!percent_decode(rest.substr(slash + 1), out.master_name, false) ||
      out.master_name.find('/') != std::string::npos)
    return "bad master name";
  if (hosts.empty()) return "redis+sentinel:// needs at least one sentinel host:port";
  error = parse_host_list(hosts, "sentinel", out.sentinels);
  if (!error.empty()) return error;
  std::string_view options = query;
  while (!options.empty()) {
    const size_t amp = options.find('&');
    const std::string_view option = options.substr(0, amp);
    options = amp == std::string_view::npos ? std::string_view() : options.substr(amp + 1);
    const size_t eq = option.find('=');
    const std::string_view name = option.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : option.substr(eq + 1);
    if (name == "db") {
      if (!parse_int(value, 0, 1000000, out.db)) return "db must be a number";
    } else if (name == "sentinel_username") {
      if (!percent_decode(value, out.sentinel_username, false)) return "bad sentinel_username";
    } else if (name == "sentinel_password") {
      if (!percent_decode(value, out.sentinel_password, false)) return "bad sentinel_password";
    } else {
      return "unknown redis+sentinel:// option '" + std::string(name) +
             "' (db, sentinel_username, sentinel_password)";
    }
  }
  return "";
}

}  // namespace

std::string parse_redis_url(std::string_view url, RedisAddress& out) {
  out = RedisAddress{};
  constexpr std::string_view kSentinel = "redis+sentinel://";
  if (url.substr(0, kSentinel.size()) == kSentinel)
    return parse_sentinel_url(url.substr(kSentinel.size()), out);
  constexpr std::string_view kCluster = "redis+cluster://";
  if (url.substr(0, kCluster.size()) == kCluster)
    return parse_cluster_url(url.substr(kCluster.size()), out);
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
    return "expected redis://[:password@]host:port[/db], unix:///path or "
           "redis+sentinel://host:port[,host:port]/MASTER_NAME or "
           "redis+cluster://host:port[,host:port]";
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
