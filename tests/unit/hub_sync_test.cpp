// Hub: syncing a channel from an outside source of truth (the Redis bridge).
#include <doctest/doctest.h>

#include "hub_test_support.h"

namespace comet {
namespace hub_test {

// Stands in for the Redis bridge: starts a sync when a channel gets its first subscriber.
class SyncingObserver : public ChannelObserver {
 public:
  explicit SyncingObserver(Hub& hub) : hub_(hub) {}
  void on_first_subscriber(const std::string& channel) override {
    events.push_back("first " + channel);
    if (sync_on_first) hub_.begin_sync(channel);
  }
  void on_last_subscriber(const std::string& channel) override {
    events.push_back("last " + channel);
  }

  Log events;
  bool sync_on_first = true;

 private:
  Hub& hub_;
};

std::vector<MessagePtr> entries(const std::string& channel, const std::string& epoch,
                                uint64_t first, uint64_t last) {
  std::vector<MessagePtr> out;
  for (uint64_t id = first; id <= last; ++id) out.push_back(msg(channel, epoch, id));
  return out;
}

TEST_CASE("the observer hears of a channel's first and last subscriber") {
  Hub hub = make_hub();
  SyncingObserver observer(hub);
  observer.sync_on_first = false;
  hub.set_observer(&observer);
  Client one, two, other;
  hub.subscribe(one.sub, "a", nullptr);
  hub.subscribe(two.sub, "a", nullptr);
  hub.subscribe(other.sub, "b", nullptr);
  hub.unsubscribe(one.sub);
  hub.unsubscribe(one.sub);  // not subscribed any more: nothing to report
  hub.unsubscribe(two.sub);
  hub.subscribe(one.sub, "a", nullptr);
  hub.unsubscribe(one.sub);
  hub.unsubscribe(other.sub);
  CHECK(observer.events == Log{"first a", "first b", "last a", "first a", "last a", "last b"});
  hub.set_observer(nullptr);
  hub.subscribe(one.sub, "a", nullptr);
  hub.unsubscribe(one.sub);
  CHECK(observer.events.size() == 6);
}

TEST_CASE("subscriptions made during a sync wait and are judged when it finishes") {
  Hub hub = make_hub();
  SyncingObserver observer(hub);
  hub.set_observer(&observer);
  Client at_head, resume, expired, fresh, other_epoch;
  const Position from{"E", 7}, old{"E", 2}, zero{"", 0}, other{"F", 3};
  hub.subscribe(at_head.sub, "a", nullptr);
  REQUIRE(hub.find("a")->syncing());
  hub.subscribe(resume.sub, "a", &from);
  hub.subscribe(expired.sub, "a", &old, false);
  hub.subscribe(fresh.sub, "a", &zero);
  hub.subscribe(other_epoch.sub, "a", &other);
  for (Client* c : {&at_head, &resume, &expired, &fresh, &other_epoch}) {
    CHECK(c->sub.pending);
    hub.replay(c->sub);  // nothing can be judged yet
    CHECK(c->fake.take().empty());
  }
  CHECK(observer.events == Log{"first a"});

  // The stream holds 5..9 (1..4 were trimmed away).
  hub.finish_sync("a", "E", 9, entries("a", "E", 5, 9));
  const Channel* ch = hub.find("a");
  CHECK_FALSE(ch->syncing());
  CHECK(ch->epoch() == "E");
  CHECK(ch->last_id() == 9);
  CHECK(ch->oldest_id() == 5);
  CHECK(at_head.fake.take().empty());
  CHECK(pos(at_head.sub) == "E.9");
  CHECK(resume.fake.take() == Log{"a:8", "a:9"});
  CHECK(expired.fake.take() ==
        Log{"reset a history-expired E.4", "a:5", "a:6", "a:7", "a:8", "a:9"});
  CHECK(fresh.fake.take() == Log{"reset a history-expired E.4", "a:5", "a:6", "a:7", "a:8", "a:9"});
  CHECK(other_epoch.fake.take() ==
        Log{"reset a epoch-changed E.4", "a:5", "a:6", "a:7", "a:8", "a:9"});
  for (Client* c : {&at_head, &resume, &expired, &fresh, &other_epoch}) CHECK_FALSE(c->sub.pending);

  hub.publish(msg("a", "E", 10));
  for (Client* c : {&at_head, &resume, &expired, &fresh, &other_epoch}) {
    CHECK(c->fake.take() == Log{"a:10"});
    hub.unsubscribe(c->sub);
  }
}

TEST_CASE("a sync of a channel the source has never seen leaves it without an epoch") {
  Hub hub = make_hub();
  SyncingObserver observer(hub);
  hub.set_observer(&observer);
  Client none, fresh, named;
  const Position zero{"", 0}, from{"E", 3};
  hub.subscribe(none.sub, "a", nullptr);
  hub.subscribe(fresh.sub, "a", &zero);
  hub.subscribe(named.sub, "a", &from);
  hub.finish_sync("a", "", 0, {});
  CHECK(hub.find("a")->epoch().empty());
  CHECK(none.fake.take().empty());
  CHECK(fresh.fake.take().empty());
  CHECK(named.fake.take() == Log{"reset a epoch-changed .0"});  // the stream is gone
  hub.publish(msg("a", "F", 1));
  for (Client* c : {&none, &fresh, &named}) {
    CHECK(c->fake.take() == Log{"a:1"});
    hub.unsubscribe(c->sub);
  }
}

TEST_CASE("live messages skip pending subscriptions") {
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 2);
  Client live;
  hub.subscribe(live.sub, "a", nullptr);
  hub.begin_sync("a");
  Client pending;
  const Position from{"E", 1};
  hub.subscribe(pending.sub, "a", &from);
  hub.publish(msg("a", "", 0, monotonic_ms(), "bare"));
  CHECK(live.fake.take() == Log{"a:-bare"});
  CHECK(pending.fake.take().empty());  // an id-less message cannot be replayed: it is gone
  hub.finish_sync("a", "E", 3, entries("a", "E", 1, 3));
  CHECK(live.fake.take() == Log{"a:3"});
  CHECK(pending.fake.take() == Log{"a:2", "a:3"});
  hub.unsubscribe(live.sub);
  hub.unsubscribe(pending.sub);
}

TEST_CASE("a re-sync fills what existing subscribers missed") {
  // The Redis subscription dropped while clients stayed connected.
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 5);
  Client live;
  hub.subscribe(live.sub, "a", nullptr);
  hub.begin_sync("a");
  CHECK(hub.find("a")->syncing());

