#pragma once
// A session owns a connection after its request was routed to a long-lived handler
// (SSE stream, WebSocket, held long-poll, publish waiting for Redis, echo). One subclass
// per transport, under sidecar/transports/. The connection forwards its events; the
// session writes through its ClientPort and never frees it.

#include <event2/buffer.h>

#include "hub/hub.h"
#include "server/client_port.h"
#include "server/session_kind.h"
#include "server/worker_context.h"

namespace comet {

namespace http {
struct Request;
}

class Session : public Subscriber {
 public:
  /** Counts itself in the per-kind session counters for as long as it lives. */
  Session(ClientPort& port, SessionKind kind);
  ~Session() override;

  /** Bytes arrived from the client. The session drains what it consumes. */
  virtual void on_input(evbuffer* input) = 0;
  /** The worker's heartbeat tick (only for sessions that asked to be streaming). */
  virtual void on_heartbeat() {}
  /** The connection's read timeout fired. Default: close. */
  virtual void on_timeout();
  /** Deferred work at the end of the loop turn (requested with ClientPort::defer). */
  virtual void on_end_of_turn() {}
  /** The worker is shutting down: say goodbye if the protocol has a way. */
  virtual void on_shutdown() {}
  /**
   * True when the session owes answers for work already done (publishes sent to Redis):
   * at shutdown the connection then closes once the session ends, not at once, so a
   * published message is never left unacknowledged.
   */
  virtual bool answers_before_shutdown() const { return false; }
  /** Output drained after ClientPort::watch_drain: go on with paused replays. */
  virtual void on_drain() {}
  /**
   * True for request/response sessions (publish, long-poll) whose answer is still owed
   * when the client half-closes its side after sending (HTTP allows that).
   */
  virtual bool answers_after_eof() const { return false; }
  /**
   * The client closed its side (EOF) while such an answer is owed. The session goes on
   * (a half-closed client still reads the answer), but the client may be gone: a held
   * long-poll starts its members' grace now rather than at --poll-timeout.
   */
  virtual void on_peer_closed() {}
  /**
   * True while the connection may go on parsing pipelined requests during this session
   * (publishes waiting for Redis); each is offered to accepts() and then take_request().
   */
  virtual bool takes_more_requests() const { return false; }
  /** Whether `request` may be handled now, behind this session (its answers stay in order). */
  virtual bool accepts(const http::Request&) const { return false; }
  /** Handles a request accepts() took; its answer is queued behind this session's. */
  virtual void take_request(const http::Request&) {}

  void on_message(Subscription&, const MessagePtr&) override {}
  void on_reset(Subscription&, ResetReason) override {}
  /** Paces replays to the client: pauses while output is congested, resumes in on_drain. */
  bool can_take_more() override;

 protected:
  // Asked of the port rather than kept: one pointer less in every session.
  WorkerContext& worker() const { return port_.worker(); }
  const Config& config() const { return port_.worker().config(); }

  ClientPort& port_;

 private:
  SessionKind kind_;
};

}  // namespace comet
