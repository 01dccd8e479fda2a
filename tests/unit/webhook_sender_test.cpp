// WebhookSender (webhooks/webhook_sender.cpp) against a fake endpoint: an evhttp server
// on 127.0.0.1 on the test's loop, while the sender runs its own thread.

#include "webhooks/webhook_sender.h"

#include <doctest/doctest.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "util/clock.h"
#include "webhooks/webhook_signature.h"

namespace comet {
namespace {

int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

bool run_until(event_base* base, const std::function<bool()>& done, int64_t timeout_ms) {
  event* tick = event_new(
      base, -1, EV_PERSIST, [](evutil_socket_t, short, void*) {}, nullptr);
  const timeval every{0, 5000};
  event_add(tick, &every);
  const int64_t deadline = steady_ms() + timeout_ms;
  while (!done() && steady_ms() < deadline) event_base_loop(base, EVLOOP_ONCE);
  event_free(tick);
  return done();
}

/** A port nothing listens on (yet): bound, read, closed. */
uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

struct Received {
  std::string id, timestamp, signature, content_type, target, body;
};

/** The app's webhook endpoint: records each request and answers the next status. */
class FakeEndpoint {
 public:
  FakeEndpoint(event_base* base, uint16_t port) : http_(evhttp_new(base)) {
    REQUIRE(evhttp_bind_socket(http_, "127.0.0.1", port) == 0);
    evhttp_set_gencb(http_, on_request, this);
  }
  ~FakeEndpoint() {
    // evhttp frees a request it handed us only once it is answered.
    for (evhttp_request* request : held_) evhttp_send_reply(request, 200, "OK", nullptr);
    evhttp_free(http_);
  }

  std::vector<int> statuses;  // answers in turn (0: none, the request is held); then 200
  std::vector<Received> received;

