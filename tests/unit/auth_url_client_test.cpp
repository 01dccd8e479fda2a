// AuthUrlClient (auth/auth_url_client.cpp) against a fake PHP app: an evhttp server on
// 127.0.0.1, on the same event loop, whose answers each test chooses.

#include "auth/auth_url_client.h"

#include <doctest/doctest.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/clock.h"

namespace comet {
namespace {

using Outcome = AuthAnswer::Outcome;
using Channels = std::vector<std::string>;

int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

/** Runs the loop until `done` holds or `timeout_ms` passes; returns `done()`. */
bool run_until(event_base* base, const std::function<bool()>& done, int64_t timeout_ms = 3000) {
  // A ticker, so that EVLOOP_ONCE never sleeps past the timeout when nothing happens.
  event* tick = event_new(
      base, -1, EV_PERSIST, [](evutil_socket_t, short, void*) {}, nullptr);
  const timeval every{0, 5000};
  event_add(tick, &every);
  const int64_t deadline = steady_ms() + timeout_ms;
  while (!done() && steady_ms() < deadline) event_base_loop(base, EVLOOP_ONCE);
  event_free(tick);
  return done();
}

void run_for(event_base* base, int64_t ms) {
  run_until(
      base, [] { return false; }, ms);
}

/** One question as the app received it. */
struct Received {
  bool post = false;
  std::string target, host, cookie, origin, content_type, user_agent, body;
  bool has_origin = false;
};

/** The app's side: records each question and answers it now, later or never. */
class FakeApp {
 public:
  explicit FakeApp(event_base* base) : base_(base), http_(evhttp_new(base)) {
    evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http_, "127.0.0.1", 0);
    REQUIRE(bound != nullptr);
    sockaddr_in address{};
    socklen_t length = sizeof(address);
    REQUIRE(getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&address),
                        &length) == 0);
    port_ = ntohs(address.sin_port);
    evhttp_set_gencb(http_, on_request, this);
  }
  ~FakeApp() {
    // evhttp frees a request it handed us only once it is answered, even when its
    // connection is gone: answer what is still held.
    for (auto& held : held_) {
      if (held->timer != nullptr) event_free(held->timer);
      reply(*held);
    }
    evhttp_free(http_);
  }
  FakeApp(const FakeApp&) = delete;
  FakeApp& operator=(const FakeApp&) = delete;

  uint16_t port() const { return port_; }
  std::string url(const std::string& target = "/auth") const {
    return "http://127.0.0.1:" + std::to_string(port_) + target;
  }

  int status = 200;
  std::string body = R"({"allow":[]})";
  std::function<std::string(const Received&)> answer;  // when set, replaces `body`
  int64_t delay_ms = 0;                                // < 0: never (until destroyed)
  std::vector<Received> received;

 private:
  struct Held {
    FakeApp* app = nullptr;
    evhttp_request* request = nullptr;
    event* timer = nullptr;
    int status = 200;
    std::string body;
  };

  static void on_request(evhttp_request* request, void* arg) {
    FakeApp& app = *static_cast<FakeApp*>(arg);
    evkeyvalq* headers = evhttp_request_get_input_headers(request);
    auto header = [headers](const char* name) {
      const char* value = evhttp_find_header(headers, name);
      return value != nullptr ? std::string(value) : std::string();
    };
    Received r;
    r.post = evhttp_request_get_command(request) == EVHTTP_REQ_POST;
    r.target = evhttp_request_get_uri(request);
    r.host = header("Host");
    r.cookie = header("Cookie");
    r.origin = header("X-Comet-Origin");
    r.has_origin = evhttp_find_header(headers, "X-Comet-Origin") != nullptr;
    r.content_type = header("Content-Type");
    r.user_agent = header("User-Agent");
    evbuffer* input = evhttp_request_get_input_buffer(request);
    if (const size_t size = evbuffer_get_length(input); size > 0)
      r.body.assign(reinterpret_cast<const char*>(evbuffer_pullup(input, -1)), size);

    auto held = std::make_unique<Held>();
    held->app = &app;
    held->request = request;
    held->status = app.status;
    held->body = app.answer ? app.answer(r) : app.body;
    app.received.push_back(std::move(r));
    if (app.delay_ms == 0) {
      reply(*held);
      return;
    }
    if (app.delay_ms > 0) {
      held->timer = evtimer_new(app.base_, on_timer, held.get());
      const timeval delay{app.delay_ms / 1000,
                          static_cast<suseconds_t>(app.delay_ms % 1000 * 1000)};
      evtimer_add(held->timer, &delay);
    }
    app.held_.push_back(std::move(held));
  }

  static void on_timer(evutil_socket_t, short, void* arg) {
    Held* held = static_cast<Held*>(arg);
    FakeApp& app = *held->app;
    event_free(held->timer);
    held->timer = nullptr;
    reply(*held);
    for (auto it = app.held_.begin(); it != app.held_.end(); ++it) {
      if (it->get() == held) {
        app.held_.erase(it);
        break;
      }
    }
  }

  static void reply(Held& held) {
    evhttp_add_header(evhttp_request_get_output_headers(held.request), "Content-Type",
                      "application/json");
    evbuffer* output = evbuffer_new();
    evbuffer_add(output, held.body.data(), held.body.size());
    evhttp_send_reply(held.request, held.status, held.status == 200 ? "OK" : "Not OK", output);
    evbuffer_free(output);
  }

  event_base* base_;
  evhttp* http_;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<Held>> held_;
};

