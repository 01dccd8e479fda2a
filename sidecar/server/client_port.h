#pragma once
// The narrow port between a session (or a transport starting one) and the client
// connection it serves. Connection implements it over a socket; the unit tests' fake
// port (tests/unit/fake_port.h) implements it in memory, so every session kind runs
// under doctest without sockets.

#include <cstdint>
#include <memory>
#include <string_view>

#include "hub/message.h"

namespace comet {

class Session;
struct WorkerContext;

/** Which of the worker's shared read timeouts applies to the connection. */
enum class ReadTimeout : uint8_t {
  kNone,           // streams: the heartbeat finds dead peers
  kRequest,        // --request-timeout: a request must arrive in time
  kPoll,           // --poll-timeout: a held long-poll is answered empty
  kWebSocketIdle,  // three heartbeats without a word from the peer
};

class ClientPort {
 public:
  virtual ~ClientPort() = default;

  // ---- output --------------------------------------------------------------------
  /** Queues bytes for the client; they are written when the loop next turns. */
  virtual void write(std::string_view bytes) = 0;
  /** Queues a part of a shared message, by reference when that is cheaper than a copy. */
  virtual void write_shared(const MessagePtr& message, std::string_view part) = 0;
  /**
   * Called before queuing a message: a client whose unsent output already exceeds
   * --max-output-bytes is too slow and is cut off (it resumes from its cursor).
   * Returns false when the connection is (now) closing.
   */
  virtual bool check_output_limit() = 0;
  /** True when unsent output is above half of --max-output-bytes: pause replays. */
  virtual bool output_congested() const = 0;
  /** Calls Session::on_drain once unsent output falls to a quarter of --max-output-bytes. */
  virtual void watch_drain() = 0;

  // ---- the session's life ----------------------------------------------------------
  /**
   * Hands the connection to a session (SSE, WebSocket, long-poll, publish in flight).
   * Called while another session is current (one that waited for authorization starts
   * its transport), the new one replaces it; the old one is destroyed at the end of the
   * loop turn, so it may still return from the call it made this from.
   */
  virtual void begin_session(std::unique_ptr<Session> session) = 0;
  /** True while `session` is the connection's current session. */
  virtual bool serving(const Session* session) const = 0;
  /**
   * The session's answer is complete: it is destroyed after the current call returns
   * and the connection reads the next request (keep_alive) or closes after flushing.
   */
  virtual void end_session(bool keep_alive) = 0;
  /** Asks for Session::on_end_of_turn at the end of this loop turn. */
  virtual void defer() = 0;
  /** Heartbeats (Session::on_heartbeat) reach the session while enabled. */
  virtual void set_streaming(bool streaming) = 0;
  /** Which read timeout runs from now on (Session::on_timeout when it fires). */
  virtual void set_read_timeout(ReadTimeout timeout) = 0;
  /** Stops reading until the session ends (a request/response session with input waiting). */
  virtual void pause_reading() = 0;

  // ---- closing ----------------------------------------------------------------------
  /** Stops reading and closes once queued output is written (bounded by the request timeout). */
  virtual void close_after_flush() = 0;
  /** Closes at the end of this loop turn, discarding queued output. */
  virtual void close_now(const char* why) = 0;
  /**
   * True once the connection is closed (close_now, a failed write, a finished flush).
   * While it flushes after close_after_flush it is not: what is written still goes out.
   */
  virtual bool closing() const = 0;

  /** True when the TCP peer is on this machine (127.0.0.0/8, ::1, a Unix socket). */
  virtual bool peer_is_loopback() const = 0;
  /** True when the connection came in on the internal publish listener (--publish-listen). */
  virtual bool on_publish_listener() const = 0;
  /** True when it came in over a connection limit: only /healthz and /metrics are served. */
  virtual bool over_connection_limit() const { return false; }
  /** The worker this connection lives on (config, hub, bus, counters). */
  virtual WorkerContext& worker() = 0;
};

}  // namespace comet
