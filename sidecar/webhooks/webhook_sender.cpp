// The --webhook-url sender. Events arrive from any thread into the outbox (under a
// mutex) and wake the sender's own loop (LoopWakeup); the loop takes the due batch and
// POSTs it with evhttp's client. A graceful stop flushes: the loop sends what is queued
// until it is empty or the stop deadline, then ends. Connections are freed only from
// the sender's own timer and wake events, never inside an evhttp callback (libevent
// still uses the connection after the callback returns).

#include "webhooks/webhook_sender.h"

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "http/http_url.h"
#include "hub/message.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop_wakeup.h"
#include "webhooks/webhook_outbox.h"
#include "webhooks/webhook_signature.h"

namespace comet {
namespace {

constexpr size_t kMaxAnswerBytes = 1024 * 1024;  // the answer is not read, only its status
constexpr int64_t kWarningIntervalMs = 10 * 1000;

timeval to_timeval(int64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

/** errno after a failed exchange, when it says something about reaching the endpoint. */
bool says_why(int error) {
  return error == ECONNREFUSED || error == ECONNRESET || error == EHOSTUNREACH ||
         error == ENETUNREACH || error == ETIMEDOUT || error == EPIPE;
}

std::string transport_failure(int error, int saved_errno) {
  switch (error) {
    case EVREQ_HTTP_TIMEOUT:
      return "timed out";
    case EVREQ_HTTP_INVALID_HEADER:
      return "answer is not valid HTTP";
    case EVREQ_HTTP_DATA_TOO_LONG:
      return "answer too large";
    default:
      // libevent often leaves ENOTCONN (from reading the failed socket) where the
      // connect was refused: name errno only when it is about reaching the endpoint.
      return says_why(saved_errno) ? std::string("connection failed: ") + strerror(saved_errno)
                                   : "connection refused, or closed without an answer";
  }
}

}  // namespace

struct WebhookSender::Impl {
  Impl(const Config& config, WebhookStats& stats);
  ~Impl();

  void push(const PresenceEvent& event);
  void run();
  void flush(int64_t timeout_ms);
  void stop();
  void on_wake();
  bool flushed(std::optional<int64_t> due) const;
  void schedule();
  void send(const std::string& id, const std::string& body, int failures);
  void finish(bool ok, const std::string& why);
  void warn(const std::string& what);

  static void on_timer(evutil_socket_t, short, void* arg);
  static void on_deadline(evutil_socket_t, short, void* arg);
  static void on_flush_deadline(evutil_socket_t, short, void* arg);
  static void on_response(evhttp_request* request, void* arg);
  static void on_request_error(evhttp_request_error error, void* arg);

  WebhookStats& stats_;
  std::string url_text_;
  http::HttpUrl url_;
  std::string secret_;
  int64_t timeout_ms_;

  enum class Phase { kRunning, kFlushing, kStopping };

  std::mutex mutex_;  // guards outbox_, phase_ and flush_deadline_ms_
  WebhookOutbox outbox_;
  Phase phase_ = Phase::kRunning;
  int64_t flush_deadline_ms_ = 0;  // monotonic; set with kFlushing

