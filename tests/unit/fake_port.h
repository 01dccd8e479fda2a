#pragma once
// An in-memory ClientPort and a small world around it (shared state, hub, a recording
// bus), so every session kind runs under doctest without sockets or an event loop.
//
// FakePort records everything a session asks of its connection. It also plays the
// parts of Connection and Worker that call sessions back: the test drives them
// explicitly (end_turn() for the worker's deferred step, heartbeat(), timeout(),
// input(), drain(), shutdown()), and after each call the fake destroys a session that
// called end_session, as Connection does. Header-only: tests/CMakeLists.txt compiles
// only *_test.cpp files into unit_tests.

#include <doctest/doctest.h>
#include <event2/buffer.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "bus/bus.h"
#include "bus/embedded_bus.h"
#include "http/query.h"
#include "http/request.h"
#include "hub/hub.h"
#include "hub/message.h"
#include "server/client_port.h"
#include "server/router.h"
#include "server/session.h"
#include "server/shared_state.h"
#include "server/worker_context.h"
#include "util/percent_decode.h"
#include "wire/message_builder.h"

namespace comet {
namespace test {

inline const char* read_timeout_name(ReadTimeout t) {
  switch (t) {
    case ReadTimeout::kNone:
      return "none";
    case ReadTimeout::kRequest:
      return "request";
    case ReadTimeout::kPoll:
      return "poll";
    case ReadTimeout::kWebSocketIdle:
      return "websocket-idle";
  }
  return "?";
}

class FakePort final : public ClientPort {
 public:
  explicit FakePort(WorkerContext& worker, bool is_loopback = true)
      : loopback(is_loopback), worker_(worker), input_(evbuffer_new()) {}
  ~FakePort() override {
    session.reset();  // the session unsubscribes (and may still write) in its destructor
    retired.clear();
    evbuffer_free(input_);
    // A shared part must live in the message it is written with: Connection keeps a
    // reference to the message, not to whatever else the part points into.
    CHECK_MESSAGE(foreign_shared_parts == 0, "write_shared got a part outside its message");
  }
  FakePort(const FakePort&) = delete;
  FakePort& operator=(const FakePort&) = delete;

  // ---- ClientPort -------------------------------------------------------------------
  void write(std::string_view bytes) override {
    ++writes;
    if (closed_now) {  // Connection drops output once close_now was called
      dropped_bytes += bytes.size();
      return;
    }
    out.append(bytes);
    if (peer_stalled) unsent += bytes.size();
  }

  void write_shared(const MessagePtr& message, std::string_view part) override {
    ++shared_writes;
    if (message == nullptr || !message->holds(part)) ++foreign_shared_parts;
    write(part);
  }

  bool check_output_limit() override {
    ++limit_checks;
    if (closing()) return false;
    if (unsent <= config().max_output_bytes) return true;
    worker_.counters().slow_readers_cut.fetch_add(1);
    close_now("slow reader");
    return false;
  }

  bool output_congested() const override { return unsent > config().max_output_bytes / 2; }

  void watch_drain() override {
    if (closing()) return;
    ++drain_watches;
    drain_watch = true;
  }

  void begin_session(std::unique_ptr<Session> s) override {
    ++sessions_begun;
    if (session != nullptr) {
      // Only a session waiting for authorization hands over (Connection retires it).
      ++sessions_replaced;
      retired.push_back(std::move(session));
    }
    session = std::move(s);
    end_pending = false;
  }

  bool serving(const Session* s) const override { return session.get() == s; }

  void end_session(bool keep_alive) override {
    ++end_calls;
    end_pending = true;
    ended_keep_alive = keep_alive;
  }

  void defer() override {
    ++defer_calls;
    deferred = true;
  }

  void set_streaming(bool s) override { streaming = s; }

  void set_read_timeout(ReadTimeout t) override {
    read_timeout = t;
    ++read_timeout_sets;
  }

  void pause_reading() override { reading_paused = true; }

  void close_after_flush() override {
    if (closed_now) return;
    flush_close = true;
  }

  void close_now(const char* why) override {
    if (closed_now) return;  // the first reason wins, as in Connection
    closed_now = true;
    close_reason = why;
  }

  // As Connection: closing only once closed; while flushing, output still goes out.
  bool closing() const override { return closed_now; }
  bool peer_is_loopback() const override { return loopback; }
  bool on_publish_listener() const override { return publish_listener; }
  WorkerContext& worker() override { return worker_; }

