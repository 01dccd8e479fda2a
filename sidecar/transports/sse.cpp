// Server-Sent Events (text/event-stream). Every event's `id:` is the connection's
// whole cursor, so EventSource's automatic reconnect (which re-sends the last id as
// Last-Event-ID) resumes every channel exactly where it stopped.

#include "http/response.h"
#include "server/connection.h"
#include "server/http_policy.h"
#include "server/session.h"
#include "server/worker.h"
#include "transports/channel_request.h"
#include "transports/subscription_set.h"
#include "transports/transports.h"

namespace comet {
namespace {

class SseSession final : public Session {
 public:
  SseSession(Connection& conn, bool json_envelope, std::string head)
      : Session(conn, SessionKind::kSse),
        subs_(conn.worker(), *this),
        json_envelope_(json_envelope),
        head_(std::move(head)) {}

  SubscriptionSet& subs() { return subs_; }

  /**
   * Starts the stream once every channel has its position. With Redis a channel may
   * still be being read; answering only then means that whatever is published after
   * EventSource's `open` is delivered, and the first id already covers every channel.
   */
  void start_when_positioned() {
    if (started_ || !subs_.all_positioned()) return;
    started_ = true;
    conn_.write(head_);
    conn_.write(early_);
    std::string().swap(head_);
    std::string().swap(early_);
    write_cursor_event();
    subs_.replay_all();
  }

  void on_message(Subscription&, const MessagePtr& m) override {
    if (!conn_.check_output_limit()) return;
    if (m->id != 0) {
      if (subs_.size() == 1) {
        conn_.write_shared(m, m->sse_id);
      } else {
        std::string id_line = "id: ";
        subs_.append_cursor(id_line);
        id_line += '\n';
        conn_.write(id_line);
      }
    }
    if (json_envelope_) {
      conn_.write("data: ");
      conn_.write_shared(m, m->envelope);
      conn_.write("\n\n");
    } else {
      conn_.write_shared(m, m->sse_body);
      conn_.write("\n");
    }
  }

  void on_reset(Subscription& sub, ResetReason reason) override {
    // A named event: EventSource's onmessage ignores it, listeners opt in.
    std::string out = "event: comet-reset\ndata: ";
    append_reset_json(out, sub, reason);
    out += "\n\n";
    if (started_)
      conn_.write(out);
    else
      early_ += out;
  }

  void on_ready(Subscription&) override { start_when_positioned(); }

  // Replays wait for the stream to start, then follow the client's reading pace.
  bool can_take_more() override { return started_ && Session::can_take_more(); }

  void on_input(evbuffer* input) override {
    // Nothing is expected from an SSE client; refuse to buffer a flood.
    if (evbuffer_get_length(input) > conn_.worker().config().max_header_bytes)
      conn_.close_now("unexpected input on SSE stream");
  }

  void on_drain() override { subs_.replay_all(); }

  void on_heartbeat() override {
    if (started_ && conn_.check_output_limit()) conn_.write(":\n\n");
  }

 private:
  void write_cursor_event() {
    // An id-only event: it dispatches nothing but sets EventSource's lastEventId, so a
    // reconnect before the first message still resumes from here.
    std::string out = "id: ";
    subs_.append_cursor(out);
    out += "\n\n";
    conn_.write(out);
  }

  SubscriptionSet subs_;
  bool json_envelope_;
  bool started_ = false;
  std::string head_;   // response head and retry line, written by start_when_positioned
  std::string early_;  // reset notices raised before the stream started
};

}  // namespace

bool start_sse(Connection& conn, const http::Request& request, const http::QueryParams& query) {
  const Config& config = conn.worker().config();
  const OriginCheck origin = check_origin(config, request);
  if (!origin.allowed) {
    conn.write(http::error_response(403, "origin not allowed", request.keep_alive));
    return request.keep_alive;
  }
  ChannelRequest channels;
  const std::string error = parse_channel_request(request, query, config, true, channels);
  if (!error.empty()) {
    conn.write(http::error_response(400, error, request.keep_alive, origin.cors_headers));
    return request.keep_alive;
  }
  const std::string* format = query.get("format");
  const bool json_envelope = format != nullptr && *format == "json";
  if (format != nullptr && !json_envelope && *format != "raw") {
    conn.write(http::error_response(400, "format must be raw or json", request.keep_alive,
                                    origin.cors_headers));
    return request.keep_alive;
  }

  std::string head = http::ResponseHead(200)
                         .header("Content-Type", "text/event-stream; charset=utf-8")
                         .header("Cache-Control", "no-cache, no-store")
                         // nginx buffers proxied responses unless told not to.
                         .header("X-Accel-Buffering", "no")
                         .streaming();
  if (!origin.cors_headers.empty()) head.insert(head.size() - 2, origin.cors_headers);
  head += "retry: " + std::to_string(config.sse_retry_ms) + "\n\n";

  auto session = std::make_unique<SseSession>(conn, json_envelope, std::move(head));
  SseSession& sse = *session;
  conn.begin_session(std::move(session));
  conn.set_read_timeout(nullptr);
  conn.set_streaming(true);
  for (size_t i = 0; i < channels.channels.size(); ++i)
    sse.subs().add(channels.channels[i], channels.from[i]);
  sse.start_when_positioned();
  return true;
}

}  // namespace comet