/** A loop, the fake app, and a client configured for it (made by client()). */
struct World {
  World() : base(event_base_new()), app(std::make_unique<FakeApp>(base)) {
    // The fake app may write an answer to a connection the client has closed.
    signal(SIGPIPE, SIG_IGN);
    config.auth_url = app->url();
  }
  ~World() {
    auth.reset();
    app.reset();
    event_base_free(base);
  }

  AuthUrlClient& client() {
    if (!auth) auth = std::make_unique<AuthUrlClient>(base, config);
    return *auth;
  }

  /** Asks and waits for the one answer, checking it does not come from inside ask(). */
  AuthAnswer ask(const std::string& cookie, const Channels& channels,
                 const std::string& origin = "") {
    std::optional<AuthAnswer> answer;
    int calls = 0;
    auto question = client().ask(cookie, origin, channels, [&](const AuthAnswer& a) {
      answer = a;
      ++calls;
    });
    REQUIRE(question != nullptr);
    CHECK(calls == 0);
    REQUIRE(run_until(base, [&] { return calls > 0; }));
    CHECK(calls == 1);
    return *answer;
  }

  event_base* base;
  std::unique_ptr<FakeApp> app;
  Config config;
  std::unique_ptr<AuthUrlClient> auth;
};

/** The form field as PHP's $_POST would see it. */
std::string form_value(const std::string& body, const std::string& name) {
  const std::string prefix = name + "=";
  if (body.compare(0, prefix.size(), prefix) != 0) return "<absent>";
  char* decoded = evhttp_uridecode(body.c_str() + prefix.size(), 1, nullptr);
  std::string value = decoded;
  free(decoded);
  return value;
}

