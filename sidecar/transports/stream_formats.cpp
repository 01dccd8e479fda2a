#include "transports/stream_formats.h"

namespace comet {
namespace {

constexpr StreamFraming kFramings[] = {
    {StreamFormat::kXhr, "xhr", "application/x-ndjson; charset=utf-8", false},
    {StreamFormat::kIframe, "iframe", "text/html; charset=utf-8", true},
    {StreamFormat::kHtmlfile, "htmlfile", "text/html; charset=utf-8", true},
    {StreamFormat::kMultipart, "multipart", "multipart/x-mixed-replace; boundary=\"comet-part\"",
     false},
    {StreamFormat::kDomEventStream, "dom-event-stream", "application/x-dom-event-stream", false},
};

}  // namespace

const StreamFraming* find_stream_framing(std::string_view name) {
  for (const StreamFraming& f : kFramings)
    if (name == f.name) return &f;
  return nullptr;
}

bool is_valid_document_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) return false;
  for (char c : domain) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return domain.front() != '.' && domain.back() != '.';
}

StreamWrapper make_stream_wrapper(const StreamFraming& framing, std::string_view callback,
                                  std::string_view domain, size_t padding) {
  StreamWrapper w;
  const std::string call = "<script>parent." + std::string(callback) + "(";
  switch (framing.format) {
    case StreamFormat::kXhr:
      // IE's XHR and some proxies hold back the first ~2 KiB; whitespace lines are
      // skipped by the client's line parser.
      w.prelude = std::string(padding, ' ') + "\n";
      w.after = "\n";
      break;
    case StreamFormat::kIframe:
    case StreamFormat::kHtmlfile:
      w.prelude = "<!DOCTYPE html><html><head>";
      if (framing.format == StreamFormat::kHtmlfile && !domain.empty())
        // The ActiveX htmlfile document must share document.domain with the page
        // that created it, or its script calls into the parent are refused.
        w.prelude += "<script>document.domain=\"" + std::string(domain) + "\";</script>";
      // Browsers render (and run scripts of) a document incrementally only after the
      // first kilobyte or so; a comment of padding gets us past that at once.
      w.prelude += "</head><body><!--" + std::string(padding, ' ') + "-->\n";
      w.before = call;
      w.after = ");</script>\n";
      w.ending = "</body></html>\n";
      break;
    case StreamFormat::kMultipart:
      // Each part replaces the previous one in browsers that render it; fetch/XHR
      // readers split on the boundary. A part counts as complete only once the next
      // delimiter arrives, so each part is followed by it at once ("\r\n--comet-part")
      // and the delimiter line's CRLF goes with the next part: a part, the open notice
      // included, is readable as soon as it is sent, not at the next heartbeat. The
      // bytes on the wire are the same MIME stream; the ending closes the last delimiter.
      w.prelude = "--comet-part";
      w.before = "\r\nContent-Type: application/json\r\n\r\n";
      w.after = "\r\n--comet-part";
      w.ending = "--\r\n";
      break;
    case StreamFormat::kDomEventStream:
      // Opera 8.5-9's event-source: "Event:" names the event, data lines follow.
      w.prelude = ":" + std::string(padding, ' ') + "\n\n";
      w.before = "Event: comet\ndata: ";
      w.after = "\n\n";
      break;
  }
  return w;
}

}  // namespace comet