  // The sender's loop; touched only from its thread once it runs.
  event_base* base_ = nullptr;
  evdns_base* dns_ = nullptr;  // null for a numeric host
  std::optional<LoopWakeup> wakeup_;
  event* timer_ = nullptr;           // the next batch or retry is due
  event* deadline_ = nullptr;        // --webhook-timeout of the request in flight
  event* flush_deadline_ = nullptr;  // the end of a graceful stop's flush
  bool flushing_ = false;            // the loop has seen kFlushing
  int64_t flush_until_ms_ = 0;       // flush_deadline_ms_, as the loop read it
  evhttp_connection* connection_ = nullptr;
  bool outstanding_ = false;  // a request is on its way
  std::string batch_id_;      // of the request on its way, for the log
  int transport_error_ = -1;
  int transport_errno_ = 0;
  int64_t last_warning_ms_ = -kWarningIntervalMs;
  bool failing_ = false;  // the last request failed: log the recovery
  std::thread thread_;
};

std::string WebhookSender::check_config(const Config& config) {
  if (config.webhook_url.empty()) return "";
  http::HttpUrl url;
  if (!http::parse_http_url(config.webhook_url, url))
    return "--webhook-url " + config.webhook_url +
           ": expected an http:// URL of the app's endpoint (e.g. "
           "http://127.0.0.1/comet-webhook.php)";
  if (config.webhook_secret.empty())
    return "--webhook-url needs --webhook-secret or --webhook-secret-file: the endpoint "
           "must be able to verify the requests it receives";
  return "";
}

WebhookSender::Impl::Impl(const Config& config, WebhookStats& stats)
    : stats_(stats),
      url_text_(config.webhook_url),
      secret_(config.webhook_secret),
      timeout_ms_(std::max<int64_t>(1, config.webhook_timeout_ms)),
      outbox_(config.webhook_queue) {
  http::parse_http_url(config.webhook_url, url_);  // checked by check_config
  base_ = event_base_new();
  wakeup_.emplace(base_, [this] { on_wake(); });
  timer_ = evtimer_new(base_, on_timer, this);
  deadline_ = evtimer_new(base_, on_deadline, this);
  flush_deadline_ = evtimer_new(base_, on_flush_deadline, this);
  unsigned char scratch[16];
  if (evutil_inet_pton(AF_INET, url_.host.c_str(), scratch) != 1 &&
      evutil_inet_pton(AF_INET6, url_.host.c_str(), scratch) != 1) {
    // evhttp resolves the host through evdns on this loop, never blocking it.
    dns_ = evdns_base_new(base_, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (dns_ == nullptr) {
      LOG_WARN("webhooks",
               "no DNS resolver configuration; --webhook-url host from /etc/hosts only");
      dns_ = evdns_base_new(base_, 0);
      if (dns_ != nullptr) evdns_base_load_hosts(dns_, nullptr);
    }
  }
  thread_ = std::thread([this] { run(); });
}

WebhookSender::Impl::~Impl() {
  stop();
  if (connection_ != nullptr) evhttp_connection_free(connection_);  // no callback after it
  if (dns_ != nullptr) evdns_base_free(dns_, 0);
  event_free(flush_deadline_);
  event_free(deadline_);
  event_free(timer_);
  wakeup_.reset();
  event_base_free(base_);
  size_t dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped = outbox_.drop_all();
  }
  stats_.events_dropped += dropped;
  stats_.queued = 0;
  if (dropped != 0)
    LOG_WARN("webhooks", "stopping with %zu events not delivered to %s (dropped)", dropped,
             url_text_.c_str());
}

void WebhookSender::Impl::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (phase_ == Phase::kStopping) return;
    phase_ = Phase::kStopping;
  }
  wakeup_->wake();
  if (thread_.joinable()) thread_.join();
}

void WebhookSender::Impl::flush(int64_t timeout_ms) {
  const int64_t started = monotonic_ms();
  size_t queued;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (phase_ != Phase::kRunning) return;
    phase_ = Phase::kFlushing;
    flush_deadline_ms_ = started + timeout_ms;
    outbox_.send_at_once();
    queued = outbox_.size();
  }
  if (queued != 0)
    LOG_INFO("webhooks", "stopping: delivering %zu queued events to %s (at most %lld ms)", queued,
             url_text_.c_str(), static_cast<long long>(timeout_ms));
  wakeup_->wake();
  if (thread_.joinable()) thread_.join();  // the loop ends once flushed or at the deadline
  size_t dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    phase_ = Phase::kStopping;
    dropped = outbox_.drop_all();
  }
  stats_.events_dropped += dropped;
  stats_.queued = 0;
  const long long took = static_cast<long long>(monotonic_ms() - started);
  if (dropped != 0)
    LOG_WARN("webhooks", "stopping: %zu events not delivered to %s within %lld ms (dropped)",
             dropped, url_text_.c_str(), took);
  else if (queued != 0)
    LOG_INFO("webhooks", "stopping: every queued event delivered (%lld ms)", took);
}

void WebhookSender::Impl::run() {
  pthread_setname_np(pthread_self(), "comet-webhooks");
  event_base_dispatch(base_);
}