  // ---- what Connection and Worker would do -------------------------------------------
  /** After a call into the session: destroys it when it ended (Connection's order). */
  void settle() {
    if (!end_pending) return;
    end_pending = false;
    session.reset();
    ++sessions_destroyed;
    streaming = false;
    if (closed_now) return;
    if (!*ended_keep_alive)
      close_after_flush();
    else
      read_timeout = ReadTimeout::kRequest;
  }

  /** The worker's end-of-turn step: Session::on_end_of_turn for a deferred port. */
  void end_turn() {
    for (int round = 0; deferred && round < 100; ++round) {
      deferred = false;
      if (closed_now || session == nullptr) continue;
      ++end_of_turns;
      session->on_end_of_turn();
      settle();
    }
    CHECK_MESSAGE(!deferred, "defer() keeps asking for another turn");
  }

  /** A heartbeat tick; the worker only gives them to streaming connections. */
  void heartbeat() {
    if (session == nullptr || !streaming || closed_now) return;
    session->on_heartbeat();
    settle();
  }

  /** The read timeout fired. */
  void timeout() {
    if (session == nullptr || closed_now) return;
    session->on_timeout();
    settle();
  }

  /** Bytes from the client, into the connection's input buffer, then to the session. */
  void input(std::string_view bytes) {
    evbuffer_add(input_, bytes.data(), bytes.size());
    if (session == nullptr || closed_now) return;
    session->on_input(input_);
    settle();
  }
  size_t input_left() const { return evbuffer_get_length(input_); }

  /**
   * The client read its output down to `remaining` unsent bytes; calls on_drain when
   * a drain is watched and that is at most a quarter of --max-output-bytes.
   */
  void drain(size_t remaining = 0) {
    unsent = remaining;
    if (!drain_watch || closing() || session == nullptr) return;
    if (unsent > config().max_output_bytes / 4) return;
    drain_watch = false;
    session->on_drain();
    settle();
  }

  /** The worker stops: goodbye from the session, then close after flushing. */
  void shutdown() {
    if (session != nullptr) session->on_shutdown();
    close_after_flush();
    settle();
  }

  /** Returns what was written since the last take() and forgets it. */
  std::string take() {
    std::string text;
    text.swap(out);
    return text;
  }

  const Config& config() const { return worker_.config(); }

  // ---- recorded state ---------------------------------------------------------------
  std::string out;  // bytes written (not taken yet)
  std::unique_ptr<Session> session;
  std::optional<bool> ended_keep_alive;  // set by end_session (and kept after it)
  bool end_pending = false;              // end_session called, session not destroyed yet
  bool deferred = false;
  bool streaming = false;
  ReadTimeout read_timeout = ReadTimeout::kRequest;
  bool reading_paused = false;
  bool flush_close = false;  // close_after_flush
  bool closed_now = false;   // close_now
  std::string close_reason;
  bool drain_watch = false;

  // Settable by the test.
  size_t unsent = 0;          // output the client has not read yet
  bool peer_stalled = false;  // when true every write adds to `unsent`
  bool loopback = true;
  bool publish_listener = false;
  std::vector<std::unique_ptr<Session>> retired;  // replaced sessions (see begin_session)

  // Counts.
  int writes = 0;
  int shared_writes = 0;
  int foreign_shared_parts = 0;
  size_t dropped_bytes = 0;
  int limit_checks = 0;
  int drain_watches = 0;
  int sessions_begun = 0;
  int sessions_replaced = 0;
  int sessions_destroyed = 0;
  int end_calls = 0;
  int defer_calls = 0;
  int end_of_turns = 0;
  int read_timeout_sets = 0;

 private:
  WorkerContext& worker_;
  evbuffer* input_;
};

/**
 * A bus that records publishes. By default it completes at once, like the embedded
 * bus: it takes the next id of the channel as this worker's hub knows it (epoch
 * `epoch` for a new channel), hands the message to the hub and calls `done` with ok.
 * With `hold` it keeps `done` until complete() (a Redis publish in flight).
 */
class FakeBus final : public Bus {
 public:
  struct Publish {
    std::string channel, event, data;
    PublishDone done;  // empty once completed
    PublishResult result;
  };

  explicit FakeBus(Hub& hub) : hub_(hub) {}

  void start() override { ++starts; }

  void publish(std::string_view channel, std::string_view event, std::string_view data,
               PublishDone done) override {
    publishes.push_back(
        Publish{std::string(channel), std::string(event), std::string(data), std::move(done), {}});
    if (!hold) complete(publishes.size() - 1);
  }

  void prepare_subscribe(std::string_view channel) override {
    prepared.emplace_back(channel);
    auto it = heads.find(std::string(channel));
    if (it != heads.end()) hub_.adopt_head(channel, it->second);
  }

