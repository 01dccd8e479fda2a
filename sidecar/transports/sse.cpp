// Server-Sent Events (text/event-stream). Every event's `id:` is the connection's
// whole cursor, so EventSource's automatic reconnect (which re-sends the last id as
// Last-Event-ID) resumes every channel exactly where it stopped.

#include "http/response.h"
#include "transports/streaming_session.h"
#include "transports/transports.h"

namespace comet {
namespace {

class SseSession final : public StreamingSession {
 public:
  SseSession(ClientPort& port, bool json_envelope, std::string head)
      : StreamingSession(port, SessionKind::kSse, std::move(head)), json_envelope_(json_envelope) {}

  void on_message(Subscription& sub, const MessagePtr& m) override {
    if (!authorization_holds(&sub, m.get()) || !port_.check_output_limit()) return;
    if (m->id != 0) {
      if (subs().size() == 1) {
        port_.write_shared(m, m->sse_id);
      } else {
        std::string id_line = "id: ";
        subs().append_cursor(id_line);
        id_line += '\n';
        port_.write(id_line);
      }
    }
    // Presence notices are named events (comet-join, ...) in both formats.
    if (json_envelope_ && !m->notice) {
      port_.write("data: ");
      port_.write_shared(m, m->envelope);
      port_.write("\n\n");
    } else {
      port_.write_shared(m, m->sse_body);
      port_.write("\n");
    }
  }

  void on_heartbeat() override {
    if (authorization_holds() && started() && port_.check_output_limit()) port_.write(":\n\n");
  }

 protected:
  void write_opening(const std::vector<std::string>& early) override {
    for (const std::string& notice : early) write_notice(notice);
    // An id-only event: it dispatches nothing but sets EventSource's lastEventId, so a
    // reconnect before the first message still resumes from here.
    std::string out = "id: ";
    subs().append_cursor(out);
    out += "\n\n";
    port_.write(out);
  }

  void write_notice(const std::string& json) override {
    // A named event: EventSource's onmessage ignores it, listeners opt in.
    port_.write("event: comet-reset\ndata: " + json + "\n\n");
  }

  void write_auth_expired(const std::string& json) override {
    port_.write("event: comet-auth-expired\ndata: " + json + "\n\n");
  }

 private:
  bool json_envelope_;
};

bool is_dom_event_stream(const RequestContext& ctx) {
  const std::string* format = ctx.query.get("format");
  return format != nullptr && *format == "dom-event-stream";
}

}  // namespace

Refusal check_sse(const RequestContext& ctx) {
  // Opera's dom-event-stream is served by the legacy stream transport.
  if (is_dom_event_stream(ctx)) return check_stream(ctx);
  const std::string* format = ctx.query.get("format");
  if (format != nullptr && *format != "json" && *format != "raw")
    return Refusal::bad_request("format must be raw or json");
  return Refusal::none();
}

bool start_sse(RequestContext& ctx, const ChannelRequest& channels) {
  if (is_dom_event_stream(ctx)) return start_stream(ctx, channels);
  const std::string* format = ctx.query.get("format");
  const bool json_envelope = format != nullptr && *format == "json";
  std::string head = http::ResponseHead(200)
                         .header("Content-Type", "text/event-stream; charset=utf-8")
                         .header("Cache-Control", "no-cache, no-store")
                         // nginx buffers proxied responses unless told not to.
                         .header("X-Accel-Buffering", "no")
                         .lines(ctx.origin.cors_headers)
                         .streaming();
  head += "retry: " + std::to_string(ctx.config().sse_retry_ms) + "\n\n";
  StreamingSession::open(std::make_unique<SseSession>(ctx.port, json_envelope, std::move(head)),
                         channels, ctx.private_until_ms, ctx.member);
  return true;
}

}  // namespace comet
