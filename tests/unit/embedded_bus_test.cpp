#include "bus/embedded_bus.h"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace comet {
namespace {

// Records what a worker's inbox would queue. post() may come from any thread.
class RecordingInbox : public Inbox {
 public:
  void post(const MessagePtr& message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    messages_.push_back(message);
    uint64_t& last = last_id_[message->channel];
    if (message->id > last) last = message->id;
  }
  std::vector<MessagePtr> messages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }
  uint64_t last_id(const std::string& channel) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = last_id_.find(channel);
    return it == last_id_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<MessagePtr> messages_;
  std::map<std::string, uint64_t> last_id_;
};

bool is_epoch(const std::string& epoch) {
  if (epoch.size() != 12) return false;
  for (char c : epoch)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  return true;
}

TEST_CASE("new_epoch makes 12 characters of [0-9a-z], different every time") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string e = new_epoch();
    CAPTURE(e);
    CHECK(is_epoch(e));
    seen.insert(e);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("the first publish creates the channel's epoch and id 1") {
  EmbeddedBus bus;
  RecordingInbox inbox;
  bus.attach(&inbox);
  const int64_t before = monotonic_ms();
  const PublishResult r = bus.publish("chat:42", "typing", "hello");
  CHECK(r.ok);
  CHECK(r.error.empty());
  CHECK(r.channel == "chat:42");
  CHECK(r.id == 1);
  CHECK(is_epoch(r.epoch));

  const std::vector<MessagePtr> got = inbox.messages();
  REQUIRE(got.size() == 1);
  const Message& m = *got[0];
  CHECK(m.channel == "chat:42");
  CHECK(m.epoch == r.epoch);
  CHECK(m.id == 1);
  CHECK(m.prev_id == 0);
  CHECK(m.event == "typing");
  CHECK(m.data == "hello");
  CHECK(m.published_ms >= before);
  CHECK(m.published_ms <= monotonic_ms());
  // The renderings are built before the message is shared.
  CHECK(m.envelope == R"({"ch":"chat:42","id":1,"prev":0,"epoch":")" + r.epoch +
                          R"(","event":"typing","data":"hello"})");
  CHECK(m.sse_body == "event: typing\ndata: hello\n");
  CHECK(m.ws_header_len == 2);
}

TEST_CASE("ids count up per channel with prev and a stable epoch") {
  EmbeddedBus bus;
  RecordingInbox inbox;
  bus.attach(&inbox);
  const PublishResult a1 = bus.publish("a", "", "1");
  const PublishResult b1 = bus.publish("b", "", "1");
  const PublishResult a2 = bus.publish("a", "", "2");
  const PublishResult a3 = bus.publish("a", "", "3");
  CHECK(a1.id == 1);
  CHECK(a2.id == 2);
  CHECK(a3.id == 3);
  CHECK(b1.id == 1);  // channels have their own sequences
  CHECK(a2.epoch == a1.epoch);
  CHECK(a3.epoch == a1.epoch);
  CHECK(b1.epoch != a1.epoch);

  const std::vector<MessagePtr> got = inbox.messages();
  REQUIRE(got.size() == 4);
  CHECK(got[0]->channel == "a");
  CHECK(got[1]->channel == "b");
  CHECK(got[2]->id == 2);
  CHECK(got[2]->prev_id == 1);
  CHECK(got[3]->id == 3);
  CHECK(got[3]->prev_id == 2);
  CHECK(got[3]->data == "3");
  CHECK(got[3]->event.empty());
}

TEST_CASE("every attached inbox gets the same shared message") {
  EmbeddedBus bus;
  RecordingInbox one, two, three;
  bus.attach(&one);
  bus.attach(&two);
  bus.attach(&three);
  bus.publish("a", "", "x");
  const auto m1 = one.messages(), m2 = two.messages(), m3 = three.messages();
  REQUIRE(m1.size() == 1);
  REQUIRE(m2.size() == 1);
  REQUIRE(m3.size() == 1);
  CHECK(m1[0].get() == m2[0].get());  // built once, shared by reference count
  CHECK(m1[0].get() == m3[0].get());
}

TEST_CASE("publishing without inboxes still assigns ids") {
  EmbeddedBus bus;
  CHECK(bus.publish("a", "", "x").id == 1);
  CHECK(bus.publish("a", "", "y").id == 2);
}

