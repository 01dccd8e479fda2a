// The fake port itself (tests/unit/fake_port.h): the session tests rely on it playing
// Connection's part faithfully, so its own rules are pinned here.

#include "fake_port.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace comet {
namespace {

using test::TestWorld;

// A session that records what the port calls and does what the test asks.
class ProbeSession final : public Session {
 public:
  ProbeSession(ClientPort& port, std::vector<std::string>& log)
      : Session(port, SessionKind::kEcho), log_(log) {}
  ~ProbeSession() override { log_.push_back("destroyed"); }

  void on_input(evbuffer* input) override {
    log_.push_back("input " + std::to_string(evbuffer_get_length(input)));
    evbuffer_drain(input, 1);
  }
  void on_heartbeat() override { log_.push_back("heartbeat"); }
  void on_drain() override { log_.push_back("drain"); }
  void on_end_of_turn() override {
    log_.push_back("end of turn");
    if (defer_again-- > 0) port_.defer();
    if (end_at_turn) port_.end_session(keep_alive);
  }

  int defer_again = 0;
  bool end_at_turn = false;
  bool keep_alive = true;

 private:
  std::vector<std::string>& log_;
};

TEST_CASE("fake port: output limits as Connection has them") {
  TestWorld w;
  w.config().max_output_bytes = 100;
  w.port.unsent = 50;
  CHECK_FALSE(w.port.output_congested());
  w.port.unsent = 51;
  CHECK(w.port.output_congested());
  w.port.unsent = 100;
  CHECK(w.port.check_output_limit());
  w.port.unsent = 101;
  CHECK_FALSE(w.port.check_output_limit());
  CHECK(w.port.close_reason == "slow reader");
  CHECK(w.counters().slow_readers_cut == 1);
  CHECK_FALSE(w.port.check_output_limit());  // already closing: not counted twice
  CHECK(w.counters().slow_readers_cut == 1);
  w.port.write("dropped");
  CHECK(w.port.out == "");
  CHECK(w.port.dropped_bytes == 7);
}

TEST_CASE("fake port: a stalled peer accumulates unsent bytes; drain calls back at a quarter") {
  std::vector<std::string> log;  // outlives the world: the session logs its destruction
  TestWorld w;
  w.config().max_output_bytes = 100;
  w.port.begin_session(std::make_unique<ProbeSession>(w.port, log));
  w.port.peer_stalled = true;
  w.port.write(std::string(60, 'x'));
  CHECK(w.port.unsent == 60);
  CHECK(w.port.output_congested());
  w.port.watch_drain();
  w.port.drain(26);
  CHECK(log.empty());
  w.port.drain(25);
  CHECK(log == std::vector<std::string>{"drain"});
  w.port.drain(0);  // the watch was used up
  CHECK(log.size() == 1);
}

TEST_CASE("fake port: end_session destroys the session after the call, keep-alive or close") {
  std::vector<std::string> log;  // outlives the world: the session logs its destruction
  TestWorld w;
  auto session = std::make_unique<ProbeSession>(w.port, log);
  ProbeSession& probe = *session;
  w.port.begin_session(std::move(session));
  w.port.set_streaming(true);
  probe.defer_again = 2;
  w.port.defer();
  w.port.end_turn();  // runs again while the session defers again
  CHECK(log == std::vector<std::string>{"end of turn", "end of turn", "end of turn"});
  log.clear();
  SUBCASE("keep-alive") {
    probe.end_at_turn = true;
    w.port.defer();
    w.port.end_turn();
    CHECK(log == std::vector<std::string>{"end of turn", "destroyed"});
    CHECK(w.port.ended_keep_alive == true);
    CHECK_FALSE(w.port.closing());
    CHECK(w.port.read_timeout == ReadTimeout::kRequest);
  }
  SUBCASE("close") {
    probe.end_at_turn = true;
    probe.keep_alive = false;
    w.port.defer();
    w.port.end_turn();
    CHECK(w.port.ended_keep_alive == false);
    CHECK(w.port.flush_close);
  }
  CHECK(w.port.session == nullptr);
  CHECK_FALSE(w.port.streaming);
  CHECK(w.sessions(SessionKind::kEcho) == 0);
}

TEST_CASE("fake port: input stays buffered for the session, heartbeats only while streaming") {
  std::vector<std::string> log;  // outlives the world: the session logs its destruction
  TestWorld w;
  w.port.begin_session(std::make_unique<ProbeSession>(w.port, log));
  w.port.input("abc");
  w.port.input("d");
  CHECK(w.port.input_left() == 2);
  w.port.heartbeat();
  w.port.set_streaming(true);
  w.port.heartbeat();
  CHECK(log == std::vector<std::string>{"input 3", "input 3", "heartbeat"});
}

TEST_CASE("fake port: the request builder splits and decodes like the parser") {
  const http::Request r =
      test::make_request("GET", "/pub/a%3Ab?x=%20y", {{"X-Comet-Key", "K"}, {"Upgrade", "ws"}});
  CHECK(r.path == "/pub/a:b");
  CHECK(r.query == "x=%20y");
  CHECK(r.target == "/pub/a%3Ab?x=%20y");
  REQUIRE(r.header("x-comet-key") != nullptr);
  CHECK(*r.header("x-comet-key") == "K");
  CHECK(r.upgrade);
  CHECK(r.keep_alive);
  CHECK(r.http_minor == 1);
}

TEST_CASE("fake port: the chunk and frame readers reject what is malformed") {
  CHECK(test::dechunk("3\r\nabc\r\n0\r\n\r\n").terminated);
  CHECK_FALSE(test::dechunk("4\r\nabc\r\n0\r\n\r\n").ok);  // size does not match
  CHECK_FALSE(test::dechunk("A\r\nabc\r\n").ok);
  CHECK(test::dechunk("a\r\n0123456789\r\n").chunks == std::vector<std::string>{"0123456789"});
  std::string rest;
  const std::vector<test::Frame> f = test::parse_frames(std::string("\x81\x02hi\x89\x00\x82\x05"
                                                                    "ab",
                                                                    10),
                                                        &rest);
  REQUIRE(f.size() == 2);
  CHECK(f[0] == test::text_frame("hi"));
  CHECK(f[1].opcode == 9);
  CHECK(rest.size() == 4);
}

}  // namespace
}  // namespace comet
