// Legacy streaming transports: XHR streaming, forever iframe, htmlfile, multipart and
// Opera's dom-event-stream. One JSON object per event: first an "open" notice with the
// cursor, then envelopes and reset notices, {"type":"hb"} heartbeats, and, once the
// byte budget is spent, a "reconnect" notice with the cursor before the response ends
// (bounding what a long-lived iframe or XHR accumulates in the browser).

#include <vector>

#include "http/response.h"
#include "server/connection.h"
#include "server/http_policy.h"
#include "server/session.h"
#include "server/worker.h"
#include "transports/channel_request.h"
#include "transports/stream_formats.h"
#include "transports/subscription_set.h"
#include "transports/transports.h"

namespace comet {
namespace {

class StreamSession final : public Session {
 public:
  StreamSession(Connection& conn, StreamWrapper wrapper, bool chunked, std::string head)
      : Session(conn, SessionKind::kStream),
        subs_(conn.worker(), *this),
        wrapper_(std::move(wrapper)),
        chunked_(chunked),
        head_(std::move(head)) {}

  SubscriptionSet& subs() { return subs_; }

  /**
   * Answers once every channel has its position (with Redis a channel may still be
   * being read), so the "open" cursor is exact and everything published after it is
   * delivered.
   */
  void start_when_positioned() {
    if (started_ || !subs_.all_positioned()) return;
    started_ = true;
    conn_.write(head_);
    std::string().swap(head_);
    emit_raw(wrapper_.prelude);
    std::string open = "{\"type\":\"open\",\"cursor\":\"";
    subs_.append_cursor(open);
    emit_object(open + "\"}");
    for (const std::string& notice : early_) emit_object(notice);
    std::vector<std::string>().swap(early_);
    subs_.replay_all();
  }

  void on_message(Subscription&, const MessagePtr& m) override {
    if (done_ || !conn_.check_output_limit()) return;
    const size_t size = wrapper_.before.size() + m->envelope.size() + wrapper_.after.size();
    if (chunked_) conn_.write(chunk_header(size));
    conn_.write(wrapper_.before);
    conn_.write_shared(m, m->envelope);
    conn_.write(wrapper_.after);
    if (chunked_) conn_.write("\r\n");
    account(size);
  }

  void on_reset(Subscription& sub, ResetReason reason) override {
    std::string notice;
    append_reset_json(notice, sub, reason);
    if (started_)
      emit_object(notice);
    else
      early_.push_back(std::move(notice));
  }

  void on_heartbeat() override {
    if (started_) emit_object("{\"type\":\"hb\"}");
  }

  void on_drain() override { subs_.replay_all(); }

  void on_ready(Subscription&) override { start_when_positioned(); }

  // Replays wait for the stream to start, then follow the client's reading pace.
  bool can_take_more() override { return started_ && Session::can_take_more(); }

  void on_input(evbuffer* input) override {
    if (evbuffer_get_length(input) > conn_.worker().config().max_header_bytes)
      conn_.close_now("unexpected input on a stream");
  }

  void on_end_of_turn() override { finish(); }
  void on_shutdown() override {
    if (started_) finish();
  }

 private:
  static std::string chunk_header(size_t size) {
    char buf[24];
    const int n = snprintf(buf, sizeof buf, "%zx\r\n", size);
    return std::string(buf, static_cast<size_t>(n));
  }

  void emit_raw(const std::string& bytes) {
    if (bytes.empty() || done_ || !conn_.check_output_limit()) return;
    if (chunked_) conn_.write(chunk_header(bytes.size()));
    conn_.write(bytes);
    if (chunked_) conn_.write("\r\n");
    account(bytes.size());
  }

  void emit_object(const std::string& json) { emit_raw(wrapper_.before + json + wrapper_.after); }

  void account(size_t bytes) {
    sent_ += bytes;
    // Past the budget, end the response at the end of this loop turn (we may be inside
    // the hub's delivery loop now) and let the client reconnect with its cursor.
    if (sent_ >= conn_.worker().config().stream_byte_budget && !ending_) {
      ending_ = true;
      conn_.defer();
    }
  }

  void finish() {
    if (done_) return;
    std::string notice = "{\"type\":\"reconnect\",\"cursor\":\"";
    subs_.append_cursor(notice);
    emit_object(notice + "\"}");
    emit_raw(wrapper_.ending);
    done_ = true;
    if (chunked_) conn_.write("0\r\n\r\n");
    conn_.end_session(false);
  }

  SubscriptionSet subs_;
  StreamWrapper wrapper_;
  bool chunked_;
  bool started_ = false;
  std::string head_;                // the response head, written by start_when_positioned
  std::vector<std::string> early_;  // reset notices raised before the stream started
  bool ending_ = false;
  bool done_ = false;
  size_t sent_ = 0;
};

bool refuse(Connection& conn, const http::Request& request, int status, const std::string& why,
            const std::string& cors = {}) {
  conn.write(http::error_response(status, why, request.keep_alive, cors));
  return request.keep_alive;
}

}  // namespace

bool start_stream(Connection& conn, const http::Request& request, const http::QueryParams& query,
                  std::string_view format_name) {
  const Config& config = conn.worker().config();
  const OriginCheck origin = check_origin(config, request);
  if (!origin.allowed) return refuse(conn, request, 403, "origin not allowed");
  const StreamFraming* framing = find_stream_framing(format_name);
  if (framing == nullptr)
    return refuse(conn, request, 400,
                  "format must be xhr, iframe, htmlfile, multipart or dom-event-stream",
                  origin.cors_headers);
  std::string callback, domain;
  if (framing->needs_callback) {
    const std::string* cb = query.get("cb");
    if (cb == nullptr || !is_valid_callback_name(*cb))
      return refuse(conn, request, 400, "cb must be a dotted JavaScript identifier (max 64)",
                    origin.cors_headers);
    callback = *cb;
    if (const std::string* d = query.get("domain")) {
      if (!is_valid_document_domain(*d))
        return refuse(conn, request, 400, "invalid domain", origin.cors_headers);
      domain = *d;
    }
  }
  ChannelRequest channels;
  const std::string error = parse_channel_request(request, query, config, false, channels);
  if (!error.empty()) return refuse(conn, request, 400, error, origin.cors_headers);

  // HTTP/1.0 has no chunked encoding: such clients read until the connection closes.
  const bool chunked = request.http_minor >= 1;
  http::ResponseHead head(200);
  head.header("Content-Type", framing->content_type)
      .header("Cache-Control", "no-cache, no-store")
      .header("X-Accel-Buffering", "no")
      .header("X-Content-Type-Options", "nosniff");
  if (chunked) head.header("Transfer-Encoding", "chunked");
  std::string out = head.streaming();
  if (!origin.cors_headers.empty()) out.insert(out.find("\r\n") + 2, origin.cors_headers);

  auto session = std::make_unique<StreamSession>(
      conn, make_stream_wrapper(*framing, callback, domain, config.stream_padding_bytes), chunked,
      std::move(out));
  StreamSession& stream = *session;
  conn.begin_session(std::move(session));
  conn.set_read_timeout(nullptr);
  conn.set_streaming(true);
  for (size_t i = 0; i < channels.channels.size(); ++i)
    stream.subs().add(channels.channels[i], channels.from[i]);
  stream.start_when_positioned();
  return false;
}

}  // namespace comet
