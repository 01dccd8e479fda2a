#include "transports/poll_answer.h"

#include "http/response.h"

namespace comet {

void begin_poll_body(std::string& body, std::string_view callback) {
  if (!callback.empty()) {
    body += "/**/";
    body += callback;
    body += '(';
  }
  body += "{\"cursor\":\"";  // cursor characters never need JSON escaping
}

void begin_poll_messages(std::string& body) { body += "\",\"messages\":["; }

void end_poll_body(std::string& body, std::string_view callback, std::string_view fields) {
  body += ']';
  body += fields;
  body += '}';
  body += callback.empty() ? "\n" : ");\n";
}

void append_poll_response(std::string& out, std::string_view body, std::string_view callback,
                          std::string_view cors_headers, bool keep_alive) {
  http::ResponseHead(200)
      .lines(cors_headers)
      .header("Content-Type", callback.empty() ? "application/json; charset=utf-8"
                                               : "application/javascript; charset=utf-8")
      .header("Cache-Control", "no-store")
      // JSONP is script: never let a browser sniff it as anything else.
      .header("X-Content-Type-Options", "nosniff")
      .append_with_body(out, body, keep_alive);
}

}  // namespace comet
