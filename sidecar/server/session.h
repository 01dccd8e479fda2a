#pragma once
// A session owns a connection after its request was routed to a long-lived handler
// (SSE stream, WebSocket, held long-poll, echo). One subclass per transport, under
// sidecar/transports/. The connection forwards its events; the session writes
// through the connection and never frees it.

#include <event2/buffer.h>

#include "hub/hub.h"

namespace comet {

namespace http {
struct Request;
}
class Connection;

/** Which transport a session serves (counted per kind in /healthz). */
enum class SessionKind { kWebSocket, kSse, kStream, kPoll, kEcho, kPublish, kCount };
const char* session_kind_name(SessionKind kind);

class Session : public Subscriber {
 public:
  Session(Connection& conn, SessionKind kind);
  ~Session() override;

  /** Bytes arrived from the client. The session drains what it consumes. */
  virtual void on_input(evbuffer* input) = 0;
  /** The worker's heartbeat tick (only for sessions that asked to be streaming). */
  virtual void on_heartbeat() {}
  /** The connection's read timeout fired. Default: close. */
  virtual void on_timeout();
  /** Deferred work at the end of the loop turn (requested with Worker::defer). */
  virtual void on_end_of_turn() {}
  /** The worker is shutting down: say goodbye if the protocol has a way. */
  virtual void on_shutdown() {}
  /** Output drained after Connection::watch_drain: go on with paused replays. */
  virtual void on_drain() {}
  /**
   * True for request/response sessions (publish, long-poll) whose answer is still owed
   * when the client half-closes its side after sending (HTTP allows that).
   */
  virtual bool answers_after_eof() const { return false; }
  /**
   * True while the connection may go on parsing pipelined requests during this session
   * (publishes waiting for Redis); each is offered to accepts() before it is routed.
   */
  virtual bool takes_more_requests() const { return false; }
  /** Whether `request` may be routed now, behind this session (its answers stay in order). */
  virtual bool accepts(const http::Request&) const { return false; }

  void on_message(Subscription&, const MessagePtr&) override {}
  void on_reset(Subscription&, ResetReason) override {}
  /** Paces replays to the client: pauses while output is congested, resumes in on_drain. */
  bool can_take_more() override;

 protected:
  Connection& conn_;

 private:
  SessionKind kind_;
};

}  // namespace comet