 private:
  static void on_request(evhttp_request* request, void* arg) {
    auto& self = *static_cast<FakeEndpoint*>(arg);
    evkeyvalq* headers = evhttp_request_get_input_headers(request);
    auto header = [headers](const char* name) {
      const char* value = evhttp_find_header(headers, name);
      return value != nullptr ? std::string(value) : std::string();
    };
    Received r;
    r.id = header("X-Comet-Webhook-Id");
    r.timestamp = header("X-Comet-Timestamp");
    r.signature = header("X-Comet-Signature");
    r.content_type = header("Content-Type");
    r.target = evhttp_request_get_uri(request);
    evbuffer* input = evhttp_request_get_input_buffer(request);
    if (const size_t size = evbuffer_get_length(input); size > 0)
      r.body.assign(reinterpret_cast<const char*>(evbuffer_pullup(input, -1)), size);
    const size_t turn = self.received.size();
    self.received.push_back(std::move(r));
    const int status = turn < self.statuses.size() ? self.statuses[turn] : 200;
    if (status == 0) {
      self.held_.push_back(request);
      return;
    }
    evhttp_send_reply(request, status, status == 200 ? "OK" : "Nope", nullptr);
  }
  evhttp* http_;
  std::vector<evhttp_request*> held_;
};

Config webhook_config(uint16_t port) {
  Config config;
  config.webhook_url = "http://127.0.0.1:" + std::to_string(port) + "/hook.php?x=1";
  config.webhook_secret = "s3cret";
  config.webhook_timeout_ms = 1000;
  return config;
}

PresenceEvent member(const std::string& user) {
  return {PresenceEvent::kMemberAdded, "presence:room", user, R"({"n":1})", wall_clock_ms()};
}

bool signature_valid(const Received& r) {
  return r.signature == webhook_signature("s3cret", std::stoll(r.timestamp), r.body);
}

std::vector<std::string> users(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  std::vector<std::string> out;
  if (doc.HasParseError()) return out;
  for (const auto& e : doc["events"].GetArray())
    if (e.HasMember("user_id")) out.emplace_back(e["user_id"].GetString());
  return out;
}

struct Loop {
  Loop() : base(event_base_new()) {}
  ~Loop() { event_base_free(base); }
  event_base* base;
};

/** Runs `base` (the fake endpoint) on another thread while `blocking` runs here; returns
 * how long `blocking` took (ms). */
int64_t serve_while(event_base* base, const std::function<void()>& blocking) {
  std::atomic<bool> done{false};
  std::thread server([&] {
    run_until(
        base, [&] { return done.load(); }, 30000);
  });
  const int64_t started = steady_ms();
  blocking();
  const int64_t took = steady_ms() - started;
  done = true;
  server.join();
  return took;
}

}  // namespace

TEST_CASE("webhook sender: config is checked (fail closed without a secret)") {
  Config config;
  CHECK(WebhookSender::check_config(config).empty());  // off
  config.webhook_url = "http://127.0.0.1:9/hook";
  CHECK(WebhookSender::check_config(config).find("--webhook-secret") != std::string::npos);
  config.webhook_secret = "x";
  CHECK(WebhookSender::check_config(config).empty());
  config.webhook_url = "http://";
  CHECK_FALSE(WebhookSender::check_config(config).empty());
}

TEST_CASE("webhook sender: one signed batch, counted") {
  Loop loop;
  const uint16_t port = free_port();
  FakeEndpoint endpoint(loop.base, port);
  WebhookStats stats;
  {
    WebhookSender sender(webhook_config(port), stats);
    sender.on_presence_event({PresenceEvent::kChannelOccupied, "presence:room", "", "", 1});
    sender.on_presence_event(member("7"));
    CHECK(run_until(
        loop.base, [&] { return stats.events_sent.load() == 2; }, 3000));
  }
  REQUIRE(endpoint.received.size() == 1);
  const Received& r = endpoint.received[0];
  CHECK(r.target == "/hook.php?x=1");
  CHECK(r.content_type == "application/json");
  CHECK(r.id.size() == 32);
  CHECK(signature_valid(r));
  CHECK(std::llabs(std::stoll(r.timestamp) - wall_clock_ms() / 1000) <= 2);
  CHECK(r.body.find(R"("name":"channel_occupied")") != std::string::npos);
  CHECK(users(r.body).size() == 1);  // the occupied event has no user_id
  CHECK(stats.requests_ok == 1);
  CHECK(stats.requests_failed == 0);
  CHECK(stats.queued == 0);
  CHECK(stats.events_dropped == 0);
}

TEST_CASE("webhook sender: non-2xx is retried with the same id and body, re-signed") {
  Loop loop;
  const uint16_t port = free_port();
  FakeEndpoint endpoint(loop.base, port);
  endpoint.statuses = {500};
  WebhookStats stats;
  WebhookSender sender(webhook_config(port), stats);
  sender.on_presence_event(member("1"));
  CHECK(run_until(
      loop.base, [&] { return stats.events_sent.load() == 1; }, 4000));
  REQUIRE(endpoint.received.size() == 2);
  CHECK(endpoint.received[0].id == endpoint.received[1].id);
  CHECK(endpoint.received[0].body == endpoint.received[1].body);
  CHECK(signature_valid(endpoint.received[0]));
  CHECK(signature_valid(endpoint.received[1]));
  CHECK(stats.requests_failed == 1);
  CHECK(stats.requests_ok == 1);
}

TEST_CASE("webhook sender: no answer within --webhook-timeout is a failure, retried") {
  Loop loop;
  const uint16_t port = free_port();
  FakeEndpoint endpoint(loop.base, port);
  endpoint.statuses = {0};  // the first request is never answered
  WebhookStats stats;
  Config config = webhook_config(port);
  config.webhook_timeout_ms = 300;
  WebhookSender sender(config, stats);
  sender.on_presence_event(member("1"));
  CHECK(run_until(
      loop.base, [&] { return stats.events_sent.load() == 1; }, 4000));
  REQUIRE(endpoint.received.size() == 2);
  CHECK(endpoint.received[0].id == endpoint.received[1].id);
  CHECK(stats.requests_failed == 1);
  CHECK(stats.requests_ok == 1);
}

TEST_CASE("webhook sender: an endpoint down, then up, gets every event once, in order") {
  Loop loop;
  const uint16_t port = free_port();
  WebhookStats stats;
  WebhookSender sender(webhook_config(port), stats);
  for (int i = 0; i < 150; ++i) sender.on_presence_event(member(std::to_string(i)));
  // Refused at least once (the first attempt goes at once: a full batch).
  CHECK(run_until(
      loop.base, [&] { return stats.requests_failed.load() >= 1; }, 3000));
  CHECK(stats.queued == 150);
  FakeEndpoint endpoint(loop.base, port);
  CHECK(run_until(
      loop.base, [&] { return stats.events_sent.load() == 150; }, 6000));
  std::vector<std::string> seen;
  for (const Received& r : endpoint.received) {
    CHECK(signature_valid(r));
    for (const std::string& user : users(r.body)) seen.push_back(user);
  }
  REQUIRE(seen.size() == 150);
  for (int i = 0; i < 150; ++i) CHECK(seen[i] == std::to_string(i));
  CHECK(stats.events_dropped == 0);
}

TEST_CASE("webhook sender: a full queue drops the oldest and counts them; stop drops the rest") {
  const uint16_t port = free_port();  // nothing ever listens
  WebhookStats stats;
  Config config = webhook_config(port);
  config.webhook_queue = 10;
  {
    WebhookSender sender(config, stats);
    for (int i = 0; i < 25; ++i) sender.on_presence_event(member(std::to_string(i)));
    CHECK(stats.events_dropped == 15);
  }
  CHECK(stats.events_dropped == 25);
  CHECK(stats.events_sent == 0);
  CHECK(stats.queued == 0);
}

TEST_CASE("webhook sender: flush delivers what is queued before it returns") {
  Loop loop;
  const uint16_t port = free_port();
  FakeEndpoint endpoint(loop.base, port);
  WebhookStats stats;
  WebhookSender sender(webhook_config(port), stats);
  for (int i = 0; i < 3; ++i) sender.on_presence_event(member(std::to_string(i)));
  serve_while(loop.base, [&] { sender.flush(5000); });
  CHECK(stats.events_sent == 3);
  CHECK(stats.events_dropped == 0);
  CHECK(stats.queued == 0);
  REQUIRE(endpoint.received.size() == 1);
  CHECK(users(endpoint.received[0].body) == std::vector<std::string>{"0", "1", "2"});
}

TEST_CASE("webhook sender: flush gives up at its timeout, counting what is left as dropped") {
  Loop loop;
  const uint16_t port = free_port();
  FakeEndpoint endpoint(loop.base, port);
  endpoint.statuses = {0};  // accepted, never answered
  WebhookStats stats;
  Config config = webhook_config(port);
  config.webhook_timeout_ms = 60000;  // the request alone would wait a minute
  WebhookSender sender(config, stats);
  sender.on_presence_event(member("1"));
  sender.on_presence_event(member("2"));
  const int64_t took = serve_while(loop.base, [&] { sender.flush(500); });
  CHECK(took >= 450);
  CHECK(took < 3000);
  CHECK(endpoint.received.size() == 1);
  CHECK(stats.events_sent == 0);
  CHECK(stats.events_dropped == 2);
  CHECK(stats.queued == 0);
}

TEST_CASE("webhook sender: flush does not wait for a retry due after its timeout") {
  const uint16_t port = free_port();  // nothing listens: every attempt is refused
  WebhookStats stats;
  WebhookSender sender(webhook_config(port), stats);
  sender.on_presence_event(member("1"));
  const int64_t started = steady_ms();
  // Refused at once, again after the 1 s backoff; the next retry (2 s later) is past 1.5 s.
  sender.flush(1500);
  const int64_t took = steady_ms() - started;
  CHECK(took >= 900);
  CHECK(took < 1450);
  CHECK(stats.requests_failed == 2);
  CHECK(stats.events_dropped == 1);
}

}  // namespace comet
