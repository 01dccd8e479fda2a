#include "http/request_parser.h"

#include <http_parser.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "http/query.h"
#include "util/ascii.h"

namespace comet::http {

namespace {

/**
 * Splits a request target into its raw path and query. libhttp-parser has already checked
 * every character of it; origin-form ("/path?query", nearly every request) is split here
 * directly, anything else (absolute-form, CONNECT's authority, "*") by its URL parser.
 */
bool split_target(std::string_view target, bool connect, std::string_view& path,
                  std::string_view& query) {
  path = {};
  query = {};
  if (!connect && !target.empty() && target[0] == '/') {
    const std::string_view before_fragment = target.substr(0, target.find('#'));
    const size_t mark = before_fragment.find('?');
    path = before_fragment.substr(0, mark);
    if (mark != std::string_view::npos) query = before_fragment.substr(mark + 1);
    return true;
  }
  http_parser_url url;
  http_parser_url_init(&url);
  if (http_parser_parse_url(target.data(), target.size(), connect, &url) != 0) return false;
  if (url.field_set & (1 << UF_PATH))
    path = target.substr(url.field_data[UF_PATH].off, url.field_data[UF_PATH].len);
  if (url.field_set & (1 << UF_QUERY))
    query = target.substr(url.field_data[UF_QUERY].off, url.field_data[UF_QUERY].len);
  return true;
}

// Longer than any method libhttp-parser knows ("UNSUBSCRIBE" is 11), so a token this long
// can only be an unimplemented method and need not be buffered any further.
constexpr size_t kMaxMethodBytes = 32;

// RFC 9110 section 5.6.2 token characters; '\0' is not found in the literal's view.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

// Trampolines from libhttp-parser's C callbacks into the owning RequestParser. A non-zero
// return makes http_parser_execute stop with an HPE_CB_* error; fail() has already
// recorded the HTTP status by then.
struct RequestParser::Callbacks {
  static RequestParser& self(http_parser* p) { return *static_cast<RequestParser*>(p->data); }

  static int on_url(http_parser* p, const char* at, size_t len) {
    RequestParser& s = self(p);
    if (s.request_.target.size() + len > s.limits_.max_url_bytes) {
      s.fail(414, "request target exceeds " + std::to_string(s.limits_.max_url_bytes) + " bytes");
      return -1;
    }
    s.request_.target.append(at, len);
    return 0;
  }

  static int on_header_field(http_parser* p, const char* at, size_t len) {
    RequestParser& s = self(p);
    // Chunked trailers arrive through the same callbacks; merging them into the head would
    // let a body smuggle in headers the handler already trusted, so they are dropped.
    if (s.headers_done_) return 0;
    if (!s.saw_header_field_) {
      s.saw_header_field_ = true;
      // The version is known once the request line ends; rejecting here spares a client
      // speaking another protocol from streaming a whole header section first.
      if (!s.check_version()) return -1;
    }
    if (s.in_value_ && !s.flush_header()) return -1;
    s.field_.append(at, len);
    return 0;
  }

  static int on_header_value(http_parser* p, const char* at, size_t len) {
    RequestParser& s = self(p);
    if (s.headers_done_) return 0;
    // libhttp-parser reports even an empty value (with len 0), so this flag reliably marks
    // the end of the header name.
    if (s.in_value_) {
      // A second piece of the same value. Only a read boundary may split a value (the
      // piece before ended where that read's bytes did, this one starts the next read);
      // anything else is a folded line (obs-fold), which RFC 9112 section 5.2 has a
      // server refuse: a proxy in front may read the headers differently.
      const bool split_by_read = at == s.chunk_begin_ && s.value_piece_end_ == s.prev_chunk_end_;
      if (!split_by_read) {
        s.fail(400, "obsolete line folding in a header (obs-fold) is not accepted");
        return -1;
      }
    }
    s.in_value_ = true;
    s.value_.append(at, len);
    s.value_piece_end_ = at + len;
    return 0;
  }