TEST_CASE("auth-url: the app is asked with the browser's cookie and origin") {
  World w;
  w.config.auth_url = w.app->url("/comet-auth.php?v=1");
  w.app->body =
      R"({"allow":["private:a","private:zzz"],"user":"7","info":{"name":"Ann","n":[1,2]},"ttl":120})";
  const int64_t before = wall_clock_ms();
  const AuthAnswer a =
      w.ask("sid=abc; theme=dark", {"private:b", "private:a"}, "https://app.example");

  REQUIRE(w.app->received.size() == 1);
  const Received& r = w.app->received[0];
  CHECK(r.post);
  CHECK(r.target == "/comet-auth.php?v=1");
  CHECK(r.host == "127.0.0.1:" + std::to_string(w.app->port()));
  CHECK(r.cookie == "sid=abc; theme=dark");
  CHECK(r.origin == "https://app.example");
  CHECK(r.content_type == "application/x-www-form-urlencoded");
  CHECK(r.user_agent == "comet-sidecar");
  CHECK(r.body == "channels=private%3Aa%2Cprivate%3Ab");
  CHECK(form_value(r.body, "channels") == "private:a,private:b");
  CHECK(w.client().requests_sent() == 1);

  // Only channels that were asked: private:zzz is not.
  CHECK(a.outcome == Outcome::kAnswered);
  CHECK(a.allowed == Channels{"private:a"});
  CHECK(a.allows("private:a"));
  CHECK_FALSE(a.allows("private:b"));
  CHECK_FALSE(a.allows("private:zzz"));
  CHECK(a.user == "7");
  CHECK(a.info_json == R"({"name":"Ann","n":[1,2]})");
  CHECK(a.expires_ms >= before + 120 * 1000);
  CHECK(a.expires_ms <= wall_clock_ms() + 120 * 1000);
}

TEST_CASE("auth-url: every channel-name character survives the form encoding") {
  World w;
  const std::string name = "private:user/7=x+y.z-w_v:AZ09";
  w.app->body = R"({"allow":["private:user/7=x+y.z-w_v:AZ09"]})";
  const AuthAnswer a = w.ask("sid=1", {name});
  REQUIRE(w.app->received.size() == 1);
  CHECK(form_value(w.app->received[0].body, "channels") == name);
  CHECK_FALSE(w.app->received[0].has_origin);  // none given, none sent
  CHECK(a.allowed == Channels{name});
}

TEST_CASE("auth-url: optional fields of the answer") {
  World w;
  SUBCASE("an integer user, no info, the default ttl, no allow") {
    w.app->body = R"({"user":42})";
    const int64_t before = wall_clock_ms();
    const AuthAnswer a = w.ask("sid=1", {"private:a"});
    CHECK(a.outcome == Outcome::kAnswered);
    CHECK(a.allowed.empty());
    CHECK(a.user == "42");
    CHECK(a.info_json.empty());
    CHECK(a.expires_ms >= before + 60 * 1000);
    CHECK(a.expires_ms <= wall_clock_ms() + 60 * 1000);
  }
  SUBCASE("null is as good as absent") {
    w.app->body = R"({"allow":["private:a"],"user":null,"info":null,"ttl":null})";
    const AuthAnswer a = w.ask("sid=1", {"private:a"});
    CHECK(a.outcome == Outcome::kAnswered);
    CHECK(a.allowed == Channels{"private:a"});
    CHECK(a.user.empty());
    CHECK(a.info_json.empty());
  }
  SUBCASE("the largest ttl and user id") {
    w.app->body = R"({"allow":["private:a"],"user":18446744073709551615,"ttl":86400})";
    const AuthAnswer a = w.ask("sid=1", {"private:a"});
    CHECK(a.outcome == Outcome::kAnswered);
    CHECK(a.user == "18446744073709551615");
    CHECK(a.expires_ms >= wall_clock_ms() + 86399 * 1000);
  }
}

