// Presence over /ws through the fake port (transports/websocket.cpp,
// transports/subscription_set.cpp, transports/ws_authorization.cpp): notices a paused
// subscription could not take, and the user a socket's memberships belong to.

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "fake_port.h"
#include "presence/presence_notices.h"
#include "presence/presence_registry.h"
#include "test_token.h"
#include "ws/frame_codec.h"

namespace comet {
namespace {

using test::close_payload;
using test::Frame;
using test::parse_frames;
using test::Seq;
using test::TestWorld;
using test::text_frame;
using test::ws_upgrade;

const std::string kSecret = "ws-presence-secret";
const std::string kRoom = "presence:room";

std::string client_text(std::string_view text) {
  return ws::encode_masked_frame(ws::Opcode::kText, text, 0x37fa213d, true);
}

std::string envelope(int id, const std::string& data) {
  return "{\"ch\":\"" + kRoom + "\",\"id\":" + std::to_string(id) +
         ",\"prev\":" + std::to_string(id - 1) + ",\"epoch\":\"E1\",\"data\":\"" + data + "\"}";
}

// A world with a presence registry (grace 5 s) and one /ws connection with a token for
// kRoom naming `user`.
struct PresenceWsWorld : TestWorld {
  explicit PresenceWsWorld(const std::string& user) {
    config().token_secret = kSecret;
    shared.presence = std::make_unique<PresenceRegistry>(5000);
    route(ws_upgrade("/ws?token=" + test::channel_token(kRoom, user, kSecret)));
    port.take();  // the 101
  }
  Seq<Frame> frames() { return Seq<Frame>(parse_frames(port.take())); }
  std::string members_now() { return shared.presence->members_notice(kRoom)->envelope; }
  /** What user `user`'s first subscription elsewhere does: joins, and the link publishes. */
  void join_elsewhere(const std::string& user) {
    shared.presence->connect(kRoom, MemberIdentity{user, ""}, monotonic_ms());
    hub.publish(make_presence_notice(kRoom, join_notice_json(kRoom, user, ""), "join"));
  }
};

}  // namespace

TEST_CASE(
    "WebSocket presence: a join missed during a paused replay comes as a fresh members list") {
  PresenceWsWorld w("7");
  w.config().max_output_bytes = 600;
  w.seed(kRoom, 30);
  w.port.peer_stalled = true;
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"presence:room\",\"since\":\"E1.0\"}"));
  const std::string first_members = w.members_now();
  REQUIRE(w.port.drain_watch);  // the replay waits for the reader
  // Bob joins meanwhile: the hub cannot hand the join to a subscription whose replay is
  // paused, and notices are never stored.
  w.join_elsewhere("9");
  int rounds = 0;
  while (w.port.drain_watch && rounds++ < 100) w.port.drain(0);
  w.deliver(kRoom, "live");
  Seq<Frame> expected{
      text_frame("{\"type\":\"subscribed\",\"ch\":\"presence:room\",\"epoch\":\"E1\",\"id\":0}"),
      text_frame(first_members)};
  for (int i = 1; i <= 30; ++i)
    expected.push_back(text_frame(envelope(i, "m" + std::to_string(i))));
  expected.push_back(text_frame(w.members_now()));  // after the replay, before live ones
  expected.push_back(text_frame(envelope(31, "live")));
  CHECK(w.members_now().find("\"id\":\"9\"") != std::string::npos);
  CHECK(w.frames() == expected);
}

TEST_CASE("WebSocket presence: a live notice is not repeated as a list") {
  PresenceWsWorld w("7");
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"presence:room\"}"));
  w.port.take();
  w.join_elsewhere("9");
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"presence:room\"}"));  // replays nothing
  CHECK(w.frames() == Seq<Frame>{text_frame(join_notice_json(kRoom, "9", ""))});
}

TEST_CASE("WebSocket presence: a refresh keeps the user; another sub is refused and closes") {
  PresenceWsWorld w("7");
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"presence:room\"}"));
  w.port.take();
  // The same user, and a token naming nobody: accepted.
  w.port.input(client_text("{\"cmd\":\"auth\",\"token\":\"" +
                           test::channel_token(kRoom, "7", kSecret) + "\"}"));
  w.port.input(client_text("{\"cmd\":\"auth\",\"token\":\"" +
                           test::channel_token(kRoom, "", kSecret) + "\"}"));
  Seq<Frame> ok = w.frames();
  REQUIRE(ok.size() == 2);
  CHECK(ok[0].payload.rfind("{\"type\":\"auth\",\"exp\":", 0) == 0);
  CHECK(ok[0].payload.find("\"sub\":\"7\"") != std::string::npos);
  CHECK(ok[1].payload.rfind("{\"type\":\"auth\",\"exp\":", 0) == 0);
  CHECK_FALSE(w.port.flush_close);
  // Another user: its memberships are user 7's, so the socket ends.
  w.port.input(client_text("{\"cmd\":\"auth\",\"token\":\"" +
                           test::channel_token(kRoom, "9", kSecret) + "\"}"));
  CHECK(w.frames() ==
        Seq<Frame>{text_frame("{\"type\":\"error\",\"error\":\"forbidden\",\"status\":403,"
                              "\"message\":\"token refused: its sub names user \\\"9\\\", but "
                              "this connection is user \\\"7\\\": a refresh keeps the user "
                              "(connect again to change it)\"}"),
                   Frame{true, 8, false, close_payload(ws::kClosePolicy, "user changed")}});
  CHECK(w.port.flush_close);
  CHECK(w.counters().auth_refused == 1);
  std::string list;
  w.shared.presence->append_members_json(list, kRoom);
  CHECK(list == "[{\"id\":\"7\",\"info\":{}}]");
}

TEST_CASE(
    "WebSocket presence: a refresh with a token naming nobody keeps the user for later subs") {
  PresenceWsWorld w("7");
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"presence:room\"}"));
  w.port.take();
  w.port.input(client_text("{\"cmd\":\"auth\",\"token\":\"" +
                           test::channel_token("presence:*", "", kSecret) + "\"}"));
  w.port.take();
  // A presence channel subscribed after it: still user 7 (it was refused before).
  w.port.input(client_text("{\"cmd\":\"sub\",\"ch\":\"presence:lobby\"}"));
  const Seq<Frame> frames = w.frames();
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].payload.rfind("{\"type\":\"subscribed\",\"ch\":\"presence:lobby\"", 0) == 0);
  std::string list;
  w.shared.presence->append_members_json(list, "presence:lobby");
  CHECK(list == "[{\"id\":\"7\",\"info\":{}}]");
}

}  // namespace comet
