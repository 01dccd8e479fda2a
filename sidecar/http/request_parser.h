// Incremental HTTP/1.x request parser (wraps libhttp-parser) for keep-alive connections
// with pipelining and protocol upgrades.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "http/request.h"

// libhttp-parser's handle; kept opaque so its C macros and global enums stay out of every
// file that includes this header.
struct http_parser;

namespace comet::http {

// Per-request resource caps. All limits are inclusive: exactly max_* bytes is accepted.
// libhttp-parser has its own process-wide 80 KiB head cap, so max_header_bytes above that
// still fails (with 431) at 80 KiB.
struct ParserLimits {
  size_t max_header_bytes = 8192;   // Request line + all header lines + the final empty line.
  size_t max_body_bytes = 1 << 20;  // Decoded body size (after de-chunking).
  size_t max_url_bytes = 4096;      // Raw request target.
  // RFC 9112 section 3.2: exactly one Host on HTTP/1.1, at most one on 1.0, else 400.
  // (The server turns it on; off, the parser also serves clients of other dialects.)
  bool require_host = false;
};

enum class ParseStatus {
  kNeedMore,  // Everything offered was consumed; feed more bytes when they arrive.
  // The head is complete and carried "Expect: 100-continue" with a body to follow: write
  // "HTTP/1.1 100 Continue\r\n\r\n", drain `consumed` (exactly the head), then keep
  // feeding. Reported at most once per request; request() already holds the head.
  kContinue,
  kComplete,  // request() is complete; bytes after `consumed` belong to the next request.
  kError,     // Malformed or over a limit; see error_status()/error_reason().
};

struct ParseResult {
  ParseStatus status;
  size_t consumed;  // Bytes of the fed data that were used; the caller drains exactly these.
};

// Parses one request at a time from a byte stream. Never buffers unconsumed input: the
// caller owns the connection buffer and drains `consumed` bytes after each call.
class RequestParser {
 public:
  // Starts ready to parse the first request. `limits` is copied.
  explicit RequestParser(const ParserLimits& limits);
  ~RequestParser();
  // Movable, even mid-request; a moved-from parser may only be destroyed or assigned to.
  RequestParser(RequestParser&&) noexcept;
  RequestParser& operator=(RequestParser&&) noexcept;
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Feeds bytes and returns how far parsing got. Stops right after one complete request
  // (kComplete) so pipelined requests stay in the caller's buffer; for an Upgrade (or
  // CONNECT) request stops right after the head (kComplete, request().upgrade == true)
  // and the remaining bytes, even ones a Content-Length announced, belong to the new
  // protocol. The caller drains exactly `consumed` bytes and calls again with whatever is
  // left plus new data. Calling feed() after kComplete starts the next request as reset()
  // would; after kError every call returns {kError, 0} until reset().
  ParseResult feed(std::string_view data);

  // The request being parsed: partial until kContinue/kComplete, complete afterwards.
  const Request& request() const;

  // Moves the request out, leaving an empty Request behind. Meant for use after kComplete.
  Request take_request();

  // Discards all state (including a previous error) so the next byte fed starts a new
  // request on the same connection.
  void reset();

  // HTTP status to answer a kError with, 0 if there was no error: 400 malformed,
  // 413 body too large, 414 request target / request line too long, 417 unknown Expect,
  // 431 header section too large, 501 unknown method or unsupported transfer-encoding,
  // 505 HTTP major version other than 1.
  int error_status() const;

  // Short human-readable cause of the error ("" if none), e.g.
  // "header section exceeds 8192 bytes". Valid until the next feed()/reset().
  const char* error_reason() const;

 private:
  struct Callbacks;  // libhttp-parser callback trampolines, defined in the .cpp.

  // Consumes bytes of the method token (and blank lines before it); once the token's
  // space arrives, hands "METHOD " to libhttp-parser. Returns bytes used; may fail().
  size_t scan_method(std::string_view data);
  // Runs libhttp-parser over `len` bytes and returns how many it consumed; turns its
  // errors (not its pause) into fail().
  size_t execute(const char* data, size_t len);
  // Appends the assembled header (name lower-cased, value trimmed) to request_ and clears
  // the accumulators. Returns false after fail() if the name is not a token.
  bool flush_header();
  // Validates the finished head and fills the derived Request fields; may pause the parser
  // for 100-continue. Returns false after fail().
  bool finish_head();
  // Copies the version into request_; returns false after fail(505) unless it is 1.x.
  bool check_version();
  // Records an error; every later feed() returns kError until reset().
  void fail(int status, std::string reason);
  void fail_body_too_large();  // fail(413, ...) naming the body limit.
  void fail_head_too_large();  // fail(414 or 431, ...) depending on where the head is.

  ParserLimits limits_;
  std::unique_ptr<http_parser> parser_;
  Request request_;
  std::string method_;  // Method token collected before libhttp-parser sees it.
  bool method_done_ = false;
  std::string field_;      // Header name being assembled across callbacks.
  std::string value_;      // Header value being assembled across callbacks.
  bool in_value_ = false;  // Last header callback was a value: the next name starts a header.
  bool saw_header_field_ = false;
  size_t head_bytes_ = 0;  // Head bytes consumed so far (request line + headers).
  bool headers_done_ = false;
  // For the obs-fold check (libhttp-parser accepts folded lines silently): where the
  // bytes of this and the previous execute() lie, and where the last value piece ended.
  const char* chunk_begin_ = nullptr;
  const char* chunk_end_ = nullptr;
  const char* prev_chunk_end_ = nullptr;
  const char* value_piece_end_ = nullptr;
  bool complete_ = false;
  bool failed_ = false;
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace comet::http
