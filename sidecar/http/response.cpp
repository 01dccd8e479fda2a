#include "http/response.h"

#include "util/json_escape.h"

namespace comet::http {

const char* status_text(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

ResponseHead::ResponseHead(int status) {
  text_.reserve(256);  // a typical head: one allocation, not one per header
  text_ += "HTTP/1.1 ";
  text_ += std::to_string(status);
  text_ += ' ';
  text_ += status_text(status);
  text_ += "\r\n";
}

ResponseHead& ResponseHead::header(std::string_view name, std::string_view value) {
  text_.append(name);
  text_ += ": ";
  text_.append(value);
  text_ += "\r\n";
  return *this;
}

ResponseHead& ResponseHead::lines(std::string_view header_lines) {
  text_.append(header_lines);
  return *this;
}

std::string ResponseHead::with_body(std::string_view body, bool keep_alive) const {
  std::string out;
  append_with_body(out, body, keep_alive);
  return out;
}

void ResponseHead::append_with_body(std::string& out, std::string_view body,
                                    bool keep_alive) const {
  out.reserve(out.size() + text_.size() + body.size() + 64);
  out += text_;
  out += "Content-Length: ";
  out += std::to_string(body.size());
  out += "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  out.append(body);
}

std::string ResponseHead::without_body(bool keep_alive) const {
  return text_ + (keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
}

std::string ResponseHead::streaming() const { return text_ + "Connection: close\r\n\r\n"; }

std::string error_response(int status, std::string_view message, bool keep_alive,
                           std::string_view extra_headers, std::string_view channel) {
  std::string body = "{\"error\":";
  append_json_string(body, message);
  body += ",\"status\":" + std::to_string(status);
  if (!channel.empty()) {
    body += ",\"ch\":";
    append_json_string(body, channel);
  }
  body += "}\n";
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
  head += "Content-Type: application/json\r\nCache-Control: no-store\r\n";
  head.append(extra_headers);
  head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  head += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return head + body;
}

}  // namespace comet::http