  static int on_headers_complete(http_parser* p) {
    RequestParser& s = self(p);
    if (!s.finish_head()) return -1;
    // Upgrade bodies, if any, belong to the new protocol: 1 tells libhttp-parser to skip
    // the body so the message ends right after the head.
    if (s.request_.upgrade) return 1;
    return 0;
  }

  static int on_chunk_header(http_parser* p) {
    RequestParser& s = self(p);
    // content_length holds the announced chunk size here; rejecting now avoids reading a
    // chunk that can never fit.
    if (p->content_length > s.limits_.max_body_bytes - s.request_.body.size()) {
      s.fail_body_too_large();
      return -1;
    }
    return 0;
  }

  static int on_body(http_parser* p, const char* at, size_t len) {
    RequestParser& s = self(p);
    if (len > s.limits_.max_body_bytes - s.request_.body.size()) {
      s.fail_body_too_large();
      return -1;
    }
    s.request_.body.append(at, len);
    return 0;
  }

  static int on_message_complete(http_parser* p) {
    self(p).complete_ = true;
    // Pausing (rather than failing) makes http_parser_execute return the exact count up to
    // and including the message's last byte, leaving pipelined bytes unconsumed.
    http_parser_pause(p, 1);
    return 0;
  }

  static const http_parser_settings& settings() {
    static const http_parser_settings kSettings = [] {
      http_parser_settings st;
      http_parser_settings_init(&st);
      st.on_url = on_url;
      st.on_header_field = on_header_field;
      st.on_header_value = on_header_value;
      st.on_headers_complete = on_headers_complete;
      st.on_chunk_header = on_chunk_header;
      st.on_body = on_body;
      st.on_message_complete = on_message_complete;
      return st;
    }();
    return kSettings;
  }
};

RequestParser::RequestParser(const ParserLimits& limits)
    : limits_(limits), parser_(std::make_unique<http_parser>()) {
  reset();
}

RequestParser::~RequestParser() = default;
RequestParser::RequestParser(RequestParser&&) noexcept = default;
RequestParser& RequestParser::operator=(RequestParser&&) noexcept = default;

void RequestParser::reset() {
  http_parser_init(parser_.get(), HTTP_REQUEST);
  request_ = Request{};
  method_.clear();
  method_done_ = false;
  field_.clear();
  value_.clear();
  in_value_ = false;
  saw_header_field_ = false;
  head_bytes_ = 0;
  headers_done_ = false;
  chunk_begin_ = chunk_end_ = prev_chunk_end_ = value_piece_end_ = nullptr;
  complete_ = false;
  failed_ = false;
  error_status_ = 0;
  error_reason_.clear();
}

const Request& RequestParser::request() const { return request_; }

Request RequestParser::take_request() {
  Request out = std::move(request_);
  request_ = Request{};
  return out;
}

int RequestParser::error_status() const { return error_status_; }

const char* RequestParser::error_reason() const { return error_reason_.c_str(); }

void RequestParser::fail(int status, std::string reason) {
  failed_ = true;
  error_status_ = status;
  error_reason_ = std::move(reason);
}

bool RequestParser::check_version() {
  request_.http_major = parser_->http_major;
  request_.http_minor = parser_->http_minor;
  if (request_.http_major == 1) return true;
  fail(505, "HTTP version " + std::to_string(request_.http_major) + "." +
                std::to_string(request_.http_minor) + " not supported");
  return false;
}

void RequestParser::fail_body_too_large() {
  fail(413, "request body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
}

void RequestParser::fail_head_too_large() {
  // Before the first header name the overflow can only come from the request line, whose
  // variable part is the target, so 414 tells the client what to shorten.
  if (saw_header_field_) {
    fail(431, "header section exceeds " + std::to_string(limits_.max_header_bytes) + " bytes");
  } else {
    fail(414, "request line exceeds " + std::to_string(limits_.max_header_bytes) + " bytes");
  }
}

bool RequestParser::flush_header() {
  bool ok = true;
  if (!field_.empty()) {
    // Built without HTTP_PARSER_STRICT, libhttp-parser lets spaces into names ("Host : x");
    // RFC 9112 section 5.1 requires a 400 since proxies may read such names differently.
    ok = std::all_of(field_.begin(), field_.end(), is_tchar);
    if (ok) {
      std::transform(field_.begin(), field_.end(), field_.begin(), ascii_lower);
      request_.headers.emplace_back(std::move(field_), std::string(trim(value_)));
    } else {
      fail(400, "malformed header name");
    }
  }
  field_.clear();
  value_.clear();
  in_value_ = false;
  return ok;
}

// libhttp-parser cannot tell "FOO / HTTP/1.1" (well-formed, unknown method: 501) from
// "GARBAGE\r\n" (malformed: 400) because it fails at the first unexpected letter. Collecting
// the method token ourselves decides that the same way however the bytes are split.
size_t RequestParser::scan_method(std::string_view data) {
  size_t used = 0;
  while (used < data.size()) {
    if (head_bytes_ >= limits_.max_header_bytes) {
      fail_head_too_large();
      return used;
    }
    char c = data[used];
    if (method_.empty() && (c == '\r' || c == '\n')) {
      // Blank lines before a request line are tolerated (RFC 9112 section 2.2).
      ++used;
      ++head_bytes_;
      continue;
    }
    if (c == ' ' && !method_.empty()) {
      ++used;
      ++head_bytes_;
      method_done_ = true;
      request_.method = method_;
      method_.push_back(' ');
      size_t n = execute(method_.data(), method_.size());
      if (!failed_ && n != method_.size()) fail(400, "malformed request line");
      return used;
    }
    if (!is_tchar(c)) {
      fail(400, "malformed request line");
      return used;
    }
    if (method_.size() >= kMaxMethodBytes) {
      fail(501, "method not implemented");
      return used;
    }
    method_.push_back(c);
    ++used;
    ++head_bytes_;
  }
  return used;
}

// Runs once the head is complete; validates it and fills the derived Request fields.
// Returns false after fail() when the request must be rejected.
bool RequestParser::finish_head() {
  http_parser* p = parser_.get();
  headers_done_ = true;
  if ((in_value_ || !field_.empty()) && !flush_header()) return false;
  if (!check_version()) return false;
  request_.keep_alive = http_should_keep_alive(p) != 0;
  request_.upgrade = p->upgrade != 0;

  std::string_view raw_path, raw_query;
  if (!split_target(request_.target, p->method == HTTP_CONNECT, raw_path, raw_query)) {
    fail(400, "malformed request target");
    return false;
  }
  if (!raw_path.empty() && !percent_decode(raw_path, request_.path, false)) {
    fail(400, "malformed percent-encoding in path");
    return false;
  }
  request_.query.assign(raw_query);

  // RFC 9112 section 3.2: exactly one Host on HTTP/1.1 (at most one on 1.0), else 400.
  size_t hosts = 0;
  for (const auto& header : request_.headers) hosts += header.first == "host" ? 1 : 0;
  if (limits_.require_host && (hosts > 1 || (hosts == 0 && request_.http_minor >= 1))) {
    fail(400, hosts > 1 ? "more than one Host header" : "missing Host header (HTTP/1.1)");
    return false;
  }

  // libhttp-parser only insists that chunked comes last, so "gzip, chunked" would slip
  // through and hand handlers a still-compressed body; we decode nothing but chunked.
  for (const auto& [name, value] : request_.headers) {
    if (name != "transfer-encoding") continue;
    for (std::string_view coding : split_list(value, ',')) {
      if (!iequals(coding, "chunked")) {
        fail(501, "unsupported transfer-encoding");
        return false;
      }
    }
  }

  bool expect_continue = false;
  if (const std::string* expect = request_.header("expect")) {
    if (!iequals(*expect, "100-continue")) {
      fail(417, "unsupported expectation");
      return false;
    }
    // RFC 9110 section 10.1.1: an HTTP/1.0 client cannot understand 100 Continue.
    expect_continue = request_.http_minor >= 1;
  }
  if (request_.upgrade) return true;

  bool chunked = (p->flags & F_CHUNKED) != 0;
  bool has_length = !chunked && p->content_length != ULLONG_MAX;
  // Checked from the header alone so an oversized upload is refused before any of it is
  // read, and before a 100 Continue would invite the client to send it.
  if (has_length && p->content_length > limits_.max_body_bytes) {
    fail_body_too_large();
    return false;
  }
  bool body_expected = chunked || (has_length && p->content_length > 0);
  // Pausing makes http_parser_execute return so feed() can report kContinue before any
  // body byte is parsed.
  if (expect_continue && body_expected) http_parser_pause(p, 1);
  return true;
}

size_t RequestParser::execute(const char* data, size_t len) {
  // Where this read's bytes lie, for the obs-fold check (compared, never dereferenced).
  prev_chunk_end_ = chunk_end_;
  chunk_begin_ = data;
  chunk_end_ = data + len;
  size_t n = http_parser_execute(parser_.get(), &Callbacks::settings(), data, len);
  if (failed_) return n;  // A callback already chose the status.
  http_errno err = HTTP_PARSER_ERRNO(parser_.get());
  switch (err) {
    case HPE_OK:
    case HPE_PAUSED:
      break;
    case HPE_INVALID_METHOD:
      // Only reachable with a well-formed token (see scan_method), so it is unknown, not bad.
      fail(501, "method " + request_.method + " not implemented");
      break;
    case HPE_HEADER_OVERFLOW:
      fail(431, "header section too large");
      break;
    case HPE_INVALID_TRANSFER_ENCODING:
      fail(501, "unsupported transfer-encoding");
      break;
    default:
      fail(400, std::string("malformed request: ") + http_errno_description(err));
      break;
  }
  return n;
}

ParseResult RequestParser::feed(std::string_view data) {
  if (failed_) return {ParseStatus::kError, 0};
  if (complete_) reset();
  // Refreshed on every call so a moved-from-and-into parser still routes callbacks to the
  // object that owns it now.
  parser_->data = this;

  size_t consumed = 0;
  while (consumed < data.size()) {
    std::string_view rest = data.substr(consumed);
    if (!method_done_) {
      consumed += scan_method(rest);
      if (failed_) return {ParseStatus::kError, consumed};
      continue;
    }
    bool in_head = !headers_done_;
    size_t slice = rest.size();
    if (in_head) {
      // Offering libhttp-parser at most the remaining head budget means an endless header
      // line is refused after max_header_bytes, however large the caller's buffer is.
      if (head_bytes_ >= limits_.max_header_bytes) {
        fail_head_too_large();
        return {ParseStatus::kError, consumed};
      }
      slice = std::min(slice, limits_.max_header_bytes - head_bytes_);
    }
    size_t n = execute(rest.data(), slice);
    consumed += n;
    if (in_head) head_bytes_ += n;
    if (failed_) return {ParseStatus::kError, consumed};

    if (HTTP_PARSER_ERRNO(parser_.get()) == HPE_PAUSED) {
      if (complete_) return {ParseStatus::kComplete, consumed};
      // Paused by finish_head for 100-continue. libhttp-parser stops on the head's final LF
      // without consuming it; stepping over that byte now (no callback fires for it when a
      // body follows) makes `consumed` cover exactly the head.
      http_parser_pause(parser_.get(), 0);
      if (n < slice) {
        consumed += execute(rest.data() + n, 1);
        if (failed_) return {ParseStatus::kError, consumed};
      }
      return {ParseStatus::kContinue, consumed};
    }
    if (n < slice) {
      // libhttp-parser only stops early without an error for an upgrade, and then
      // on_message_complete has run; anything else means it lost track of the stream.
      if (complete_) return {ParseStatus::kComplete, consumed};
      fail(400, "malformed request");
      return {ParseStatus::kError, consumed};
    }
  }
  return {ParseStatus::kNeedMore, consumed};
}

}  // namespace comet::http
