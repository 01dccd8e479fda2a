// Hub: positions, history bounds, resets, replay, subscribe/unsubscribe.
#include <doctest/doctest.h>

#include "hub_test_support.h"

namespace comet {
namespace hub_test {

TEST_CASE("reset reasons have their wire names") {
  CHECK(std::string(reset_reason_name(ResetReason::kHistoryExpired)) == "history-expired");
  CHECK(std::string(reset_reason_name(ResetReason::kEpochChanged)) == "epoch-changed");
}

TEST_CASE("a subscription without a cursor starts at the head") {
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 2);
  Client c;
  hub.subscribe(c.sub, "a", nullptr);
  CHECK(c.fake.take().empty());  // retained messages are not replayed without a cursor
  CHECK(pos(c.sub) == "E.2");
  CHECK(c.sub.channel == hub.find("a"));
  hub.publish(msg("a", "E", 3));
  CHECK(c.fake.take() == Log{"a:3"});
  CHECK(pos(c.sub) == "E.3");
  hub.unsubscribe(c.sub);
}

TEST_CASE("a subscription without a cursor on an unknown channel gets its first message") {
  Hub hub = make_hub();
  Client c;
  hub.subscribe(c.sub, "a", nullptr);
  CHECK(pos(c.sub) == ".0");
  const Channel* ch = hub.find("a");
  REQUIRE(ch != nullptr);
  CHECK(ch->epoch().empty());
  CHECK(ch->last_id() == 0);
  CHECK(ch->oldest_id() == 1);
  CHECK(ch->subscriber_count() == 1);
  // The channel's first epoch is not a restart: no reset.
  hub.publish(msg("a", "E", 1));
  CHECK(c.fake.take() == Log{"a:1"});
  CHECK(pos(c.sub) == "E.1");
  CHECK(ch->epoch() == "E");
  hub.unsubscribe(c.sub);
}

TEST_CASE("a cursor in the current epoch replays exactly the messages after it") {
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 5);

  SUBCASE("from the middle") {
    Client c;
    const Position from{"E", 2};
    hub.subscribe(c.sub, "a", &from);
    CHECK(c.fake.take() == Log{"a:3", "a:4", "a:5"});
    CHECK(pos(c.sub) == "E.5");
    hub.publish(msg("a", "E", 6));
    CHECK(c.fake.take() == Log{"a:6"});
    hub.unsubscribe(c.sub);
  }
  SUBCASE("from the channel's start") {
    Client c;
    const Position from{"E", 0};
    hub.subscribe(c.sub, "a", &from);
    CHECK(c.fake.take() == Log{"a:1", "a:2", "a:3", "a:4", "a:5"});
    hub.unsubscribe(c.sub);
  }
  SUBCASE("just before the oldest retained message: no reset") {
    Hub small = make_hub(3);
    publish_range(small, "a", "E", 1, 5);  // keeps 3..5
    Client c;
    const Position from{"E", 2};
    small.subscribe(c.sub, "a", &from);
    CHECK(c.fake.take() == Log{"a:3", "a:4", "a:5"});
    small.unsubscribe(c.sub);
  }
  SUBCASE("at the head: nothing to replay") {
    Client c;
    const Position from{"E", 5};
    hub.subscribe(c.sub, "a", &from);
    CHECK(c.fake.take().empty());
    CHECK(pos(c.sub) == "E.5");
    hub.unsubscribe(c.sub);
  }
}

