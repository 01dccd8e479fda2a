// comet-bench: minimal HTTP/1.1 response parsing shared by subscribers and publishers.
#pragma once

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace bench {

struct HttpHead {
  int status = 0;
  size_t header_len = 0;
  int64_t content_length = -1;
  bool chunked = false;
  bool close = false;
  std::string etag, last_modified;
  std::string ws_extensions;  // Sec-WebSocket-Extensions of a 101 answer
};

inline bool ieq_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (size_t i = 0; i < name.size(); i++)
    if (tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  return true;
}

inline std::string_view header_value(std::string_view line, size_t name_len) {
  std::string_view v = line.substr(name_len);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\r')) v.remove_suffix(1);
  return v;
}

// Returns false if the head is not complete yet.
inline bool parse_head(std::string_view in, HttpHead& h) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return false;
  h.header_len = end + 4;
  std::string_view head = in.substr(0, end);
  if (head.size() > 12 && head.substr(0, 5) == "HTTP/")
    h.status = atoi(std::string(head.substr(9, 3)).c_str());
  size_t p = head.find("\r\n");
  while (p != std::string_view::npos) {
    size_t q = head.find("\r\n", p + 2);
    std::string_view line =
        head.substr(p + 2, q == std::string_view::npos ? std::string_view::npos : q - p - 2);
    if (ieq_prefix(line, "content-length:")) {
      h.content_length = atoll(std::string(header_value(line, 15)).c_str());
    } else if (ieq_prefix(line, "transfer-encoding:")) {
      h.chunked = header_value(line, 18).find("chunked") != std::string_view::npos;
    } else if (ieq_prefix(line, "connection:")) {
      std::string_view v = header_value(line, 11);
      h.close = v.size() == 5 && ieq_prefix(v, "close");
    } else if (ieq_prefix(line, "etag:")) {
      h.etag = header_value(line, 5);
    } else if (ieq_prefix(line, "last-modified:")) {
      h.last_modified = header_value(line, 14);
    } else if (ieq_prefix(line, "sec-websocket-extensions:")) {
      if (!h.ws_extensions.empty()) h.ws_extensions += ", ";
      h.ws_extensions += header_value(line, 25);
    }
    p = q;
  }
  return true;
}

// Decodes a complete chunked body at the start of `in`. Returns bytes consumed, 0 if
// incomplete, SIZE_MAX on a malformed body.
inline size_t dechunk_complete(std::string_view in, std::string& out) {
  size_t p = 0;
  out.clear();
  for (;;) {
    size_t eol = in.find("\r\n", p);
    if (eol == std::string_view::npos) return 0;
    char* endp;
    std::string line(in.substr(p, eol - p));
    unsigned long long n = strtoull(line.c_str(), &endp, 16);
    if (endp == line.c_str()) return SIZE_MAX;
    p = eol + 2;
    if (n == 0) {
      // trailers end with an empty line
      size_t e = in.find("\r\n", p);
      if (e == std::string_view::npos) return 0;
      return e + 2;
    }
    if (in.size() < p + n + 2) return 0;
    out.append(in.substr(p, n));
    p += n + 2;
  }
}

}  // namespace bench