TEST_CASE("head reports the channel's epoch and last id") {
  EmbeddedBus bus;
  Position head{"keep", 9};
  CHECK_FALSE(bus.head("a", head));
  CHECK(head.epoch == "keep");  // untouched when the channel never had a message
  CHECK(head.id == 9);

  const PublishResult r = bus.publish("a", "", "x");
  bus.publish("a", "", "y");
  bus.publish("b", "", "z");
  REQUIRE(bus.head("a", head));
  CHECK(head.epoch == r.epoch);
  CHECK(head.id == 2);
  REQUIRE(bus.head("b", head));
  CHECK(head.id == 1);
  CHECK_FALSE(bus.head("c", head));
}

TEST_CASE("a restarted bus starts new epochs") {
  // Ids from the old process mean nothing: the epoch must differ.
  EmbeddedBus first, second;
  const PublishResult a = first.publish("a", "", "x");
  const PublishResult b = second.publish("a", "", "x");
  CHECK(a.id == 1);
  CHECK(b.id == 1);
  CHECK(a.epoch != b.epoch);
}

TEST_CASE("concurrent publishers get unique ids and every inbox sees each channel in order") {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 400;
  const std::vector<std::string> channels = {"a", "b", "c"};
  EmbeddedBus bus;
  RecordingInbox inboxes[3];
  for (RecordingInbox& inbox : inboxes) bus.attach(&inbox);

  std::vector<std::vector<PublishResult>> results(kThreads);
  std::atomic<bool> go{false};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        const std::string& ch = channels[(t + i) % channels.size()];
        results[t].push_back(bus.publish(ch, "", std::to_string(t) + ":" + std::to_string(i)));
      }
    });
  }
  // Meanwhile head() must never name an id an inbox has not been handed yet.
  int head_violations = 0;
  std::thread watcher([&] {
    while (!go.load()) std::this_thread::yield();
    while (!done.load()) {
      for (const std::string& ch : channels) {
        Position head;
        if (!bus.head(ch, head)) continue;
        for (const RecordingInbox& inbox : inboxes)
          if (inbox.last_id(ch) < head.id) ++head_violations;
      }
    }
  });
  go.store(true);
  for (std::thread& t : threads) t.join();
  done.store(true);
  watcher.join();
  CHECK(head_violations == 0);

  // Ids handed to publishers: unique per channel, exactly 1..n, one epoch per channel.
  std::map<std::string, std::set<uint64_t>> ids;
  std::map<std::string, std::set<std::string>> epochs;
  size_t total = 0;
  for (const auto& per_thread : results) {
    uint64_t last_seen[3] = {0, 0, 0};
    for (const PublishResult& r : per_thread) {
      REQUIRE(r.ok);
      CHECK(ids[r.channel].insert(r.id).second);
      epochs[r.channel].insert(r.epoch);
      // One thread's own publishes on a channel are ordered too.
      const size_t ci = static_cast<size_t>(r.channel[0] - 'a');
      CHECK(r.id > last_seen[ci]);
      last_seen[ci] = r.id;
      ++total;
    }
  }
  CHECK(total == size_t{kThreads} * kPerThread);
  for (const std::string& ch : channels) {
    CAPTURE(ch);
    const std::set<uint64_t>& s = ids[ch];
    REQUIRE_FALSE(s.empty());
    CHECK(*s.begin() == 1);
    CHECK(*s.rbegin() == s.size());
    CHECK(epochs[ch].size() == 1);
    Position head;
    REQUIRE(bus.head(ch, head));
    CHECK(head.id == s.size());
    CHECK(head.epoch == *epochs[ch].begin());
  }

  // Each inbox got every message once, each channel as 1, 2, 3, ... with matching prev.
  for (const RecordingInbox& inbox : inboxes) {
    const std::vector<MessagePtr> got = inbox.messages();
    CHECK(got.size() == total);
    std::map<std::string, uint64_t> next;
    bool in_order = true;
    for (const MessagePtr& m : got) {
      const uint64_t expected = ++next[m->channel];
      if (m->id != expected || m->prev_id != expected - 1 ||
          m->epoch != *epochs[m->channel].begin())
        in_order = false;
    }
    CHECK(in_order);
    for (const std::string& ch : channels) CHECK(next[ch] == ids[ch].size());
  }
}

}  // namespace
}  // namespace comet
