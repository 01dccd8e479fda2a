#include "transports/streaming_session.h"

#include "http/response.h"
#include "transports/authorization.h"
#include "util/clock.h"

namespace comet {

StreamingSession::StreamingSession(ClientPort& port, SessionKind kind, std::string head)
    : Session(port, kind), subs_(port.worker(), *this), head_(std::move(head)) {}

void StreamingSession::open(std::unique_ptr<StreamingSession> session,
                            const ChannelRequest& channels, int64_t private_until_ms,
                            const MemberIdentity& who) {
  StreamingSession& self = *session;
  if (private_until_ms != 0) {
    self.private_ = std::make_unique<PrivateState>();
    self.private_->until_ms = private_until_ms;
  }
  ClientPort& port = self.port_;
  port.begin_session(std::move(session));
  port.set_read_timeout(ReadTimeout::kNone);
  port.set_streaming(true);
  for (size_t i = 0; i < channels.channels.size(); ++i)
    self.subs_.add(channels.channels[i], channels.from[i], &who);
  self.start_when_positioned();
}

void StreamingSession::start_when_positioned() {
  if (started_ || refused_ || !subs_.all_positioned()) return;
  started_ = true;
  port_.write(head_);
  std::string().swap(head_);
  write_opening(early_);
  std::vector<std::string>().swap(early_);
  // Presence channels: the members list comes right after the opening, before replays.
  subs_.announce_members();
  subs_.replay_all();
}

void StreamingSession::on_reset(Subscription& sub, ResetReason reason) {
  std::string notice;
  append_reset_json(notice, sub, reason);
  if (started_)
    write_notice(notice);
  else
    early_.push_back(std::move(notice));
}

void StreamingSession::on_unavailable(Subscription&) {
  if (started_ || unavailable_ || refused_) return;
  unavailable_ = true;
  port_.defer();  // answered at the end of the turn, not from inside the hub
}

bool StreamingSession::refuse_if_unavailable() {
  if (refused_) return true;
  if (!unavailable_ || started_) return false;
  unavailable_ = false;
  // Ready after all (the read came in this same turn): go on as a stream.
  if (subs_.all_positioned()) {
    start_when_positioned();
    return false;
  }
  refused_ = true;  // never starts: no head, heartbeat, notice or replay goes out
  port_.write(
      http::error_response(503, "channel unavailable: the message store cannot be reached; retry",
                           false, "Retry-After: 2\r\n"));
  port_.close_after_flush();
  return true;
}

void StreamingSession::append_resume_cursor(std::string& out) const {
  if (private_ != nullptr && private_->ended)
    out += private_->frozen_cursor;
  else
    subs_.append_cursor(out);
}

bool StreamingSession::check_authorization(const Subscription* sub, const Message* m) {
  PrivateState& p = *private_;
  if (p.ended) return false;
  const int64_t now = wall_clock_ms();
  if (now < p.until_ms) return true;
  if (!p.expiry_told && started_) {
    p.expiry_told = true;
    write_auth_expired(auth_expired_notice(config()));
  }
  if (now - p.until_ms < config().token_grace_ms) return true;
  p.ended = true;
  if (sub != nullptr && m != nullptr)
    subs_.append_cursor_before(p.frozen_cursor, *sub, *m);
  else
    subs_.append_cursor(p.frozen_cursor);
  end_stream();
  return false;
}

void StreamingSession::on_input(evbuffer* input) {
  // Nothing is expected from a streaming client; refuse to buffer a flood.
  if (evbuffer_get_length(input) > config().max_header_bytes)
    port_.close_now("unexpected input on a stream");
}

}  // namespace comet