  /** Completes publish `index`: ok (assigning an id) unless `error` is given. */
  void complete(size_t index, const std::string& error = "") {
    REQUIRE(index < publishes.size());
    Publish& p = publishes[index];
    REQUIRE(p.done);
    PublishResult result;
    result.channel = p.channel;
    if (error.empty() && fail_with.empty()) {
      const Channel* ch = hub_.find(p.channel);
      const bool known = ch != nullptr && !ch->epoch().empty();
      result.ok = true;
      result.epoch = known ? ch->epoch() : epoch;
      result.id = known ? ch->last_id() + 1 : 1;
      hub_.publish(make_message(p.channel, result.epoch, result.id, result.id - 1, p.event, p.data,
                                monotonic_ms()));
    } else {
      result.error = error.empty() ? fail_with : error;
    }
    p.result = result;
    PublishDone done = std::move(p.done);
    p.done = nullptr;
    done(result);
  }

  size_t held() const {
    size_t n = 0;
    for (const Publish& p : publishes) n += p.done ? 1 : 0;
    return n;
  }

  bool hold = false;
  std::string fail_with;                  // non-empty: every publish fails with it
  std::string epoch = "E1";               // for channels the hub has no epoch for
  std::map<std::string, Position> heads;  // adopted into the hub by prepare_subscribe
  std::vector<Publish> publishes;
  std::vector<std::string> prepared;
  int starts = 0;

 private:
  Hub& hub_;
};

/** Splits "a=b&c" style targets into an http::Request as RequestParser would fill it. */
inline http::Request make_request(std::string method, std::string target,
                                  std::vector<std::pair<std::string, std::string>> headers = {},
                                  std::string body = "") {
  http::Request r;
  r.method = std::move(method);
  r.target = target;
  const size_t q = target.find('?');
  const std::string raw_path = target.substr(0, q);
  if (!percent_decode(raw_path, r.path, false)) r.path = raw_path;
  if (q != std::string::npos) r.query = target.substr(q + 1);
  for (auto& [name, value] : headers) {
    std::string lower = name;
    for (char& c : lower)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    r.headers.emplace_back(std::move(lower), std::move(value));
  }
  r.body = std::move(body);
  r.upgrade = r.header("upgrade") != nullptr;
  return r;
}

inline http::Request get(std::string target,
                         std::vector<std::pair<std::string, std::string>> headers = {}) {
  return make_request("GET", std::move(target), std::move(headers));
}

inline http::Request post(std::string target, std::string body,
                          std::vector<std::pair<std::string, std::string>> headers = {}) {
  return make_request("POST", std::move(target), std::move(headers), std::move(body));
}

/** The sample key of RFC 6455 section 1.3 and its accept value. */
inline constexpr const char* kWsKey = "dGhlIHNhbXBsZSBub25jZQ==";
inline constexpr const char* kWsAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

inline http::Request ws_upgrade(std::string target,
                                std::vector<std::pair<std::string, std::string>> extra = {}) {
  std::vector<std::pair<std::string, std::string>> headers = {{"host", "example.com"},
                                                              {"upgrade", "websocket"},
                                                              {"connection", "Upgrade"},
                                                              {"sec-websocket-version", "13"},
                                                              {"sec-websocket-key", kWsKey}};
  for (auto& h : extra) {
    bool replaced = false;
    for (auto& existing : headers)
      if (existing.first == h.first) existing.second = h.second, replaced = true;
    if (!replaced) headers.push_back(h);
  }
  return get(std::move(target), std::move(headers));
}

/** One worker's world: shared state (with an embedded bus for /healthz), hub, bus, port. */
struct TestWorld {
  explicit TestWorld(HubLimits limits = {}) : hub(limits) {
    shared.bus = std::make_unique<EmbeddedBus>();
  }
  ~TestWorld() {
    port.session.reset();
    CHECK(hub.subscription_count() == 0);  // every session unsubscribed what it subscribed
    CHECK(shared.counters.subscriptions.load() == 0);
  }

  /** Another client connection on this worker (destroy it before the world). */
  using FakePortRef = std::unique_ptr<FakePort>;
  FakePortRef make_port(bool loopback = true) { return std::make_unique<FakePort>(ctx, loopback); }

  Config& config() { return shared.config; }
  Counters& counters() { return shared.counters; }
  int64_t sessions(SessionKind kind) { return shared.counters.sessions[static_cast<int>(kind)]; }