TEST_CASE("auth-url: a status other than 200 or a malformed answer is a failure") {
  std::string deep_info = R"({"info":)";
  for (int i = 0; i < 40; ++i) deep_info += R"({"a":)";
  deep_info += "1" + std::string(41, '}');
  const std::string huge = R"({"allow":[],"pad":")" + std::string(70 * 1024, 'x') + R"("})";
  struct Case {
    int status;
    std::string body;
    std::string error;
  };
  const std::vector<Case> cases = {
      {500, R"({"allow":["private:a"]})", "auth-url answered 500"},
      {403, "{}", "auth-url answered 403"},
      {200, "<html>oops</html>", "auth-url answer is not valid JSON"},
      {200, "", "auth-url answer is not valid JSON"},
      {200, "{\"user\":\"\xff\"}", "auth-url answer is not valid JSON"},  // not UTF-8
      // Parsed iteratively, so this depth cannot exhaust the stack.
      {200, std::string(60000, '['), "auth-url answer is not valid JSON"},
      {200, R"(["private:a"])", "auth-url answer is not a JSON object"},
      {200, R"({"allow":"private:a"})", "auth-url answer: allow must be a list of channels"},
      {200, R"({"allow":["private:a",1]})", "auth-url answer: allow must be a list of channels"},
      {200, R"({"user":true})", "auth-url answer: user must be a string or an integer"},
      {200, R"({"user":1.5})", "auth-url answer: user must be a string or an integer"},
      {200, R"({"user":")" + std::string(257, 'u') + "\"}",
       "auth-url answer: user must be a string or an integer"},
      {200, R"({"info":[]})", "auth-url answer: info must be an object"},
      {200, R"({"info":"Ann"})", "auth-url answer: info must be an object"},
      {200, deep_info, "auth-url answer: info nests too deep"},
      {200, R"({"ttl":0})", "auth-url answer: ttl must be 1-86400 seconds"},
      {200, R"({"ttl":86401})", "auth-url answer: ttl must be 1-86400 seconds"},
      {200, R"({"ttl":"60"})", "auth-url answer: ttl must be 1-86400 seconds"},
      {200, R"({"ttl":1.5})", "auth-url answer: ttl must be 1-86400 seconds"},
      {200, huge, "auth-url answer is too large"},
  };
  World w;
  for (size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    w.app->status = cases[i].status;
    w.app->body = cases[i].body;
    const std::string cookie = "sid=secret" + std::to_string(i);  // a fresh cookie each
    const AuthAnswer a = w.ask(cookie, {"private:a"});
    CHECK(a.outcome == Outcome::kFailed);
    CHECK(a.error == cases[i].error);
    CHECK(a.error.find("secret") == std::string::npos);
    CHECK(a.allowed.empty());
    CHECK_FALSE(a.allows("private:a"));
  }
  CHECK(w.client().requests_sent() == cases.size());
}

TEST_CASE("auth-url: answers are cached per cookie and channel for their ttl") {
  World w;
  w.app->body = R"({"allow":["private:a"],"user":"7","info":{"n":1},"ttl":1})";
  const AuthAnswer first = w.ask("sid=A", {"private:a", "private:b"});
  REQUIRE(first.outcome == Outcome::kAnswered);

  AuthAnswer cached;
  REQUIRE(w.client().lookup("sid=A", {"private:b", "private:a"}, cached));
  CHECK(cached.outcome == Outcome::kAnswered);
  CHECK(cached.allowed == Channels{"private:a"});
  CHECK(cached.user == "7");
  CHECK(cached.info_json == R"({"n":1})");
  CHECK(cached.expires_ms == first.expires_ms);
  REQUIRE(w.client().lookup("sid=A", {"private:b"}, cached));  // a refusal is an answer too
  CHECK(cached.allowed.empty());
  CHECK(cached.user == "7");
  CHECK_FALSE(w.client().lookup("sid=A", {"private:a", "private:c"}, cached));
  CHECK_FALSE(w.client().lookup("sid=B", {"private:a"}, cached));

  // Asking again is answered from the cache (still from the loop, not from ask()).
  const AuthAnswer again = w.ask("sid=A", {"private:b", "private:a"});
  CHECK(again.allowed == Channels{"private:a"});
  CHECK(w.client().requests_sent() == 1);

  // Only what the cache lacks goes to the app; the answer covers everything asked.
  const AuthAnswer more = w.ask("sid=A", {"private:a", "private:c"});
  REQUIRE(w.app->received.size() == 2);
  CHECK(w.app->received[1].body == "channels=private%3Ac");
  CHECK(more.outcome == Outcome::kAnswered);
  CHECK(more.allowed == Channels{"private:a"});
  CHECK(more.user == "7");

  run_for(w.base, 1100);  // past the ttl
  CHECK_FALSE(w.client().lookup("sid=A", {"private:a"}, cached));
  w.ask("sid=A", {"private:a"});
  CHECK(w.client().requests_sent() == 3);
}

