#pragma once
// The legacy streaming framings (GET /stream?format=…, and /sse?format=dom-event-stream).
// Each is a table row: how the stream starts, how one JSON object (an envelope or a
// notice) is wrapped, and how it ends. The envelope itself is rendered once per
// message and shared; only the small per-connection wrapper differs.

#include <string>
#include <string_view>

namespace comet {

enum class StreamFormat { kXhr, kIframe, kHtmlfile, kMultipart, kDomEventStream };

struct StreamFraming {
  StreamFormat format;
  const char* name;  // the format= value
  const char* content_type;
  bool needs_callback;  // iframe / htmlfile call parent.CALLBACK(...)
};

/** The framing for a format= value, or nullptr when unknown. */
const StreamFraming* find_stream_framing(std::string_view name);

/** Per-connection wrapper strings, built once when the stream starts. */
struct StreamWrapper {
  std::string prelude;  // written once after the response head (includes padding)
  std::string before;   // written before each JSON object
  std::string after;    // written after each JSON object
  std::string ending;   // written before the stream closes
};

/**
 * Builds the wrapper. `callback` is a checked JavaScript identifier (iframe/htmlfile),
 * `domain` a checked host name or "" (htmlfile's document.domain preamble), `padding`
 * the number of filler bytes that make browsers and proxies start delivering at once.
 */
StreamWrapper make_stream_wrapper(const StreamFraming& framing, std::string_view callback,
                                  std::string_view domain, size_t padding);

/** Host names allowed in document.domain: letters, digits, '-', '.', at most 253. */
bool is_valid_document_domain(std::string_view domain);

}  // namespace comet