  /**
   * Routes `request` on `p` as Connection::handle_request does: the session that ended
   * at once is destroyed, a full answer without keep-alive (or a refused upgrade)
   * closes after flushing. Returns what route_request returned.
   */
  bool route(const http::Request& request, FakePort& p) {
    const bool keep_alive = route_request(p, ctx, request);
    p.settle();
    if (p.session == nullptr && (!keep_alive || request.upgrade)) p.close_after_flush();
    return keep_alive;
  }
  bool route(const http::Request& request) { return route(request, port); }

  /** Publishes one message to the hub: the next id of `channel` (epoch E1 when new). */
  MessagePtr deliver(const std::string& channel, const std::string& data,
                     const std::string& event = "") {
    const Channel* ch = hub.find(channel);
    const bool known = ch != nullptr && !ch->epoch().empty();
    const std::string epoch = known ? ch->epoch() : bus.epoch;
    const uint64_t id = known ? ch->last_id() + 1 : 1;
    MessagePtr m = make_message(channel, epoch, id, id - 1, event, data, monotonic_ms());
    hub.publish(m);
    return m;
  }
  /** Publishes `count` messages "m1", "m2", ... (numbered by their id). */
  void seed(const std::string& channel, int count) {
    for (int i = 0; i < count; ++i) {
      const Channel* ch = hub.find(channel);
      const uint64_t next = ch != nullptr && !ch->epoch().empty() ? ch->last_id() + 1 : 1;
      deliver(channel, "m" + std::to_string(next));
    }
  }

  SharedState shared;
  Hub hub;
  FakeBus bus{hub};
  WorkerContext ctx{shared, hub, bus};
  FakePort port{ctx};
};

// ---- reading what was written ---------------------------------------------------------

/** One HTTP response split from written bytes. */
struct HttpResponse {
  int status = 0;
  std::string head;  // status line + headers, with the blank line
  std::vector<std::pair<std::string, std::string>> headers;  // as sent (names not lowered)
  std::string body;

  const std::string* header(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.first.size() != name.size()) continue;
      bool same = true;
      for (size_t i = 0; i < name.size() && same; ++i) {
        char a = h.first[i], b = name[i];
        if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
        same = a == b;
      }
      if (same) return &h.second;
    }
    return nullptr;
  }
  std::string header_or(std::string_view name, std::string fallback = "<absent>") const {
    const std::string* v = header(name);
    return v != nullptr ? *v : fallback;
  }
};

/**
 * Parses the responses in `text`. A response with Content-Length takes that many body
 * bytes; one without takes the rest of the text. Fails the test on malformed heads.
 */
inline std::vector<HttpResponse> parse_responses(std::string_view text) {
  std::vector<HttpResponse> all;
  while (!text.empty()) {
    const size_t end = text.find("\r\n\r\n");
    REQUIRE_MESSAGE(end != std::string_view::npos, "response head without a blank line");
    HttpResponse r;
    r.head = std::string(text.substr(0, end + 4));
    std::string_view head = text.substr(0, end + 2);
    text.remove_prefix(end + 4);
    const size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    REQUIRE_MESSAGE(status_line.substr(0, 9) == "HTTP/1.1 ", std::string(status_line));
    r.status = std::stoi(std::string(status_line.substr(9, 3)));
    head.remove_prefix(line_end + 2);
    while (!head.empty()) {
      const size_t eol = head.find("\r\n");
      const std::string_view line = head.substr(0, eol);
      const size_t colon = line.find(": ");
      REQUIRE_MESSAGE(colon != std::string_view::npos, std::string(line));
      r.headers.emplace_back(std::string(line.substr(0, colon)),
                             std::string(line.substr(colon + 2)));
      head.remove_prefix(eol + 2);
    }
    if (const std::string* length = r.header("content-length")) {
      const size_t n = std::stoul(*length);
      REQUIRE_MESSAGE(text.size() >= n, "body shorter than Content-Length");
      r.body = std::string(text.substr(0, n));
      text.remove_prefix(n);
    } else {
      r.body = std::string(text);
      text = {};
    }
    all.push_back(std::move(r));
  }
  return all;
}

/** Exactly one response in `text`. */
inline HttpResponse parse_response(std::string_view text) {
  std::vector<HttpResponse> all = parse_responses(text);
  REQUIRE(all.size() == 1);
  return all.front();
}

/** The JSON body of an error answer. */
inline std::string error_body(int status, std::string_view json_message) {
  return "{\"error\":\"" + std::string(json_message) + "\",\"status\":" + std::to_string(status) +
         "}\n";
}

/**
 * Decodes a chunked body into its chunks, checking every size line against the bytes
 * that follow. `terminated` tells whether the last-chunk "0\r\n\r\n" ended it; `ok`
 * false means the framing is broken (then the result holds the chunks before that).
 */