void WebhookSender::Impl::push(const PresenceEvent& event) {
  size_t dropped;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t before = outbox_.size();
    dropped = outbox_.push(event, monotonic_ms());
    stats_.queued = outbox_.size();
    // The loop needs to hear only of a first event (to time the batch) and of a full
    // batch; anything else joins what it already waits for.
    wake = before == 0 || outbox_.size() % WebhookOutbox::kMaxBatchEvents == 0;
  }
  if (dropped != 0) {
    stats_.events_dropped += dropped;
    warn("queue full (--webhook-queue): dropped the oldest events");
  }
  if (wake) wakeup_->wake();
}

void WebhookSender::Impl::on_wake() {
  Phase phase;
  int64_t flush_deadline_ms;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    phase = phase_;
    flush_deadline_ms = flush_deadline_ms_;
  }
  if (phase == Phase::kStopping) {
    event_base_loopbreak(base_);
    return;
  }
  if (phase == Phase::kFlushing && !flushing_) {
    flushing_ = true;
    flush_until_ms_ = flush_deadline_ms;
    const timeval wait = to_timeval(std::max<int64_t>(0, flush_deadline_ms - monotonic_ms()));
    evtimer_add(flush_deadline_, &wait);
  }
  schedule();
}

void WebhookSender::Impl::on_flush_deadline(evutil_socket_t, short, void* arg) {
  auto& self = *static_cast<Impl*>(arg);
  // Not inside an evhttp callback: the request in flight can go now. Its batch stays in
  // the outbox, and flush() counts it as dropped.
  self.outstanding_ = false;
  if (self.connection_ != nullptr) evhttp_connection_free(self.connection_);
  self.connection_ = nullptr;
  event_base_loopbreak(self.base_);
}

bool WebhookSender::Impl::flushed(std::optional<int64_t> due) const {
  // Nothing left, or the next attempt (a retry's backoff) would come after the deadline:
  // waiting for it would only delay the exit.
  return flushing_ && (!due || *due > flush_until_ms_);
}

void WebhookSender::Impl::on_timer(evutil_socket_t, short, void* arg) {
  static_cast<Impl*>(arg)->schedule();
}

void WebhookSender::Impl::schedule() {
  if (outstanding_) return;
  std::string id, body;
  int failures = 0;
  std::optional<int64_t> due;
  const int64_t now = monotonic_ms();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (const WebhookBatch* batch = outbox_.take_due(now)) {
      id = batch->id;
      body = batch->body;
      failures = batch->failures;
    } else {
      due = outbox_.due_ms();
    }
  }
  if (!id.empty()) {
    send(id, body, failures);
  } else if (flushed(due)) {
    event_base_loopbreak(base_);
  } else if (due) {
    const timeval wait = to_timeval(std::max<int64_t>(0, *due - now));
    evtimer_add(timer_, &wait);
  }
}

void WebhookSender::Impl::send(const std::string& id, const std::string& body, int failures) {
  // Here only from the timer or the wake event: the previous connection's callbacks are over.
  if (connection_ != nullptr) evhttp_connection_free(connection_);
  outstanding_ = true;
  batch_id_ = id;
  transport_error_ = -1;
  transport_errno_ = 0;
  connection_ = evhttp_connection_base_new(base_, dns_, url_.host.c_str(), url_.port);
  if (connection_ == nullptr) {
    finish(false, "connection failed");
    return;
  }
  const timeval timeout = to_timeval(timeout_ms_);
  evhttp_connection_set_timeout_tv(connection_, &timeout);
  evhttp_connection_set_max_body_size(connection_, kMaxAnswerBytes);

  evhttp_request* request = evhttp_request_new(on_response, this);
  evhttp_request_set_error_cb(request, on_request_error);
  evkeyvalq* headers = evhttp_request_get_output_headers(request);
  // Signed afresh on every attempt: the endpoint refuses timestamps older than 5 minutes,
  // and a batch may be retried for longer than that.
  const int64_t timestamp = wall_clock_ms() / 1000;
  const std::string signature = webhook_signature(secret_, timestamp, body);
  evhttp_add_header(headers, "Host", url_.host_header.c_str());
  evhttp_add_header(headers, "Content-Type", "application/json");
  evhttp_add_header(headers, "User-Agent", "comet-sidecar");
  evhttp_add_header(headers, "Connection", "close");
  evhttp_add_header(headers, "X-Comet-Webhook-Id", id.c_str());
  evhttp_add_header(headers, "X-Comet-Timestamp", std::to_string(timestamp).c_str());
  evhttp_add_header(headers, "X-Comet-Signature", signature.c_str());
  if (failures != 0)
    evhttp_add_header(headers, "X-Comet-Webhook-Attempt", std::to_string(failures + 1).c_str());
  evbuffer_add(evhttp_request_get_output_buffer(request), body.data(), body.size());
  // The connection's own timeout bounds each step; this bounds the whole exchange.
  evtimer_add(deadline_, &timeout);
  // libevent owns the request from here, and may call on_response before returning.
  if (evhttp_make_request(connection_, request, EVHTTP_REQ_POST, url_.target.c_str()) != 0 &&
      outstanding_)
    finish(false, "request could not be sent");
}