TEST_CASE("auth-url: the cache is bounded, and drops the oldest answers first") {
  World w;
  w.app->body = R"({"allow":["private:c10000"]})";
  Channels many;
  char name[32];
  for (int i = 0; i <= 10000; ++i) {
    snprintf(name, sizeof(name), "private:c%05d", i);  // sorted as numbered: asked in order
    many.push_back(name);
  }
  // One answer for 10001 channels overflows the cache (10000 entries) while it is stored.
  const AuthAnswer a = w.ask("sid=A", many);
  CHECK(a.outcome == Outcome::kAnswered);
  CHECK(a.allowed == Channels{"private:c10000"});  // from the answer, not from the cache
  AuthAnswer cached;
  CHECK_FALSE(w.client().lookup("sid=A", {"private:c00000"}, cached));
  CHECK_FALSE(w.client().lookup("sid=A", {"private:c00999"}, cached));
  REQUIRE(w.client().lookup("sid=A", {"private:c01001", "private:c10000"}, cached));
  CHECK(cached.allowed == Channels{"private:c10000"});
}

TEST_CASE("auth-url: identical questions on their way are asked once") {
  World w;
  w.app->delay_ms = 50;
  w.app->body = R"({"allow":["private:b"],"user":"7"})";
  std::vector<AuthAnswer> answers;
  auto record = [&answers](const AuthAnswer& a) { answers.push_back(a); };
  auto q1 = w.client().ask("sid=A", "https://one.example", {"private:a", "private:b"}, record);
  auto q2 = w.client().ask("sid=A", "https://two.example", {"private:b", "private:a"}, record);
  auto q3 = w.client().ask("sid=B", "", {"private:a", "private:b"}, record);
  REQUIRE(run_until(w.base, [&] { return answers.size() == 3; }));
  CHECK(w.app->received.size() == 2);
  CHECK(w.client().requests_sent() == 2);
  for (const AuthAnswer& a : answers) {
    CHECK(a.outcome == Outcome::kAnswered);
    CHECK(a.allowed == Channels{"private:b"});
  }
}

TEST_CASE("auth-url: a failure refuses, and is cached for about a second") {
  World w;
  w.app->status = 500;
  const AuthAnswer failed = w.ask("sid=A", {"private:a"});
  CHECK(failed.outcome == Outcome::kFailed);
  CHECK(failed.error == "auth-url answered 500");

  AuthAnswer cached;
  REQUIRE(w.client().lookup("sid=A", {"private:a"}, cached));
  CHECK(cached.outcome == Outcome::kFailed);
  CHECK(cached.error == "auth-url answered 500");
  CHECK(cached.expires_ms <= wall_clock_ms() + AuthUrlClient::kFailureCacheMs);
  CHECK(w.ask("sid=A", {"private:a"}).outcome == Outcome::kFailed);
  CHECK(w.client().requests_sent() == 1);

  // A failure on one channel fails the whole question, cached or not.
  w.app->status = 200;
  w.app->body = R"({"allow":["private:b"]})";
  const AuthAnswer mixed = w.ask("sid=A", {"private:b", "private:a"});
  CHECK(mixed.outcome == Outcome::kFailed);
  CHECK(mixed.error == "auth-url answered 500");
  CHECK(mixed.allowed.empty());
  CHECK(w.app->received.back().body == "channels=private%3Ab");

  run_for(w.base, 1100);
  CHECK_FALSE(w.client().lookup("sid=A", {"private:a"}, cached));
  w.app->body = R"({"allow":["private:a"]})";
  CHECK(w.ask("sid=A", {"private:a"}).allowed == Channels{"private:a"});
  CHECK(w.client().requests_sent() == 3);
}