TEST_CASE("a cursor ahead of this worker is kept and live messages up to it are skipped") {
  // Another worker (or the bus) already handed the client ids this worker has not seen yet.
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 3);
  Client c;
  const Position from{"E", 5};
  hub.subscribe(c.sub, "a", &from);
  CHECK(c.fake.take().empty());
  CHECK(pos(c.sub) == "E.5");
  hub.replay(c.sub);
  CHECK(c.fake.take().empty());
  publish_range(hub, "a", "E", 4, 5);
  CHECK(c.fake.take().empty());
  CHECK(pos(c.sub) == "E.5");
  hub.publish(msg("a", "E", 6));
  CHECK(c.fake.take() == Log{"a:6"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("a cursor older than the count-bounded history gets history-expired first") {
  Hub hub = make_hub(3);
  publish_range(hub, "a", "E", 1, 6);
  const Channel* ch = hub.find("a");
  REQUIRE(ch != nullptr);
  REQUIRE(ch->history().size() == 3);
  CHECK(ch->oldest_id() == 4);
  CHECK(ch->last_id() == 6);

  Client c;
  const Position from{"E", 1};
  hub.subscribe(c.sub, "a", &from);
  // The reset comes before any message and leaves the position just before the oldest.
  CHECK(c.fake.take() == Log{"reset a history-expired E.3", "a:4", "a:5", "a:6"});
  CHECK(pos(c.sub) == "E.6");

  Client one_gone;
  const Position from2{"E", 2};  // message 3 is gone too
  hub.subscribe(one_gone.sub, "a", &from2);
  CHECK(one_gone.fake.take() == Log{"reset a history-expired E.3", "a:4", "a:5", "a:6"});

  Client fresh;
  const Position start{"", 0};  // "@.0": wants message 1, which is gone
  hub.subscribe(fresh.sub, "a", &start);
  CHECK(fresh.fake.take() == Log{"reset a history-expired E.3", "a:4", "a:5", "a:6"});

  hub.unsubscribe(c.sub);
  hub.unsubscribe(one_gone.sub);
  hub.unsubscribe(fresh.sub);
}

TEST_CASE("history is bounded by age at publish time") {
  Hub hub = make_hub(100, kAgeMs);
  const int64_t now = monotonic_ms();
  publish_range(hub, "a", "E", 1, 2, now - 2 * kAgeMs);
  publish_range(hub, "a", "E", 3, 3, now);  // trims against its own publish time
  const Channel* ch = hub.find("a");
  REQUIRE(ch != nullptr);
  REQUIRE(ch->history().size() == 1);
  CHECK(ch->oldest_id() == 3);

  Client c;
  const Position from{"E", 1};
  hub.subscribe(c.sub, "a", &from);
  CHECK(c.fake.take() == Log{"reset a history-expired E.2", "a:3"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("history is bounded by age at subscribe time") {
  // Nothing was published since the old messages: subscribe itself must trim them.
  Hub hub = make_hub(100, kAgeMs);
  const int64_t old = monotonic_ms() - 2 * kAgeMs;
  publish_range(hub, "a", "E", 1, 2, old);
  REQUIRE(hub.find("a")->history().size() == 2);

  Client c;
  const Position from{"E", 0};
  hub.subscribe(c.sub, "a", &from);
  CHECK(c.fake.take() == Log{"reset a history-expired E.2"});
  const Channel* ch = hub.find("a");
  CHECK(ch->history().empty());
  CHECK(ch->oldest_id() == 3);
  CHECK(pos(c.sub) == "E.2");

  // A client already at the head lost nothing: no reset.
  Client current;
  const Position head{"E", 2};
  hub.subscribe(current.sub, "a", &head);
  CHECK(current.fake.take().empty());

  hub.publish(msg("a", "E", 3));
  CHECK(c.fake.take() == Log{"a:3"});
  CHECK(current.fake.take() == Log{"a:3"});
  hub.unsubscribe(c.sub);
  hub.unsubscribe(current.sub);
}

TEST_CASE("messages just inside the age bound are kept") {
  Hub hub = make_hub(100, kAgeMs);
  const int64_t now = monotonic_ms();
  hub.publish(msg("a", "E", 1, now - kAgeMs / 2));
  hub.publish(msg("a", "E", 2, now));
  CHECK(hub.find("a")->history().size() == 2);
  hub.sweep(now - kAgeMs / 2 + kAgeMs);  // exactly at the bound: still kept
  CHECK(hub.find("a")->history().size() == 2);
  hub.sweep(now - kAgeMs / 2 + kAgeMs + 1);
  CHECK(hub.find("a")->history().size() == 1);
  CHECK(hub.find("a")->oldest_id() == 2);
}

TEST_CASE("a cursor from another epoch gets epoch-changed and the whole retained history") {
  Hub hub = make_hub(2);
  publish_range(hub, "a", "F", 1, 4);  // keeps 3, 4

  Client c;
  const Position from{"E", 7};
  hub.subscribe(c.sub, "a", &from);
  CHECK(c.fake.take() == Log{"reset a epoch-changed F.2", "a:3", "a:4"});
  CHECK(pos(c.sub) == "F.4");

  // Also when the old id happens to be lower than the new head.
  Client low;
  const Position from2{"E", 1};
  hub.subscribe(low.sub, "a", &from2);
  CHECK(low.fake.take() == Log{"reset a epoch-changed F.2", "a:3", "a:4"});

  hub.unsubscribe(c.sub);
  hub.unsubscribe(low.sub);
}

TEST_CASE("a new epoch in live traffic resets every subscriber before its first message") {
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 3);
  Client head, behind;
  hub.subscribe(head.sub, "a", nullptr);
  const Position from{"E", 3};
  hub.subscribe(behind.sub, "a", &from);
  Client other;  // another channel is untouched
  hub.subscribe(other.sub, "b", nullptr);

  hub.publish(msg("a", "F", 1));
  CHECK(head.fake.take() == Log{"reset a epoch-changed F.0", "a:1"});
  CHECK(behind.fake.take() == Log{"reset a epoch-changed F.0", "a:1"});
  CHECK(other.fake.take().empty());

  const Channel* ch = hub.find("a");
  CHECK(ch->epoch() == "F");
  CHECK(ch->last_id() == 1);
  REQUIRE(ch->history().size() == 1);  // the old epoch's messages mean nothing now
  CHECK(ch->history().front()->epoch == "F");

  // Old-epoch ids are not comparable: F.2 is new even though E.3 was seen.
  hub.publish(msg("a", "F", 2));
  CHECK(head.fake.take() == Log{"a:2"});

  Client late;
  const Position old{"E", 3};
  hub.subscribe(late.sub, "a", &old);
  CHECK(late.fake.take() == Log{"reset a epoch-changed F.0", "a:1", "a:2"});

  hub.unsubscribe(head.sub);
  hub.unsubscribe(behind.sub);
  hub.unsubscribe(other.sub);
  hub.unsubscribe(late.sub);
}

TEST_CASE("a new epoch starting above id 1 is delivered from its first message") {
  // A worker can join a Redis sequence mid-way: the first message it sees is not id 1.
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 2);
  Client c;
  hub.subscribe(c.sub, "a", nullptr);
  hub.publish(msg("a", "F", 5));
  CHECK(c.fake.take() == Log{"reset a epoch-changed F.0", "a:5"});
  CHECK(hub.find("a")->oldest_id() == 5);
  hub.unsubscribe(c.sub);
}

TEST_CASE("a fresh cursor on an unknown channel waits for the first message") {
  Hub hub = make_hub();
  Client c;
  const Position fresh{"", 0};
  hub.subscribe(c.sub, "a", &fresh);
  CHECK(c.fake.take().empty());
  CHECK(pos(c.sub) == ".0");
  hub.replay(c.sub);
  CHECK(c.fake.take().empty());

  hub.publish(msg("a", "E", 1));
  CHECK(c.fake.take() == Log{"a:1"});
  CHECK(pos(c.sub) == "E.1");
  hub.publish(msg("a", "E", 2));
  CHECK(c.fake.take() == Log{"a:2"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("a fresh cursor on a known channel replays everything retained") {
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 2);
  Client c;
  const Position fresh{"", 0};
  hub.subscribe(c.sub, "a", &fresh);
  CHECK(c.fake.take() == Log{"a:1", "a:2"});
  CHECK(pos(c.sub) == "E.2");
  hub.unsubscribe(c.sub);
}

TEST_CASE("a cursor naming an epoch on a channel this worker never saw is reset") {
  // The client saw messages this process no longer knows about.
  Hub hub = make_hub();
  Client c;
  const Position from{"E", 4};
  hub.subscribe(c.sub, "a", &from);
  CHECK(c.fake.take() == Log{"reset a epoch-changed .0"});
  CHECK(pos(c.sub) == ".0");
  // The channel's first epoch then arrives: no second reset.
  hub.publish(msg("a", "F", 1));
  CHECK(c.fake.take() == Log{"a:1"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("duplicates in the same epoch are dropped") {
  Hub hub = make_hub();
  Client c;
  hub.subscribe(c.sub, "a", nullptr);
  const MessagePtr one = msg("a", "E", 1);
  hub.publish(one);
  hub.publish(one);  // the same message twice
  hub.publish(msg("a", "E", 2));
  hub.publish(msg("a", "E", 1));  // a retry of an older id
  hub.publish(msg("a", "E", 2));
  hub.publish(msg("a", "E", 3));
  CHECK(c.fake.take() == Log{"a:1", "a:2", "a:3"});
  const Channel* ch = hub.find("a");
  REQUIRE(ch->history().size() == 3);
  CHECK(ch->history()[0]->id == 1);
  CHECK(ch->history()[1]->id == 2);
  CHECK(ch->history()[2]->id == 3);
  CHECK(ch->last_id() == 3);
  hub.unsubscribe(c.sub);
}

TEST_CASE("an id-less message is delivered live to everyone but not retained") {
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 2);
  Client head, behind_ahead;
  hub.subscribe(head.sub, "a", nullptr);
  const Position ahead{"E", 9};
  hub.subscribe(behind_ahead.sub, "a", &ahead);

  hub.publish(msg("a", "", 0, monotonic_ms(), "bare"));
  CHECK(head.fake.take() == Log{"a:-bare"});
  CHECK(behind_ahead.fake.take() == Log{"a:-bare"});  // even a cursor ahead gets it
  CHECK(pos(head.sub) == "E.2");
  CHECK(pos(behind_ahead.sub) == "E.9");
  const Channel* ch = hub.find("a");
  CHECK(ch->history().size() == 2);
  CHECK(ch->last_id() == 2);
  CHECK(ch->epoch() == "E");

  // Not replayed to a later subscriber.
  Client late;
  const Position from{"E", 0};
  hub.subscribe(late.sub, "a", &from);
  CHECK(late.fake.take() == Log{"a:1", "a:2"});

  hub.unsubscribe(head.sub);
  hub.unsubscribe(behind_ahead.sub);
  hub.unsubscribe(late.sub);
}

TEST_CASE("an id-less message does not give a channel an epoch") {
  Hub hub = make_hub();
  Client c;
  hub.subscribe(c.sub, "a", nullptr);
  hub.publish(msg("a", "", 0, monotonic_ms(), "x"));
  CHECK(c.fake.take() == Log{"a:-x"});
  CHECK(hub.find("a")->epoch().empty());
  hub.publish(msg("a", "E", 1));
  CHECK(c.fake.take() == Log{"a:1"});  // still the channel's first epoch: no reset
  hub.unsubscribe(c.sub);
}

TEST_CASE("subscribe without replay reports resets at once and replays on demand") {
  Hub hub = make_hub(3);
  publish_range(hub, "a", "E", 1, 5);  // keeps 3..5
  publish_range(hub, "b", "E", 1, 2);
  Client a, b;
  const Position from_a{"E", 1};
  const Position from_b{"E", 0};
  hub.subscribe(a.sub, "a", &from_a, false);
  hub.subscribe(b.sub, "b", &from_b, false);
  CHECK(a.fake.take() == Log{"reset a history-expired E.2"});
  CHECK(b.fake.take().empty());
  CHECK(pos(a.sub) == "E.2");
  CHECK(pos(b.sub) == "E.0");

  hub.replay(a.sub);
  hub.replay(b.sub);
  CHECK(a.fake.take() == Log{"a:3", "a:4", "a:5"});
  CHECK(b.fake.take() == Log{"b:1", "b:2"});

  // A second replay has nothing left to send.
  hub.replay(a.sub);
  CHECK(a.fake.take().empty());

  hub.unsubscribe(a.sub);
  hub.unsubscribe(b.sub);
}

TEST_CASE("a message published before a pending replay does not skip the retained ones") {
  // Worker::subscribe drains the inbox (hub.publish) while a transport is still adding
  // channels with replay_now=false, so live traffic can reach a subscription whose replay
  // has not run yet. The client must still get 3, 4, 5 and then 6, in order.
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 5);
  Client c;
  const Position from{"E", 2};
  hub.subscribe(c.sub, "a", &from, false);
  hub.publish(msg("a", "E", 6));
  hub.replay(c.sub);
  CHECK(c.fake.take() == Log{"a:3", "a:4", "a:5", "a:6"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("history trimmed past a subscription awaiting replay gives history-expired") {
  // While the replay waits, live traffic can push the count bound past the position the
  // subscription was judged at: message 3 is then gone and the client must be told.
  Hub hub = make_hub(3);
  publish_range(hub, "a", "E", 1, 5);  // keeps 3..5
  Client c;
  const Position from{"E", 2};
  hub.subscribe(c.sub, "a", &from, false);
  CHECK(c.fake.take().empty());   // 3 is still retained: nothing to reset yet
  hub.publish(msg("a", "E", 6));  // keeps 4..6
  hub.replay(c.sub);
  CHECK(c.fake.take() == Log{"reset a history-expired E.3", "a:4", "a:5", "a:6"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("history aged past a subscription awaiting replay gives history-expired") {
  Hub hub = make_hub(100, kAgeMs);
  const int64_t now = monotonic_ms();
  hub.publish(msg("a", "E", 1, now - kAgeMs / 2));
  hub.publish(msg("a", "E", 2, now));
  Client c;
  const Position from{"E", 0};
  hub.subscribe(c.sub, "a", &from, false);
  hub.publish(msg("a", "E", 3, now + kAgeMs / 2 + 10));  // message 1 ages out meanwhile
  REQUIRE(hub.find("a")->oldest_id() == 2);
  hub.replay(c.sub);
  CHECK(c.fake.take() == Log{"reset a history-expired E.1", "a:2", "a:3"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("a new epoch before a pending replay resets at once and replays the new messages") {
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 3);
  Client c;
  const Position from{"E", 1};
  hub.subscribe(c.sub, "a", &from, false);
  hub.publish(msg("a", "F", 1));
  CHECK(c.fake.take() == Log{"reset a epoch-changed F.0"});
  hub.publish(msg("a", "F", 2));
  hub.replay(c.sub);
  CHECK(c.fake.take() == Log{"a:1", "a:2"});
  hub.publish(msg("a", "F", 3));
  CHECK(c.fake.take() == Log{"a:3"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("live delivery starts once the pending replay has run") {
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 2);
  Client waiting, live;
  const Position from{"E", 2};
  hub.subscribe(waiting.sub, "a", &from, false);
  hub.subscribe(live.sub, "a", nullptr);
  hub.publish(msg("a", "E", 3));
  CHECK(live.fake.take() == Log{"a:3"});  // other subscriptions are not held back
  hub.replay(waiting.sub);
  CHECK(waiting.fake.take() == Log{"a:3"});
  hub.publish(msg("a", "E", 4));
  CHECK(waiting.fake.take() == Log{"a:4"});
  CHECK(live.fake.take() == Log{"a:4"});

  // Unsubscribed before its replay, then subscribed again with replay_now: live at once.
  Client again;
  hub.subscribe(again.sub, "a", nullptr, false);
  hub.unsubscribe(again.sub);
  hub.subscribe(again.sub, "a", nullptr);
  hub.publish(msg("a", "E", 5));
  CHECK(again.fake.take() == Log{"a:5"});

  hub.unsubscribe(waiting.sub);
  hub.unsubscribe(live.sub);
  hub.unsubscribe(again.sub);
}

TEST_CASE("a replay refused with nothing to replay still holds back live messages") {
  // A stream that has not started its response (SSE waiting for another channel to
  // sync) must not get live messages before the replay it asked to wait for.
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 2);
  Client c;
  c.fake.accepting = false;
  hub.subscribe(c.sub, "a", nullptr, false);
  CHECK_FALSE(hub.replay(c.sub));
  hub.publish(msg("a", "E", 3));
  CHECK(c.fake.take().empty());
  c.fake.accepting = true;
  CHECK(hub.replay(c.sub));
  CHECK(c.fake.take() == Log{"a:3"});
  hub.publish(msg("a", "E", 4));
  CHECK(c.fake.take() == Log{"a:4"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("unsubscribe swap-removes and keeps every other subscriber working") {
  Hub hub = make_hub();
  constexpr int kClients = 12;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>());
    hub.subscribe(clients.back()->sub, "a", nullptr);
  }
  CHECK(hub.subscription_count() == kClients);
  CHECK(hub.find("a")->subscriber_count() == kClients);

  // Remove from the middle, the front and the back, then in a shuffled order; after
  // each removal exactly the remaining subscribers get the next message.
  std::vector<int> order = {5, 0, kClients - 1};
  std::vector<int> rest;
  for (int i = 1; i < kClients - 1; ++i)
    if (i != 5) rest.push_back(i);
  std::shuffle(rest.begin(), rest.end(), std::mt19937(42));
  order.insert(order.end(), rest.begin(), rest.end());

  std::vector<bool> subscribed(kClients, true);
  uint64_t id = 0;
  for (int victim : order) {
    hub.unsubscribe(clients[victim]->sub);
    subscribed[victim] = false;
    CHECK(clients[victim]->sub.channel == nullptr);
    hub.unsubscribe(clients[victim]->sub);  // a second time is a no-op

    hub.publish(msg("a", "E", ++id));
    const Log expected{"a:" + std::to_string(id)};
    size_t remaining = 0;
    std::vector<bool> slot_used(kClients, false);
    for (int i = 0; i < kClients; ++i) {
      Client& c = *clients[i];
      if (!subscribed[i]) {
        CHECK(c.fake.take().empty());
        continue;
      }
      ++remaining;
      CHECK(c.fake.take() == expected);
      // Slots stay a permutation of 0..n-1, so the next swap-remove is right too.
      REQUIRE(c.sub.slot < static_cast<size_t>(kClients));
      CHECK_FALSE(slot_used[c.sub.slot]);
      slot_used[c.sub.slot] = true;
    }
    CHECK(hub.find("a")->subscriber_count() == remaining);
    CHECK(hub.subscription_count() == remaining);
    for (size_t s = 0; s < remaining; ++s) CHECK(slot_used[s]);
  }
  CHECK(hub.subscription_count() == 0);
}

TEST_CASE("an unsubscribed subscription can subscribe again") {
  Hub hub = make_hub();
  Client c, other;
  hub.subscribe(c.sub, "a", nullptr);
  hub.subscribe(other.sub, "b", nullptr);
  hub.unsubscribe(c.sub);
  publish_range(hub, "a", "E", 1, 2);
  CHECK(c.fake.take().empty());
  const Position from{"E", 1};
  hub.subscribe(c.sub, "a", &from);
  CHECK(c.fake.take() == Log{"a:2"});
  CHECK(hub.subscription_count() == 2);
  hub.publish(msg("b", "E", 1));
  CHECK(c.fake.take().empty());
  CHECK(other.fake.take() == Log{"b:1"});
  hub.unsubscribe(c.sub);
  hub.unsubscribe(other.sub);
}

TEST_CASE("channels are independent") {
  Hub hub = make_hub();
  Client a, b;
  hub.subscribe(a.sub, "a", nullptr);
  hub.subscribe(b.sub, "b", nullptr);
  hub.publish(msg("a", "E", 1));
  hub.publish(msg("b", "F", 1));
  hub.publish(msg("a", "E", 2));
  CHECK(a.fake.take() == Log{"a:1", "a:2"});
  CHECK(b.fake.take() == Log{"b:1"});
  CHECK(hub.channel_count() == 2);
  CHECK(hub.find("c") == nullptr);
  hub.unsubscribe(a.sub);
  hub.unsubscribe(b.sub);
}

TEST_CASE("sweep forgets only channels without history and subscribers") {
  Hub hub = make_hub(100, kAgeMs);
  const int64_t now = monotonic_ms();
  hub.publish(msg("bare", "", 0, now));  // id-less only: nothing retained
  publish_range(hub, "kept", "E", 1, 2, now);
  Client c;
  hub.subscribe(c.sub, "watched", nullptr);
  publish_range(hub, "watched", "E", 1, 1, now);
  c.fake.take();
  REQUIRE(hub.channel_count() == 3);

  hub.sweep(now);
  CHECK(hub.channel_count() == 2);
  CHECK(hub.find("bare") == nullptr);
  CHECK(hub.find("kept") != nullptr);
  CHECK(hub.find("watched") != nullptr);

  // Once the history ages out the unwatched channel goes; the watched one stays.
  hub.sweep(now + kAgeMs + 1);
  CHECK(hub.find("kept") == nullptr);
  const Channel* watched = hub.find("watched");
  REQUIRE(watched != nullptr);
  CHECK(watched->history().empty());
  CHECK(watched->epoch() == "E");
  CHECK(watched->last_id() == 1);
  CHECK(hub.channel_count() == 1);

  // The subscription survives the sweep.
  hub.publish(msg("watched", "E", 2));
  CHECK(c.fake.take() == Log{"watched:2"});

  hub.unsubscribe(c.sub);
  hub.sweep(now + 2 * kAgeMs + 10);
  CHECK(hub.channel_count() == 0);
}

TEST_CASE("adopt_head seeds an unknown channel so cursors can be judged") {
  Hub hub = make_hub();
  hub.adopt_head("a", Position{"E", 5});
  const Channel* ch = hub.find("a");
  REQUIRE(ch != nullptr);
  CHECK(ch->epoch() == "E");
  CHECK(ch->last_id() == 5);
  CHECK(ch->history().empty());
  CHECK(ch->oldest_id() == 6);

  Client at_head, behind, none, fresh, other_epoch;
  const Position head{"E", 5}, old{"E", 3}, zero{"", 0}, other{"F", 5};
  hub.subscribe(at_head.sub, "a", &head);
  hub.subscribe(behind.sub, "a", &old);
  hub.subscribe(none.sub, "a", nullptr);
  hub.subscribe(fresh.sub, "a", &zero);
  hub.subscribe(other_epoch.sub, "a", &other);
  CHECK(at_head.fake.take().empty());
  CHECK(behind.fake.take() == Log{"reset a history-expired E.5"});
  CHECK(none.fake.take().empty());
  CHECK(pos(none.sub) == "E.5");
  CHECK(fresh.fake.take() == Log{"reset a history-expired E.5"});
  CHECK(other_epoch.fake.take() == Log{"reset a epoch-changed E.5"});

  // Ids up to the adopted head are already accounted for.
  hub.publish(msg("a", "E", 5));
  hub.publish(msg("a", "E", 6));
  for (Client* c : {&at_head, &behind, &none, &fresh, &other_epoch}) {
    CHECK(c->fake.take() == Log{"a:6"});
    hub.unsubscribe(c->sub);
  }
}

TEST_CASE("adopt_head moves subscribers waiting at the start to the head") {
  Hub hub = make_hub();
  Client c;
  hub.subscribe(c.sub, "a", nullptr);
  hub.adopt_head("a", Position{"E", 5});
  CHECK(pos(c.sub) == "E.5");
  hub.publish(msg("a", "E", 6));
  CHECK(c.fake.take() == Log{"a:6"});
  hub.unsubscribe(c.sub);
}

TEST_CASE("adopt_head does nothing on a channel that already has an epoch") {
  Hub hub = make_hub();
  publish_range(hub, "a", "E", 1, 2);
  hub.adopt_head("a", Position{"F", 9});
  const Channel* ch = hub.find("a");
  CHECK(ch->epoch() == "E");
  CHECK(ch->last_id() == 2);
  CHECK(ch->history().size() == 2);
}

}  // namespace hub_test
}  // namespace comet
