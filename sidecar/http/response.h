#pragma once
// Builds HTTP/1.1 response heads and small complete responses.

#include <string>
#include <string_view>

namespace comet::http {

/** Reason phrase for a status code ("Not Found"); "Unknown" for codes we never send. */
const char* status_text(int status);

/** An HTTP/1.1 response head under construction. */
class ResponseHead {
 public:
  explicit ResponseHead(int status);
  /** Adds one header line; name and value must not contain CR or LF. */
  ResponseHead& header(std::string_view name, std::string_view value);
  /** Adds complete header lines ("Name: value\r\n" each), such as an origin check's CORS headers.
   */
  ResponseHead& lines(std::string_view header_lines);
  /** Finishes the head of a complete response with Content-Length and Connection headers, and
   * appends `body`. */
  std::string with_body(std::string_view body, bool keep_alive) const;
  /** The same, appended to `out` (a buffer the caller reuses). */
  void append_with_body(std::string& out, std::string_view body, bool keep_alive) const;
  /** Finishes the head of a response that has no body and no Content-Length (a 304). */
  std::string without_body(bool keep_alive) const;
  /** Finishes the head of a response whose body runs until the server closes the connection. */
  std::string streaming() const;

 private:
  std::string text_;
};

/**
 * A complete error response whose body is {"error": message, "status": status} (plus
 * "ch": channel when given: the private channel a refusal is about).
 * Errors that leave the connection in an unknown state pass keep_alive = false.
 */
std::string error_response(int status, std::string_view message, bool keep_alive,
                           std::string_view extra_headers = {}, std::string_view channel = {});

}  // namespace comet::http