struct Chunks {
  std::vector<std::string> chunks;
  bool terminated = false;
  bool ok = true;
  std::string joined() const {
    std::string all;
    for (const std::string& c : chunks) all += c;
    return all;
  }
};

inline Chunks dechunk(std::string_view body) {
  Chunks result;
  while (!body.empty()) {
    const size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos || eol == 0) {
      result.ok = false;
      return result;
    }
    size_t size = 0;
    for (char c : body.substr(0, eol)) {
      int digit;
      if (c >= '0' && c <= '9')
        digit = c - '0';
      else if (c >= 'a' && c <= 'f')
        digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        digit = c - 'A' + 10;
      else {
        result.ok = false;
        return result;
      }
      size = size * 16 + static_cast<size_t>(digit);
    }
    body.remove_prefix(eol + 2);
    if (size == 0) {
      result.terminated = body == "\r\n";
      result.ok = result.terminated;
      return result;
    }
    if (body.size() < size + 2 || body.substr(size, 2) != "\r\n") {
      result.ok = false;
      return result;
    }
    result.chunks.emplace_back(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
  return result;
}

/** One server-to-client WebSocket frame. */
struct Frame {
  bool fin = true;
  int opcode = 0;
  bool masked = false;
  std::string payload;
  bool rsv1 = false;  // permessage-deflate: the payload is compressed

  bool operator==(const Frame& o) const {
    return fin == o.fin && opcode == o.opcode && masked == o.masked && payload == o.payload &&
           rsv1 == o.rsv1;
  }
};

inline std::ostream& operator<<(std::ostream& os, const Frame& f) {
  return os << "{op " << f.opcode << (f.fin ? "" : " !fin") << (f.masked ? " masked" : "")
            << (f.rsv1 ? " rsv1" : "") << " '" << f.payload << "'}";
}

inline Frame text_frame(std::string payload) { return Frame{true, 1, false, std::move(payload)}; }

/** The payload of a close frame with `code` and `reason`. */
inline std::string close_payload(uint16_t code, std::string_view reason = "") {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xff);
  p.append(reason);
  return p;
}

/**
 * Splits written bytes into frames (RFC 6455 5.2, read by hand rather than with the
 * codec under test). `rest` gets the bytes of an incomplete last frame.
 */
inline std::vector<Frame> parse_frames(std::string_view bytes, std::string* rest = nullptr) {
  std::vector<Frame> frames;
  while (bytes.size() >= 2) {
    const auto b0 = static_cast<uint8_t>(bytes[0]);
    const auto b1 = static_cast<uint8_t>(bytes[1]);
    Frame f;
    f.fin = (b0 & 0x80) != 0;
    f.opcode = b0 & 0x0f;
    f.masked = (b1 & 0x80) != 0;
    f.rsv1 = (b0 & 0x40) != 0;
    CHECK_MESSAGE((b0 & 0x30) == 0, "RSV2 or RSV3 set");
    uint64_t len = b1 & 0x7f;
    size_t at = 2;
    if (len == 126) {
      if (bytes.size() < 4) break;
      len = (uint64_t{static_cast<uint8_t>(bytes[2])} << 8) | static_cast<uint8_t>(bytes[3]);
      CHECK_MESSAGE(len >= 126, "16-bit length for a short payload");
      at = 4;
    } else if (len == 127) {
      if (bytes.size() < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(bytes[2 + i]);
      CHECK_MESSAGE(len > 0xffff, "64-bit length for a short payload");
      at = 10;
    }
    if (f.masked) at += 4;
    if (bytes.size() < at + len) break;
    f.payload = std::string(bytes.substr(at, len));
    frames.push_back(std::move(f));
    bytes.remove_prefix(at + len);
  }
  if (rest != nullptr)
    *rest = std::string(bytes);
  else
    CHECK_MESSAGE(bytes.empty(), "bytes after the last complete frame");
  return frames;
}

/** Printable lists for CHECKs that compare whole sequences. */
template <typename T>
struct Seq : std::vector<T> {
  using std::vector<T>::vector;
  Seq(std::vector<T> v) : std::vector<T>(std::move(v)) {}  // NOLINT: implicit on purpose
};

template <typename T>
inline std::ostream& operator<<(std::ostream& os, const Seq<T>& s) {
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) {
    os << (i ? ", " : "");
    if constexpr (std::is_same_v<T, std::string>)
      os << '"' << s[i] << '"';
    else
      os << s[i];
  }
  return os << ']';
}

}  // namespace test
}  // namespace comet