TEST_CASE("auth-url: no answer within --auth-timeout is a failure") {
  World w;
  w.config.auth_timeout_ms = 100;
  w.app->delay_ms = 1000;
  const int64_t start = steady_ms();
  const AuthAnswer a = w.ask("sid=A", {"private:a"});
  const int64_t waited = steady_ms() - start;
  CHECK(a.outcome == Outcome::kFailed);
  CHECK(a.error == "auth-url timed out after 100 ms");
  CHECK(waited >= 90);
  CHECK(waited < 800);
  CHECK(w.app->received.size() == 1);
}

TEST_CASE("auth-url: an app that does not listen is a failure") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  socklen_t length = sizeof(address);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  close(fd);  // nothing listens on that port now

  World w;
  w.config.auth_url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/auth";
  const AuthAnswer a = w.ask("sid=A", {"private:a"});
  MESSAGE("error: " << a.error);
  CHECK(a.outcome == Outcome::kFailed);
  CHECK(a.error.rfind("auth-url unreachable", 0) == 0);
  CHECK(w.client().requests_sent() == 1);
}

TEST_CASE("auth-url: an asker that went away is not called; the others are") {
  World w;
  w.app->delay_ms = 30;
  w.app->body = R"({"allow":["private:a"]})";
  int gone_calls = 0;
  int kept_calls = 0;
  auto gone = w.client().ask("sid=A", "", {"private:a"}, [&](const AuthAnswer&) { ++gone_calls; });
  auto kept = w.client().ask("sid=A", "", {"private:a"}, [&](const AuthAnswer&) { ++kept_calls; });
  gone.reset();
  REQUIRE(run_until(w.base, [&] { return kept_calls > 0; }));
  run_for(w.base, 50);
  CHECK(gone_calls == 0);
  CHECK(kept_calls == 1);
  AuthAnswer cached;
  CHECK(w.client().lookup("sid=A", {"private:a"}, cached));  // the shared request went on

  // A question dropped before it was sent costs no request.
  auto dropped =
      w.client().ask("sid=B", "", {"private:a"}, [&](const AuthAnswer&) { ++gone_calls; });
  dropped.reset();
  run_for(w.base, 100);
  CHECK(gone_calls == 0);
  CHECK(w.client().requests_sent() == 1);
}

TEST_CASE("auth-url: a question answered from the cache can be dropped before its callback") {
  World w;
  w.app->body = R"({"allow":["private:a"]})";
  w.ask("sid=A", {"private:a"});
  int calls = 0;
  auto question = w.client().ask("sid=A", "", {"private:a"}, [&](const AuthAnswer&) { ++calls; });
  question.reset();
  run_for(w.base, 20);
  CHECK(calls == 0);
}

TEST_CASE("auth-url: destroying the client with questions outstanding calls nobody") {
  World w;
  w.app->delay_ms = -1;
  int calls = 0;
  std::vector<std::unique_ptr<AuthQuestion>> questions;
  for (int i = 0; i < 3; ++i) {
    questions.push_back(w.client().ask("sid=" + std::to_string(i), "", {"private:a"},
                                       [&](const AuthAnswer&) { ++calls; }));
  }
  REQUIRE(run_until(w.base, [&] { return w.app->received.size() == 3; }));
  w.auth.reset();
  run_for(w.base, 50);
  CHECK(calls == 0);
  questions.clear();  // after their client: must not touch it
}