void WebhookSender::Impl::on_request_error(evhttp_request_error error, void* arg) {
  auto& self = *static_cast<Impl*>(arg);
  self.transport_errno_ = errno;  // libevent restored it for us; read it before anything
  self.transport_error_ = error;
}

void WebhookSender::Impl::on_response(evhttp_request* request, void* arg) {
  const int saved_errno = errno;
  auto& self = *static_cast<Impl*>(arg);
  if (!self.outstanding_) return;
  if (request == nullptr) {
    self.finish(false, transport_failure(self.transport_error_, self.transport_errno_));
    return;
  }
  const int status = evhttp_request_get_response_code(request);
  if (status == 0) {  // the connect failed (evhttp calls back without an error code then)
    self.finish(false, transport_failure(-1, saved_errno));
  } else if (status >= 200 && status < 300) {
    self.finish(true, "");
  } else {
    self.finish(false, "answered " + std::to_string(status));
  }
}

void WebhookSender::Impl::on_deadline(evutil_socket_t, short, void* arg) {
  auto& self = *static_cast<Impl*>(arg);
  if (!self.outstanding_) return;
  // Not inside an evhttp callback: the connection can go now, with its request.
  if (self.connection_ != nullptr) evhttp_connection_free(self.connection_);
  self.connection_ = nullptr;
  self.finish(false, "timed out after " + std::to_string(self.timeout_ms_) + " ms");
}

void WebhookSender::Impl::finish(bool ok, const std::string& why) {
  outstanding_ = false;
  evtimer_del(deadline_);
  size_t sent = 0;
  int64_t wait_ms = 0;  // until the retry, for the log
  const int64_t now = monotonic_ms();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ok) {
      sent = outbox_.delivered();
    } else {
      outbox_.failed(now);
    }
    stats_.queued = outbox_.size();
    if (!ok) {
      const std::optional<int64_t> due = outbox_.due_ms();
      wait_ms = due ? *due - now : 0;
    }
  }
  if (ok) {
    LOG_DEBUG("webhooks", "batch %s delivered (%zu events)", batch_id_.c_str(), sent);
    stats_.requests_ok += 1;
    stats_.events_sent += sent;
    if (failing_) LOG_INFO("webhooks", "%s answers again", url_text_.c_str());
    failing_ = false;
  } else {
    stats_.requests_failed += 1;
    failing_ = true;
    LOG_DEBUG("webhooks", "batch %s failed (%s); again in %lld ms", batch_id_.c_str(), why.c_str(),
              static_cast<long long>(wait_ms));
    warn("POST " + url_text_ + " " + why + "; batch " + batch_id_ + " again in " +
         std::to_string(wait_ms) + " ms");
  }
  // Not from here: this may be inside an evhttp callback, and sending frees the connection.
  const timeval now_tv{0, 0};
  evtimer_add(timer_, &now_tv);
}

void WebhookSender::Impl::warn(const std::string& what) {
  const int64_t now = monotonic_ms();
  std::lock_guard<std::mutex> lock(mutex_);
  if (now - last_warning_ms_ < kWarningIntervalMs) return;
  last_warning_ms_ = now;
  LOG_WARN("webhooks", "%s", what.c_str());
}

WebhookSender::WebhookSender(const Config& config, WebhookStats& stats)
    : impl_(std::make_unique<Impl>(config, stats)) {}

WebhookSender::~WebhookSender() = default;

void WebhookSender::on_presence_event(const PresenceEvent& event) { impl_->push(event); }

void WebhookSender::flush(int64_t timeout_ms) { impl_->flush(timeout_ms); }

}  // namespace comet