  SUBCASE("no hole") {
    hub.finish_sync("a", "E", 8, entries("a", "E", 3, 8));  // 3..5 are already known
    CHECK(live.fake.take() == Log{"a:6", "a:7", "a:8"});
    CHECK(hub.find("a")->history().size() == 8);
  }
  SUBCASE("a hole the stream no longer covers") {
    hub.finish_sync("a", "E", 9, entries("a", "E", 8, 9));
    CHECK(live.fake.take() == Log{"reset a history-expired E.7", "a:8", "a:9"});
    // Retained history must stay gap-free: 1..5 cannot be replayed across the hole.
    CHECK(hub.find("a")->oldest_id() == 8);
  }
  SUBCASE("a head beyond every entry") {
    hub.finish_sync("a", "E", 9, entries("a", "E", 6, 7));
    CHECK(live.fake.take() == Log{"a:6", "a:7", "reset a history-expired E.9"});
    CHECK(hub.find("a")->history().empty());
    CHECK(hub.find("a")->last_id() == 9);
  }
  SUBCASE("nothing new") {
    hub.finish_sync("a", "E", 5, entries("a", "E", 1, 5));
    CHECK(live.fake.take().empty());
    CHECK(hub.find("a")->history().size() == 5);
  }
  SUBCASE("a new epoch") {
    hub.finish_sync("a", "F", 2, entries("a", "F", 1, 2));
    CHECK(live.fake.take() == Log{"reset a epoch-changed F.0", "a:1", "a:2"});
    CHECK(hub.find("a")->epoch() == "F");
  }
  CHECK_FALSE(hub.find("a")->syncing());
  hub.unsubscribe(live.sub);
}

TEST_CASE("a pending subscription unsubscribed before the sync finishes gets nothing") {
  Hub hub = make_hub();
  SyncingObserver observer(hub);
  hub.set_observer(&observer);
  Client gone, stays;
  const Position from{"E", 0};
  hub.subscribe(gone.sub, "a", &from);
  hub.subscribe(stays.sub, "a", &from);
  hub.unsubscribe(gone.sub);
  CHECK_FALSE(gone.sub.pending);
  hub.finish_sync("a", "E", 2, entries("a", "E", 1, 2));
  CHECK(gone.fake.take().empty());
  CHECK(stays.fake.take() == Log{"a:1", "a:2"});
  hub.unsubscribe(stays.sub);
}

TEST_CASE("many subscribers on many channels each see their channel in order exactly once") {
  Hub hub = make_hub(8);
  constexpr int kChannels = 4;
  constexpr int kPerChannel = 6;
  std::vector<std::unique_ptr<Client>> clients;
  for (int ch = 0; ch < kChannels; ++ch)
    for (int i = 0; i < kPerChannel; ++i) {
      clients.push_back(std::make_unique<Client>());
      hub.subscribe(clients.back()->sub, "ch" + std::to_string(ch), nullptr);
    }
  std::mt19937 rng(7);
  std::vector<uint64_t> last(kChannels, 0);
  for (int n = 0; n < 200; ++n) {
    const int ch = static_cast<int>(rng() % kChannels);
    const uint64_t id = ++last[ch];
    hub.publish(msg("ch" + std::to_string(ch), "E", id));
    if (rng() % 4 == 0) hub.publish(msg("ch" + std::to_string(ch), "E", id));  // duplicate
  }
  for (int ch = 0; ch < kChannels; ++ch) {
    Log expected;
    for (uint64_t id = 1; id <= last[ch]; ++id)
      expected.push_back("ch" + std::to_string(ch) + ":" + std::to_string(id));
    for (int i = 0; i < kPerChannel; ++i) {
      Client& c = *clients[ch * kPerChannel + i];
      CHECK(c.fake.take() == expected);
      hub.unsubscribe(c.sub);
    }
  }
}

}  // namespace hub_test
}  // namespace comet
