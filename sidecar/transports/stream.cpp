// Legacy streaming transports: XHR streaming, forever iframe, htmlfile, multipart and
// Opera's dom-event-stream. One JSON object per event: first an "open" notice with the
// cursor, then envelopes and reset notices, {"type":"hb"} heartbeats, and, once the
// byte budget is spent, a "reconnect" notice with the cursor before the response ends
// (bounding what a long-lived iframe or XHR accumulates in the browser).

#include <cstdio>

#include "http/response.h"
#include "transports/stream_formats.h"
#include "transports/streaming_session.h"
#include "transports/transports.h"

namespace comet {
namespace {

class StreamSession final : public StreamingSession {
 public:
  StreamSession(ClientPort& port, StreamWrapper wrapper, bool chunked, std::string head)
      : StreamingSession(port, SessionKind::kStream, std::move(head)),
        wrapper_(std::move(wrapper)),
        chunked_(chunked) {}

  void on_message(Subscription& sub, const MessagePtr& m) override {
    if (done_ || !authorization_holds(&sub, m.get()) || !port_.check_output_limit()) return;
    const size_t size = wrapper_.before.size() + m->envelope.size() + wrapper_.after.size();
    if (chunked_) port_.write(chunk_header(size));
    port_.write(wrapper_.before);
    port_.write_shared(m, m->envelope);
    port_.write(wrapper_.after);
    if (chunked_) port_.write("\r\n");
    account(size);
  }

  void on_heartbeat() override {
    if (authorization_holds() && started()) emit_object("{\"type\":\"hb\"}");
  }

  // The reconnect notice carries the cursor: the client comes back with fresh
  // credentials and resumes where it was.
  // (At the end of the loop turn, like the byte budget: we may be inside a delivery.)
  void end_stream() override {
    if (!started()) {
      port_.close_after_flush();
    } else if (!ending_) {
      ending_ = true;
      port_.defer();
    }
  }

  void on_end_of_turn() override {
    if (!refuse_if_unavailable()) finish();
  }
  void on_shutdown() override {
    if (started()) finish();
  }

 protected:
  void write_opening(const std::vector<std::string>& early) override {
    emit_raw(wrapper_.prelude);
    std::string open = "{\"type\":\"open\",\"cursor\":\"";
    subs().append_cursor(open);
    emit_object(open + "\"}");
    for (const std::string& notice : early) emit_object(notice);
  }

  void write_notice(const std::string& json) override { emit_object(json); }

 private:
  static std::string chunk_header(size_t size) {
    char buf[24];
    const int n = snprintf(buf, sizeof buf, "%zx\r\n", size);
    return std::string(buf, static_cast<size_t>(n));
  }

  void emit_raw(const std::string& bytes) {
    if (bytes.empty() || done_ || !port_.check_output_limit()) return;
    if (chunked_) port_.write(chunk_header(bytes.size()));
    port_.write(bytes);
    if (chunked_) port_.write("\r\n");
    account(bytes.size());
  }

  void emit_object(const std::string& json) { emit_raw(wrapper_.before + json + wrapper_.after); }

  void account(size_t bytes) {
    sent_ += bytes;
    // Past the budget, end the response at the end of this loop turn (we may be inside
    // the hub's delivery loop now) and let the client reconnect with its cursor.
    if (sent_ >= config().stream_byte_budget && !ending_) {
      ending_ = true;
      port_.defer();
    }
  }

  void finish() {
    if (done_) return;
    std::string notice = "{\"type\":\"reconnect\",\"cursor\":\"";
    append_resume_cursor(notice);
    emit_object(notice + "\"}");
    emit_raw(wrapper_.ending);
    done_ = true;
    if (chunked_) port_.write("0\r\n\r\n");
    port_.end_session(false);
  }

  StreamWrapper wrapper_;
  bool chunked_;
  bool ending_ = false;
  bool done_ = false;
  size_t sent_ = 0;
};

// /stream?format=…, or /sse?format=dom-event-stream.
std::string_view format_name(const RequestContext& ctx) {
  const std::string* format = ctx.query.get("format");
  return format != nullptr ? std::string_view(*format) : std::string_view("xhr");
}

}  // namespace

Refusal check_stream(const RequestContext& ctx) {
  const StreamFraming* framing = find_stream_framing(format_name(ctx));
  if (framing == nullptr)
    return Refusal::bad_request(
        "format must be xhr, iframe, htmlfile, multipart or dom-event-stream");
  if (framing->needs_callback) {
    const std::string* cb = ctx.query.get("cb");
    if (cb == nullptr || !is_valid_callback_name(*cb))
      return Refusal::bad_request("cb must be a dotted JavaScript identifier (max 64)");
    const std::string* domain = ctx.query.get("domain");
    if (domain != nullptr && !is_valid_document_domain(*domain))
      return Refusal::bad_request("invalid domain");
  }
  return Refusal::none();
}

bool start_stream(RequestContext& ctx, const ChannelRequest& channels) {
  const StreamFraming& framing = *find_stream_framing(format_name(ctx));  // checked
  std::string callback, domain;
  if (framing.needs_callback) {
    callback = *ctx.query.get("cb");
    if (const std::string* d = ctx.query.get("domain")) domain = *d;
  }
  // HTTP/1.0 has no chunked encoding: such clients read until the connection closes.
  const bool chunked = ctx.request.http_minor >= 1;
  http::ResponseHead head(200);
  head.header("Content-Type", framing.content_type)
      .header("Cache-Control", "no-cache, no-store")
      .header("X-Accel-Buffering", "no")
      .header("X-Content-Type-Options", "nosniff");
  if (chunked) head.header("Transfer-Encoding", "chunked");
  head.lines(ctx.origin.cors_headers);
  StreamingSession::open(
      std::make_unique<StreamSession>(
          ctx.port,
          make_stream_wrapper(framing, callback, domain, ctx.config().stream_padding_bytes),
          chunked, head.streaming()),
      channels, ctx.private_until_ms, ctx.member);
  return false;
}

}  // namespace comet