TEST_CASE("auth-url: beyond the in-flight and waiting limits a question is answered busy") {
  World w;
  w.config.auth_timeout_ms = 10 * 1000;
  w.app->delay_ms = -1;
  constexpr size_t kHeld = AuthUrlClient::kMaxInFlight + AuthUrlClient::kMaxWaiting;
  int calls = 0;
  std::vector<std::unique_ptr<AuthQuestion>> questions;
  for (size_t i = 0; i < kHeld; ++i) {
    questions.push_back(w.client().ask("sid=" + std::to_string(i), "", {"private:a"},
                                       [&](const AuthAnswer&) { ++calls; }));
  }
  REQUIRE(run_until(w.base, [&] { return w.app->received.size() == AuthUrlClient::kMaxInFlight; }));
  CHECK(w.client().requests_sent() == AuthUrlClient::kMaxInFlight);

  std::optional<AuthAnswer> busy;
  auto extra =
      w.client().ask("sid=extra", "", {"private:a"}, [&](const AuthAnswer& a) { busy = a; });
  // The same question as one already waiting joins it instead.
  auto joined = w.client().ask("sid=" + std::to_string(kHeld - 1), "", {"private:a"},
                               [&](const AuthAnswer&) { ++calls; });
  CHECK_FALSE(busy.has_value());  // not from inside ask()
  REQUIRE(run_until(w.base, [&] { return busy.has_value(); }));
  CHECK(busy->outcome == Outcome::kBusy);
  CHECK_FALSE(busy->error.empty());
  run_for(w.base, 20);
  CHECK(calls == 0);
  CHECK(w.client().requests_sent() == AuthUrlClient::kMaxInFlight);
}

TEST_CASE("auth-url: a host name is resolved without blocking the loop") {
  World w;
  w.config.auth_url = "http://localhost:" + std::to_string(w.app->port()) + "/auth";
  w.app->body = R"({"allow":["private:a"]})";
  const AuthAnswer a = w.ask("sid=A", {"private:a"});
  CHECK(a.outcome == Outcome::kAnswered);
  CHECK(a.allowed == Channels{"private:a"});
  REQUIRE(w.app->received.size() == 1);
  CHECK(w.app->received[0].host == "localhost:" + std::to_string(w.app->port()));
  w.ask("sid=B", {"private:a"});  // the address is reused
  CHECK(w.client().requests_sent() == 2);
}

TEST_CASE("auth-url: destroying the client while its host name is being resolved") {
  World w;
  w.config.auth_url = "http://comet-auth-test.invalid/auth";
  int calls = 0;
  auto question = w.client().ask("sid=A", "", {"private:a"}, [&](const AuthAnswer&) { ++calls; });
  event_base_loop(w.base, EVLOOP_NONBLOCK);  // starts the lookup
  w.auth.reset();
  run_for(w.base, 50);  // evdns reports the abandoned lookup: no crash, nothing leaked
  CHECK(calls == 0);
}

TEST_CASE("auth-url: questions that cannot be asked fail") {
  for (const std::string url :
       {"https://127.0.0.1/auth", "http:///auth", "http://127.0.0.1:0/", "not a url"}) {
    CAPTURE(url);
    World w;
    w.config.auth_url = url;
    const AuthAnswer a = w.ask("sid=A", {"private:a"});
    CHECK(a.outcome == Outcome::kFailed);
    CHECK(a.error == "auth-url is not a usable http:// URL");
    CHECK(w.client().requests_sent() == 0);
  }
  World w;
  const AuthAnswer a = w.ask("sid=A\r\nX-Evil: 1", {"private:a"});
  CHECK(a.outcome == Outcome::kFailed);
  CHECK(a.error == "the Cookie header cannot be forwarded to the auth-url");
  CHECK(w.app->received.empty());
}

TEST_CASE("auth-url: a question about no channel is answered without the app") {
  World w;
  const AuthAnswer a = w.ask("sid=A", {});
  CHECK(a.outcome == Outcome::kAnswered);
  CHECK(a.allowed.empty());
  CHECK(w.client().requests_sent() == 0);
}

}  // namespace
}  // namespace comet
