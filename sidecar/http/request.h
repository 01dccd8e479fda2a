// A parsed HTTP/1.x request as produced by RequestParser.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace comet::http {

// One request head plus its (de-chunked) body. Plain data: the parser fills it in and
// hands it over; nothing here re-validates what the parser already checked.
struct Request {
  std::string method;  // "GET", "POST", ... exactly as sent (methods are case-sensitive).
  std::string target;  // Raw request target, e.g. "/sse?ch=a%3Ab".
  std::string path;    // Percent-decoded path part of target ("/sse"); '+' stays '+'.
  std::string query;   // Raw query string without '?', not decoded ("" when absent).
  // Header names lower-cased, values trimmed of surrounding spaces/tabs, in arrival order.
  // Repeated headers stay separate entries; trailers of chunked bodies are not included.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // Request body, de-chunked; empty for requests without one.
  unsigned http_major = 1;
  unsigned http_minor = 1;
  bool keep_alive = true;  // From http_should_keep_alive (HTTP/1.0 needs Connection: keep-alive).
  // http_parser's upgrade flag: "Connection: upgrade" plus an Upgrade header (also set for
  // CONNECT). When true the bytes after the head belong to the new protocol.
  bool upgrade = false;

  // Returns the value of the first header named `lower_name` (compared ASCII
  // case-insensitively), or nullptr when absent. The pointer lives as long as this Request.
  const std::string* header(std::string_view lower_name) const;
};

}  // namespace comet::http
