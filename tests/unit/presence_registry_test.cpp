#include "presence/presence_registry.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "presence/presence_notices.h"

namespace comet {
namespace {

// Records the notices a worker's PresenceLink would queue.
class RecordingInbox : public Inbox {
 public:
  void post(const MessagePtr& message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    notices.push_back(message->envelope);
  }
  std::mutex mutex_;
  std::vector<std::string> notices;
};

class RecordingSink : public PresenceEventSink {
 public:
  void on_presence_event(const PresenceEvent& e) override {
    events.push_back(std::string(presence_event_kind_name(e.kind)) + " " + e.channel + " " +
                     e.user + " " + e.info_json);
  }
  std::vector<std::string> events;
};

struct Fixture {
  explicit Fixture(int64_t grace_ms) : registry(grace_ms) {
    registry.attach(&inbox);
    set_presence_event_sink(&sink);
  }
  ~Fixture() {
    registry.detach(&inbox);
    set_presence_event_sink(nullptr);
  }
  PresenceRegistry registry;
  RecordingInbox inbox;
  RecordingSink sink;
};

const MemberIdentity kAnn{"7", "{\"name\":\"Ann\"}"};
const MemberIdentity kBob{"9", ""};

}  // namespace

TEST_CASE("presence: the first connection joins, the last leaves only after the grace") {
  Fixture f(5000);
  f.registry.connect("presence:room", kAnn, 1000);
  REQUIRE(f.inbox.notices.size() == 1);
  CHECK(f.inbox.notices[0] ==
        "{\"type\":\"join\",\"ch\":\"presence:room\",\"member\":{\"id\":\"7\",\"info\":{\"name\":"
        "\"Ann\"}}}");
  CHECK(f.sink.events ==
        std::vector<std::string>{"channel_occupied presence:room  ",
                                 "member_added presence:room 7 {\"name\":\"Ann\"}"});
  f.registry.disconnect("presence:room", "7", 2000);
  f.registry.sweep(6999);  // grace not over yet: still a member, nothing sent
  CHECK(f.inbox.notices.size() == 1);
  CHECK(f.registry.member_count("presence:room") == 1);
  CHECK(f.registry.connection_count("presence:room") == 0);
  f.registry.sweep(7000);
  REQUIRE(f.inbox.notices.size() == 2);
  CHECK(f.inbox.notices[1] ==
        "{\"type\":\"leave\",\"ch\":\"presence:room\",\"member\":{\"id\":\"7\"}}");
  CHECK(f.registry.member_count("presence:room") == 0);
  CHECK(f.registry.total_members() == 0);
  CHECK(f.sink.events.size() == 4);
  CHECK(f.sink.events[2] == "member_removed presence:room 7 {\"name\":\"Ann\"}");
  CHECK(f.sink.events[3] == "channel_vacated presence:room  ");
  f.registry.sweep(100000);  // a leave happens once
  CHECK(f.inbox.notices.size() == 2);
}

TEST_CASE("presence: a reconnect within the grace sends neither leave nor join") {
  Fixture f(5000);
  f.registry.connect("presence:room", kAnn, 0);
  f.registry.disconnect("presence:room", "7", 100);
  f.registry.connect("presence:room", kAnn, 5099);  // back 1 ms before the leave
  f.registry.sweep(20000);
  CHECK(f.inbox.notices.size() == 1);  // the first join only
  CHECK(f.sink.events.size() == 2);
  CHECK(f.registry.member_count("presence:room") == 1);
  CHECK(f.registry.events(PresenceEvent::kMemberRemoved) == 0);
}

TEST_CASE("presence: three connections of one user are one member") {
  Fixture f(5000);
  for (int i = 0; i < 3; ++i) f.registry.connect("presence:room", kAnn, 0);
  f.registry.connect("presence:room", kBob, 0);
  CHECK(f.registry.member_count("presence:room") == 2);
  CHECK(f.registry.connection_count("presence:room") == 4);
  CHECK(f.registry.total_members() == 2);
  CHECK(f.registry.events(PresenceEvent::kMemberAdded) == 2);
  CHECK(f.registry.events(PresenceEvent::kChannelOccupied) == 1);
  // Two of Ann's three close: no grace starts.
  f.registry.disconnect("presence:room", "7", 10);
  f.registry.disconnect("presence:room", "7", 10);
  f.registry.sweep(100000);
  CHECK(f.registry.member_count("presence:room") == 2);
  f.registry.disconnect("presence:room", "7", 10);
  f.registry.sweep(5009);
  CHECK(f.registry.member_count("presence:room") == 2);
  f.registry.sweep(5010);
  CHECK(f.registry.member_count("presence:room") == 1);
  CHECK(f.registry.events(PresenceEvent::kMemberRemoved) == 1);
  CHECK(f.registry.events(PresenceEvent::kChannelVacated) == 0);
}

TEST_CASE("presence: a member's info is its first connection's until it leaves") {
  Fixture f(5000);
  const MemberIdentity ann_renamed{"7", "{\"name\":\"Annie\"}"};
  f.registry.connect("presence:room", kAnn, 0);
  const MessagePtr before = f.registry.members_notice("presence:room");
  // A second tab (or a reconnect within the grace) with other info changes nothing:
  // with Redis the store keeps the first info too (presence_join.lua).
  f.registry.connect("presence:room", ann_renamed, 10);
  f.registry.disconnect("presence:room", "7", 20);
  f.registry.disconnect("presence:room", "7", 20);
  f.registry.connect("presence:room", ann_renamed, 30);
  CHECK(f.registry.members_notice("presence:room") == before);
  std::string list;
  f.registry.append_members_json(list, "presence:room");
  CHECK(list == "[{\"id\":\"7\",\"info\":{\"name\":\"Ann\"}}]");
  CHECK(f.inbox.notices.size() == 1);  // the first join only
  f.registry.disconnect("presence:room", "7", 40);
  f.registry.sweep(5040);
  REQUIRE(f.sink.events.size() == 4);
  CHECK(f.sink.events[2] == "member_removed presence:room 7 {\"name\":\"Ann\"}");
  // Once it has left, the next connection's info is the member's.
  f.registry.connect("presence:room", ann_renamed, 6000);
  list.clear();
  f.registry.append_members_json(list, "presence:room");
  CHECK(list == "[{\"id\":\"7\",\"info\":{\"name\":\"Annie\"}}]");
}

TEST_CASE("presence: grace 0 leaves at once; an unknown disconnect is ignored") {
  Fixture f(0);
  f.registry.disconnect("presence:room", "7", 0);
  f.registry.connect("presence:room", kBob, 0);
  f.registry.disconnect("presence:room", "9", 0);
  CHECK(f.inbox.notices.size() == 2);
  CHECK(f.registry.member_count("presence:room") == 0);
  f.registry.disconnect("presence:room", "9", 0);  // again: nothing
  CHECK(f.inbox.notices.size() == 2);
}

TEST_CASE("presence: a poll's membership stays at least its minimum grace, even with grace 0") {
  Fixture f(0);
  f.registry.connect("presence:room", kAnn, 0);
  const size_t joined = f.inbox.notices.size();
  f.registry.disconnect("presence:room", "7", 1000, 5000);  // a poll answered at 1 s
  f.registry.sweep(5999);
  CHECK(f.registry.member_count("presence:room") == 1);
  f.registry.connect("presence:room", kAnn, 3000);  // the next poll: nothing sent
  f.registry.disconnect("presence:room", "7", 3500, 5000);
  f.registry.sweep(8499);
  CHECK(f.inbox.notices.size() == joined);
  f.registry.sweep(8500);  // no poll for 5 s: gone
  CHECK(f.registry.member_count("presence:room") == 0);
  CHECK(f.inbox.notices.size() == joined + 1);
}

TEST_CASE("presence: the members notice lists everyone and is shared until a change") {
  Fixture f(5000);
  f.registry.connect("presence:room", kAnn, 0);
  const MessagePtr first = f.registry.members_notice("presence:room");
  CHECK(first->envelope ==
        "{\"type\":\"members\",\"ch\":\"presence:room\",\"members\":[{\"id\":\"7\",\"info\":{"
        "\"name\":\"Ann\"}}]}");
  CHECK(first->id == 0);
  CHECK(first->notice);
  CHECK(first->sse_body == "event: comet-members\ndata: " + first->envelope + "\n");
  CHECK(f.registry.members_notice("presence:room") == first);  // cached
  f.registry.connect("presence:room", kBob, 0);
  const MessagePtr second = f.registry.members_notice("presence:room");
  CHECK(second != first);
  CHECK(second->envelope.find("{\"id\":\"9\",\"info\":{}}") != std::string::npos);
  CHECK(f.registry.members_notice("presence:empty")->envelope ==
        "{\"type\":\"members\",\"ch\":\"presence:empty\",\"members\":[]}");
  std::string list;
  f.registry.append_members_json(list, "presence:nobody");
  CHECK(list == "[]");
}

TEST_CASE("presence: notice JSON escapes ids and frames SSE as named events") {
  CHECK(leave_notice_json("presence:a", "x\"<y") ==
        "{\"type\":\"leave\",\"ch\":\"presence:a\",\"member\":{\"id\":\"x\\\"\\u003cy\"}}");
  const MessagePtr m =
      make_presence_notice("presence:a", join_notice_json("presence:a", "1", ""), "join");
  CHECK(m->envelope ==
        "{\"type\":\"join\",\"ch\":\"presence:a\",\"member\":{\"id\":\"1\",\"info\":{}}}");
  CHECK(m->sse_body == "event: comet-join\ndata: " + m->envelope + "\n");
  CHECK(m->ws_header_len == 2);
}

TEST_CASE("presence: member info is script-safe in notices (iframe, htmlfile, JSONP run it)") {
  const std::string info = "{\"name\":\"</script><script>alert(1)</script>&\xE2\x80\xA8\"}";
  const std::string join = join_notice_json("presence:a", "1", info);
  CHECK(join.find_first_of("<>&") == std::string::npos);
  CHECK(join.find("\xE2\x80\xA8") == std::string::npos);
  CHECK(join ==
        "{\"type\":\"join\",\"ch\":\"presence:a\",\"member\":{\"id\":\"1\",\"info\":{\"name\":"
        "\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/"
        "script\\u003e\\u0026\\u2028\"}}}");
}

TEST_CASE("presence: member identity rules") {
  CHECK(member_identity_error(MemberIdentity{"", ""}) ==
        "presence channel needs a user id (token sub or auth-url user)");
  CHECK(member_identity_error(MemberIdentity{"7", ""}).empty());
  CHECK(member_identity_error(MemberIdentity{std::string(128, 'u'), "{}"}).empty());
  CHECK(!member_identity_error(MemberIdentity{std::string(129, 'u'), ""}).empty());
  CHECK(!member_identity_error(MemberIdentity{"7", "[1]"}).empty());
  CHECK(!member_identity_error(MemberIdentity{"7", "{\"a\":\"" + std::string(1100, 'x') + "\"}"})
             .empty());
  CHECK(is_presence_channel("presence:room"));
  CHECK(!is_presence_channel("private:room"));
}

}  // namespace comet

