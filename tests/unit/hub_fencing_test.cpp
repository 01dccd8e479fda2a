// Hub: telling that the source of truth (Redis after a failover) contradicts what was
// already delivered, so the bridge moves the channel to a new epoch instead of reusing ids.
#include <doctest/doctest.h>

#include "hub_test_support.h"

namespace comet {
namespace hub_test {

MessagePtr at(uint64_t id, const std::string& data, int64_t origin_ms,
              const std::string& epoch = "E") {
  return make_message("a", epoch, id, id - 1, "", data, monotonic_ms(), origin_ms);
}

// Delivers ids 1..5 of epoch E, published at origin times 1001..1005.
void deliver_1_to_5(Hub& hub) {
  for (uint64_t id = 1; id <= 5; ++id)
    hub.publish(at(id, "m" + std::to_string(id), 1000 + static_cast<int64_t>(id)));
}

TEST_CASE("fencing: Redis behind what was delivered contradicts it") {
  Hub hub = make_hub();
  deliver_1_to_5(hub);
  // The promoted replica missed 4 and 5: head 3.
  CHECK(hub.contradicted_by("a", "E", 3, {at(3, "m3", 1003)}));
  CHECK(hub.contradicted_by("a", "E", 0, {}));
}

TEST_CASE("fencing: another message under the newest delivered id contradicts it") {
  Hub hub = make_hub();
  deliver_1_to_5(hub);
  // 4 and 5 missed, then published again with other data (head back to 5).
  CHECK(hub.contradicted_by("a", "E", 5, {at(5, "other", 2005)}));
  // Same text, published later: still another message (a dashboard repeating itself).
  CHECK(hub.contradicted_by("a", "E", 6, {at(5, "m5", 2005), at(6, "m6", 2006)}));
}

TEST_CASE("fencing: what agrees, or cannot be compared, is no contradiction") {
  Hub hub = make_hub();
  deliver_1_to_5(hub);
  CHECK_FALSE(hub.contradicted_by("a", "E", 5, {at(5, "m5", 1005)}));
  CHECK_FALSE(
      hub.contradicted_by("a", "E", 7, {at(5, "m5", 1005), at(6, "m6", 1006), at(7, "m7", 1007)}));
  // Origin time unknown on one side (an older publisher): the text decides.
  CHECK_FALSE(hub.contradicted_by("a", "E", 5, {at(5, "m5", 0)}));
  // The entry was trimmed from the stream (this worker was away longer than the history).
  CHECK_FALSE(hub.contradicted_by("a", "E", 5000, {at(4001, "x", 9001)}));
  // Another epoch: the ordinary epoch change, handled by finish_sync.
  CHECK_FALSE(hub.contradicted_by("a", "F", 1, {at(1, "x", 9001, "F")}));
  // A channel this worker never took a message on.
  CHECK_FALSE(hub.contradicted_by("b", "E", 0, {}));
}

TEST_CASE("fencing: a live message under a delivered id conflicts only if it is another one") {
  Hub hub = make_hub();
  deliver_1_to_5(hub);
  CHECK_FALSE(hub.conflicts(*at(4, "m4", 1004)));  // the same message again (fetch + live)
  CHECK(hub.conflicts(*at(4, "other", 2004)));
  CHECK(hub.conflicts(*at(4, "m4", 2004)));
  CHECK_FALSE(hub.conflicts(*at(6, "m6", 1006)));          // new: no conflict
  CHECK_FALSE(hub.conflicts(*at(4, "other", 2004, "F")));  // another epoch
}

TEST_CASE("fencing: after the bridge moved the channel, finish_sync resets its subscribers") {
  Hub hub = make_hub();
  deliver_1_to_5(hub);
  Client client;
  const Position from{"E", 5};
  hub.subscribe(client.sub, "a", &from);
  hub.begin_sync("a");
  // The fence script made epoch G; ids go on from the sequence (3 on the new master).
  hub.finish_sync("a", "G", 3, {});
  // One reset: the new epoch, positioned where G's history starts (G never had 1..3,
  // so no second, history-expired reset for them).
  INFO(client.fake.log);
  REQUIRE(client.fake.log.size() == 1);
  CHECK(client.fake.log[0] == "reset a epoch-changed G.3");
  hub.begin_sync("a");
  hub.finish_sync("a", "G", 4, {at(4, "new", 3004, "G")});
  CHECK(client.fake.log.back() == "a:4");
  CHECK(pos(client.sub) == "G.4");
  CHECK_FALSE(hub.contradicted_by("a", "G", 4, {at(4, "new", 3004, "G")}));
}

// Stands in for the Redis bridge: counts the re-reads the hub asks for.
class RereadObserver : public ChannelObserver {
 public:
  void on_first_subscriber(const std::string&) override {}
  void on_last_subscriber(const std::string&) override {}
  bool reread(const std::string& channel) override {
    rereads.push_back(channel);
    return true;
  }
  Log rereads;
};

TEST_CASE(
    "fencing: a cursor ahead of the hub is read twice; still ahead, that client alone is reset") {
  Hub hub = make_hub();
  RereadObserver observer;
  hub.set_observer(&observer);
  for (uint64_t id = 1; id <= 3; ++id)
    hub.publish(at(id, "m" + std::to_string(id), 1000 + static_cast<int64_t>(id)));
  Client client, other;
  hub.subscribe(other.sub, "a", nullptr);
  const Position from{"E", 5};  // seen elsewhere (or made up): 4 and 5
  hub.subscribe(client.sub, "a", &from);
  CHECK(observer.rereads == Log{"a"});
  CHECK(client.sub.pending);
  // First read (possibly sent before the cursor existed): Redis head 3. Read again.
  CHECK(hub.finish_sync("a", "E", 3, {at(3, "m3", 1003)}));
  CHECK(client.sub.pending);
  CHECK(client.fake.log.empty());
  // Second read, still 3: never a reason to fence the channel (a client's word) ...
  CHECK_FALSE(hub.contradicted_by("a", "E", 3, {at(3, "m3", 1003)}));
  // ... the client alone is reset to the head and gets what follows.
  CHECK_FALSE(hub.finish_sync("a", "E", 3, {at(3, "m3", 1003)}));
  CHECK(client.fake.log == Log{"reset a epoch-changed E.3"});
  CHECK(pos(client.sub) == "E.3");
  hub.publish(at(4, "new", 2004));
  CHECK(client.fake.log.back() == "a:4");
  CHECK(other.fake.log == Log{"a:4"});  // the others go on untouched
  hub.unsubscribe(client.sub);
  hub.unsubscribe(other.sub);
  hub.set_observer(nullptr);
}

TEST_CASE("fencing: a cursor ahead only because its message was in flight is not a contradiction") {
  Hub hub = make_hub();
  RereadObserver observer;
  hub.set_observer(&observer);
  for (uint64_t id = 1; id <= 3; ++id)
    hub.publish(at(id, "m" + std::to_string(id), 1000 + static_cast<int64_t>(id)));
  Client client;
  const Position from{"E", 4};
  hub.subscribe(client.sub, "a", &from);
  CHECK(hub.finish_sync("a", "E", 3, {at(3, "m3", 1003)}));  // read before 4 was published
  // The second read has it: positioned at 4, nothing replayed, no reset.
  CHECK_FALSE(hub.contradicted_by("a", "E", 4, {at(3, "m3", 1003), at(4, "m4", 1004)}));
  CHECK_FALSE(hub.finish_sync("a", "E", 4, {at(3, "m3", 1003), at(4, "m4", 1004)}));
  CHECK_FALSE(client.sub.pending);
  CHECK(pos(client.sub) == "E.4");
  CHECK(client.fake.log.empty());
  hub.publish(at(5, "m5", 1005));
  CHECK(client.fake.log == Log{"a:5"});
  hub.unsubscribe(client.sub);
  hub.set_observer(nullptr);
}

TEST_CASE(
    "fencing: without a source of truth to ask (embedded bus), an ahead cursor waits as before") {
  Hub hub = make_hub();
  for (uint64_t id = 1; id <= 3; ++id)
    hub.publish(at(id, "m" + std::to_string(id), 1000 + static_cast<int64_t>(id)));
  Client client;
  const Position from{"E", 5};
  hub.subscribe(client.sub, "a", &from);
  CHECK_FALSE(client.sub.pending);
  CHECK(pos(client.sub) == "E.5");
  hub.unsubscribe(client.sub);
}

}  // namespace hub_test
}  // namespace comet
