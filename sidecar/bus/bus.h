#pragma once
// The message bus: how a publish reaches every worker, and how a worker's hub learns
// where a channel stands. Two implementations: the embedded bus (bus/embedded_bus.h,
// in-process, one sidecar) and the Redis bridge (bridge/, across sidecar instances).
// server/ and transports/ see only these interfaces, never which one runs.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct event_base;  // libevent's loop; only passed through here

namespace comet {

class Hub;

/** What a publish returns to the publisher. */
struct PublishResult {
  bool ok = false;
  std::string channel;
  std::string epoch;
  uint64_t id = 0;
  std::string error;  // when !ok
  // With --redis-wait-replicas: replicas that acknowledged the write (-1: not asked),
  // and whether that was as many as asked for.
  int replicas = -1;
  bool durable = true;
};

/**
 * One worker's link to the bus. Lives on the worker's loop and feeds its hub: messages
 * published anywhere reach the hub in per-channel id order. Subscribe interest reaches
 * the link through the hub's ChannelObserver (a link that needs it registers itself).
 */
class Bus {
 public:
  using PublishDone = std::function<void(const PublishResult&)>;
  virtual ~Bus() = default;

  /** Starts work on the worker's loop (connecting, say); called once before the loop runs. */
  virtual void start() {}

  /**
   * Publishes one message. `done` is called exactly once on this worker's loop: before
   * publish returns when the outcome is known at once (embedded bus, Redis unreachable),
   * later otherwise. The publishing worker's own subscribers have the message by the
   * time `done` runs with ok, when the bus can promise that (the embedded bus does).
   */
  virtual void publish(std::string_view channel, std::string_view event, std::string_view data,
                       PublishDone done) = 0;

  /**
   * Called before a local subscriber joins `channel`: a bus that knows every channel's
   * head at once (embedded) brings the hub's view up to date, so cursors and "now" mean
   * the same on every worker. A bus that learns it asynchronously (Redis) does it from
   * the hub's ChannelObserver instead, and the hub holds subscriptions pending meanwhile.
   */
  virtual void prepare_subscribe(std::string_view channel) = 0;
};

/** The process-wide side of a bus: makes each worker's link and reports health. */
class BusProvider {
 public:
  virtual ~BusProvider() = default;

  /**
   * Makes the link of one worker, on that worker's thread before its loop runs. The
   * link lives on `base`, feeds `hub`, and is destroyed before either.
   */
  virtual std::unique_ptr<Bus> connect_worker(event_base* base, Hub& hub) = 0;

  /** "embedded" or "redis", for /healthz and the start-up line. */
  virtual const char* name() const = 0;
  /** True while some worker cannot reach the bus (/healthz says "degraded"). */
  virtual bool degraded() const { return false; }
  /** Appends the bus's own /healthz fields (",\"name\":value..."). */
  virtual void append_health_json(std::string&) const {}
  /** Appends the bus's own Prometheus metrics (complete HELP/TYPE/value lines). */
  virtual void append_metrics(std::string&) const {}
};

}  // namespace comet
