#pragma once
// Asks the PHP app (--auth-url) which private channels a browser may subscribe to,
// carrying the browser's Cookie header (docs/protocol.md, "Authorization by the app").
// One per worker, on the worker's event loop: answers are cached per (SHA-256 of the
// Cookie header, channel) for the app's ttl, identical questions in flight are asked
// once, in-flight and waiting questions are bounded, and every failure is a refusal.

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace comet {

/** The app's verdict on a set of channels. */
struct AuthAnswer {
  enum class Outcome : uint8_t {
    kAnswered,  // the app answered: `allowed` lists the channels it allowed
    kFailed,    // no usable answer (refused connection, timeout, non-200, bad JSON)
    kBusy,      // too many questions waiting on this worker (answer 503)
  };
  Outcome outcome = Outcome::kFailed;
  std::string error;                 // kFailed / kBusy: why, for the client's error message
  std::vector<std::string> allowed;  // kAnswered: the asked channels the app allowed
  std::string user;                  // the app's "user" ("" when it gave none)
  std::string info_json;             // the app's "info" object as compact JSON ("" = none)
  int64_t expires_ms = 0;            // wall clock (ms since 1970) until which this holds

  bool allows(std::string_view channel) const;
};

/** A question on its way; destroying it drops the callback (the asker went away). */
class AuthQuestion {
 public:
  virtual ~AuthQuestion() = default;
};

class AuthUrlClient {
 public:
  static constexpr size_t kMaxInFlight = 64;   // HTTP requests to the app per worker
  static constexpr size_t kMaxWaiting = 1024;  // questions queued behind them
  static constexpr int64_t kFailureCacheMs = 1000;

  AuthUrlClient(event_base* base, const Config& config);
  ~AuthUrlClient();
  AuthUrlClient(const AuthUrlClient&) = delete;
  AuthUrlClient& operator=(const AuthUrlClient&) = delete;

  /**
   * From the cache only: true (and `out` filled) when every channel has a fresh cached
   * answer for this cookie (failures cached for kFailureCacheMs count as answers: out is
   * then kFailed). Never does I/O.
   */
  bool lookup(std::string_view cookie, const std::vector<std::string>& channels, AuthAnswer& out);

  /**
   * Asks the app about `channels` (those not fresh in the cache) for the browser whose
   * Cookie header is `cookie`; `origin` is sent as X-Comet-Origin when not empty.
   * `done` is called exactly once from the event loop (never from inside ask), unless the
   * returned question is destroyed first. Never returns nullptr.
   */
  std::unique_ptr<AuthQuestion> ask(std::string_view cookie, std::string_view origin,
                                    const std::vector<std::string>& channels,
                                    std::function<void(const AuthAnswer&)> done);

  /** HTTP requests sent to the app so far (tests and /metrics count them). */
  uint64_t requests_sent() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace comet