namespace comet {
namespace {

class FakeStore : public PresenceStore {
 public:
  void add_entry(const std::string& channel, const std::string& user,
                 const std::string& info) override {
    calls.push_back("add " + channel + " " + user + " " + info);
  }
  void remove_entry(const std::string& channel, const std::string& user) override {
    calls.push_back("remove " + channel + " " + user);
  }
  void read(std::vector<std::string>, ReadDone done) override { done(false, {}); }
  std::vector<std::string> calls;
};

}  // namespace

TEST_CASE("presence: stopping without a store makes every member leave, grace or not") {
  Fixture f(60000);
  f.registry.connect("presence:room", kAnn, 0);
  f.registry.connect("presence:room", kBob, 0);
  f.registry.connect("presence:hall", kBob, 0);
  f.registry.disconnect("presence:room", "7", 0);  // in its grace
  f.registry.disconnect("presence:room", "9", 0);
  f.sink.events.clear();
  f.registry.leave_all(1);
  std::vector<std::string> room, hall;
  for (const std::string& e : f.sink.events)
    (e.find("presence:room") != std::string::npos ? room : hall).push_back(e);
  REQUIRE(room.size() == 3);
  std::vector<std::string> removed(room.begin(), room.begin() + 2);
  std::sort(removed.begin(), removed.end());
  CHECK(removed == std::vector<std::string>{"member_removed presence:room 7 {\"name\":\"Ann\"}",
                                            "member_removed presence:room 9 {}"});
  CHECK(room[2] == "channel_vacated presence:room  ");
  CHECK(hall == std::vector<std::string>{"member_removed presence:hall 9 {}",
                                         "channel_vacated presence:hall  "});
  CHECK(f.registry.total_members() == 0);
  f.registry.sweep(100000);  // each leave happened once
  CHECK(f.sink.events.size() == 5);
}

TEST_CASE("presence with a store: stopping leaves the entries to expire in the store") {
  Fixture f(60000);
  FakeStore store;
  f.registry.set_store(&store);
  f.registry.connect("presence:room", kAnn, 0);
  f.registry.disconnect("presence:room", "7", 0);
  f.registry.leave_all(1);
  CHECK(store.calls == std::vector<std::string>{"add presence:room 7 {\"name\":\"Ann\"}"});
  CHECK(f.registry.total_members() == 1);
  f.registry.set_store(nullptr);
}

TEST_CASE("presence with a store: local members become entries; the store's notices go out") {
  Fixture f(1000);
  FakeStore store;
  f.registry.set_store(&store);
  f.registry.connect("presence:room", kAnn, 0);
  f.registry.connect("presence:room", kAnn, 0);  // a second tab: no second entry
  CHECK(store.calls == std::vector<std::string>{"add presence:room 7 {\"name\":\"Ann\"}"});
  CHECK(f.inbox.notices.empty());  // the join comes back from the store
  CHECK(f.sink.events.empty());    // and so does the event, from whichever sidecar made it
  f.registry.apply_remote("presence:room", true, "7", kAnn.info_json);
  f.registry.apply_remote("presence:room", true, "9", "");
  REQUIRE(f.inbox.notices.size() == 2);
  CHECK(f.inbox.notices[1] ==
        "{\"type\":\"join\",\"ch\":\"presence:room\",\"member\":{\"id\":\"9\",\"info\":{}}}");
  CHECK(f.registry.member_count("presence:room") == 2);
  CHECK(f.registry.total_members() == 1);  // this sidecar's
  // A snapshot replaces the view: 9 is gone (a leave missed), 12 is new, 7's info changed.
  f.registry.apply_snapshot("presence:room", {{"7", ""}, {"12", "{\"a\":1}"}});
  REQUIRE(f.inbox.notices.size() == 5);
  std::vector<std::string> snapshot(f.inbox.notices.begin() + 2, f.inbox.notices.end());
  std::sort(snapshot.begin(), snapshot.end());
  CHECK(snapshot == std::vector<std::string>{
                        "{\"type\":\"join\",\"ch\":\"presence:room\",\"member\":{\"id\":\"12\","
                        "\"info\":{\"a\":1}}}",
                        "{\"type\":\"join\",\"ch\":\"presence:room\",\"member\":{\"id\":\"7\","
                        "\"info\":{}}}",
                        "{\"type\":\"leave\",\"ch\":\"presence:room\",\"member\":{\"id\":\"9\"}}"});
  CHECK(f.registry.member_count("presence:room") == 2);
  std::string list;
  f.registry.append_members_json(list, "presence:room");
  CHECK(list.find("\"9\"") == std::string::npos);
  // The same snapshot again: nothing changed, nothing sent.
  f.registry.apply_snapshot("presence:room", {{"12", "{\"a\":1}"}, {"7", ""}});
  CHECK(f.inbox.notices.size() == 5);
  // A local member missing from the snapshot (its entry on its way back) stays listed.
  f.registry.apply_snapshot("presence:room", {{"12", "{\"a\":1}"}});
  CHECK(f.inbox.notices.size() == 5);
  CHECK(f.registry.member_count("presence:room") == 2);
  CHECK(f.sink.events.empty());  // snapshots never make events
  // Notices of channels without a local member are not for this sidecar.
  f.registry.apply_remote("presence:other", true, "1", "");
  CHECK(f.inbox.notices.size() == 5);
  f.registry.disconnect("presence:room", "7", 0);
  f.registry.disconnect("presence:room", "7", 0);
  f.registry.sweep(999);
  CHECK(store.calls.size() == 1);
  f.registry.sweep(1000);
  CHECK(store.calls.back() == "remove presence:room 7");
  CHECK(f.inbox.notices.size() == 5);  // the leave, too, comes from the store
  f.registry.report_event(PresenceEvent::kMemberRemoved, "presence:room", "7", "");
  CHECK(f.registry.events(PresenceEvent::kMemberRemoved) == 1);
  CHECK(f.sink.events.back() == "member_removed presence:room 7 {}");
  f.registry.set_store(nullptr);
}

TEST_CASE("presence with a store: a snapshot drops a member whose leave was missed") {
  Fixture f(1000);
  FakeStore store;
  f.registry.set_store(&store);
  f.registry.connect("presence:room", kAnn, 0);
  f.registry.apply_remote("presence:room", true, "7", kAnn.info_json);
  f.registry.apply_remote("presence:room", true, "xi", "");
  CHECK(f.registry.member_count("presence:room") == 2);
  // xi left while the pub/sub connection was down: no leave notice ever comes. The
  // snapshot read once subscribed again no longer has it.
  f.registry.apply_snapshot("presence:room", {{"7", kAnn.info_json}});
  CHECK(f.registry.member_count("presence:room") == 1);
  CHECK(f.inbox.notices.back() ==
        "{\"type\":\"leave\",\"ch\":\"presence:room\",\"member\":{\"id\":\"xi\"}}");
  const auto members = f.registry.members_notice("presence:room");
  CHECK(members->envelope.find("xi") == std::string::npos);
  CHECK(f.sink.events.empty());  // the leave's event is the store's to report, once
  f.registry.set_store(nullptr);
}

}  // namespace comet

#if !defined(__SANITIZE_ADDRESS__)
#include <malloc.h>

namespace comet {

// Memory per member (docs/protocol.md, "Presence"): 10,000 members of one channel. Only
// without ASan, whose allocator mallinfo2 does not see. Measured at about 120 bytes per
// member with a short id and no info (a release build, glibc).
TEST_CASE("presence: 10,000 members cost a few hundred bytes each") {
  PresenceRegistry registry(5000);
  malloc_trim(0);
  const size_t before = mallinfo2().uordblks;
  constexpr int kMembers = 10000;
  for (int i = 0; i < kMembers; ++i)
    registry.connect("presence:room", MemberIdentity{"user-" + std::to_string(100000 + i), ""}, 0);
  const size_t after = mallinfo2().uordblks;
  const double per_member = static_cast<double>(after - before) / kMembers;
  MESSAGE("presence: " << per_member << " bytes per member");
  CHECK(registry.total_members() == kMembers);
  CHECK(per_member < 300);
}

}  // namespace comet
#endif
