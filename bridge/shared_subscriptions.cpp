#include "bridge/shared_subscriptions.h"

#include <algorithm>

#include "bridge/cluster_redis.h"
#include "bridge/standalone_redis.h"

namespace comet {

// ---- SharedSubscriptions: any thread --------------------------------------------------

int SharedSubscriptions::join(FanoutBackend* backend, event_base* base) {
  std::lock_guard<std::mutex> lock(mutex_);
  members_.push_back(Member{backend, std::make_unique<LoopMailbox>(base)});
  return static_cast<int>(members_.size()) - 1;
}

void SharedSubscriptions::leave(int index) {
  std::lock_guard<std::mutex> lock(mutex_);
  Member& m = members_[static_cast<size_t>(index)];
  m.backend = nullptr;
  m.mailbox.reset();  // drops deliveries not run yet; nothing is posted to it after this
}

void SharedSubscriptions::request(int index, bool subscribe, std::vector<std::string> names) {
  std::lock_guard<std::mutex> lock(mutex_);
  Member& owner = members_[0];
  if (owner.backend == nullptr) return;  // shutting down
  // Through the owner's mailbox even from the owner's own worker: a request is never
  // answered from inside the bridge's own call.
  owner.mailbox->post([this, index, subscribe, names = std::move(names)] {
    owner_request(index, subscribe, names);
  });
}

void SharedSubscriptions::deliver(int index, std::function<void(FanoutBackend&)> task) {
  std::unique_lock<std::mutex> lock(mutex_);
  Member& m = members_[static_cast<size_t>(index)];
  if (m.backend == nullptr) return;
  if (index == 0) {
    FanoutBackend* backend = m.backend;
    lock.unlock();
    task(*backend);  // the owner's loop: as a single-worker bridge would get it
    return;
  }
  FanoutBackend* backend = m.backend;
  m.mailbox->post([backend, task = std::move(task)] { task(*backend); });
}

// ---- SharedSubscriptions: the owner's loop ---------------------------------------------

void SharedSubscriptions::set_state(Entry& entry, State state) {
  if (entry.state == State::kSubscribed) subscribed_.fetch_sub(1);
  if (state == State::kSubscribed) subscribed_.fetch_add(1);
  entry.state = state;
}

void SharedSubscriptions::owner_request(int index, bool subscribe,
                                        const std::vector<std::string>& names) {
  std::vector<std::string> to_subscribe, to_unsubscribe, confirmed, released;
  for (const std::string& name : names) {
    if (subscribe) {
      Entry& e = entries_[name];
      if (std::find(e.workers.begin(), e.workers.end(), index) == e.workers.end())
        e.workers.push_back(index);
      if (e.state == State::kSubscribed) {
        confirmed.push_back(name);  // live already: the worker may read the stream now
      } else if (e.state == State::kUnsubscribed) {
        to_subscribe.push_back(name);
      }
      // Subscribing: confirmed to every worker when Redis confirms. Unsubscribing:
      // subscribed again when that is confirmed.
      continue;
    }
    auto it = entries_.find(name);
    released.push_back(name);  // the worker's side is done at once
    if (it == entries_.end()) continue;
    Entry& e = it->second;
    e.workers.erase(std::remove(e.workers.begin(), e.workers.end(), index), e.workers.end());
    if (!e.workers.empty()) continue;
    if (e.state == State::kSubscribed) {
      set_state(e, State::kUnsubscribing);
      to_unsubscribe.push_back(name);
    } else if (e.state == State::kUnsubscribed) {
      entries_.erase(it);
    }
  }
  if (!confirmed.empty() || !released.empty()) {
    deliver(index, [confirmed, released](FanoutBackend& b) {
      for (const std::string& name : confirmed) b.bridge_.on_pubsub("subscribe", name, {});
      for (const std::string& name : released) b.bridge_.on_pubsub("unsubscribe", name, {});
    });
  }
  subscribe_now(to_subscribe);
  if (!to_unsubscribe.empty()) members_[0].backend->own_->unsubscribe(to_unsubscribe);
}

void SharedSubscriptions::subscribe_now(const std::vector<std::string>& names) {
  RedisBackend& redis = *members_[0].backend->own_;
  std::vector<std::string> ready;
  for (const std::string& name : names) {
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second.state != State::kUnsubscribed) continue;
    // Not yet (a cluster node still connecting): owner_retry sends it when it can.
    if (!redis.can_subscribe(name)) continue;
    set_state(it->second, State::kSubscribing);
    ready.push_back(name);
  }
  if (!ready.empty()) redis.subscribe(ready);
}

void SharedSubscriptions::owner_retry() {
  std::vector<std::string> pending;
  for (const auto& [name, e] : entries_)
    if (e.state == State::kUnsubscribed && !e.workers.empty()) pending.push_back(name);
  subscribe_now(pending);
}

void SharedSubscriptions::owner_pubsub(std::string_view kind, std::string_view name,
                                       std::string_view payload) {
  auto it = entries_.find(std::string(name));
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (kind == "message") {
    // The owner's own worker takes it as a single-worker bridge would, from Redis' reply;
    // the others share one copy, made only when one of them wants it.
    std::shared_ptr<const std::pair<std::string, std::string>> copy;
    for (int w : e.workers) {
      if (w == 0) {
        deliver(0, [&](FanoutBackend& b) { b.bridge_.on_pubsub("message", name, payload); });
        continue;
      }
      if (copy == nullptr)
        copy = std::make_shared<const std::pair<std::string, std::string>>(name, payload);
      deliver(w, [copy](FanoutBackend& b) {
        b.bridge_.on_pubsub("message", copy->first, copy->second);
      });
    }
    return;
  }
  if (kind == "subscribe") {
    set_state(e, State::kSubscribed);
    if (e.workers.empty()) {
      set_state(e, State::kUnsubscribing);
      members_[0].backend->own_->unsubscribe({std::string(name)});
      return;
    }
    const std::string n(name);
    for (int w : e.workers)
      deliver(w, [n](FanoutBackend& b) { b.bridge_.on_pubsub("subscribe", n, {}); });
    return;
  }
  if (kind == "unsubscribe") {
    set_state(e, State::kUnsubscribed);
    if (e.workers.empty())
      entries_.erase(it);
    else
      subscribe_now({std::string(name)});  // wanted again meanwhile
  }
}

void SharedSubscriptions::owner_lost(const std::vector<std::string>* names) {
  // The workers that wanted them reset those channels and ask again if still wanted;
  // the entries go, so a worker that no longer wants one leaves nothing behind.
  std::unordered_map<int, std::vector<std::string>> by_worker;
  auto lose = [&](std::unordered_map<std::string, Entry>::iterator it) {
    for (int w : it->second.workers) by_worker[w].push_back(it->first);
    set_state(it->second, State::kUnsubscribed);
    entries_.erase(it);
  };
  if (names == nullptr) {
    while (!entries_.empty()) lose(entries_.begin());
  } else {
    for (const std::string& name : *names) {
      auto it = entries_.find(name);
      if (it != entries_.end()) lose(it);
    }
  }
  for (auto& [w, list] : by_worker)
    deliver(w,
            [list = std::move(list)](FanoutBackend& b) { b.bridge_.on_subscriptions_lost(&list); });
}

// ---- FanoutBackend ---------------------------------------------------------------------

FanoutBackend::FanoutBackend(SharedSubscriptions& shared, event_base* base,
                             const RedisAddress& address, std::vector<const char*> scripts,
                             BridgeHealth& health, RedisBackend::Listener& bridge)
    : shared_(shared), bridge_(bridge) {
  index_ = shared_.join(this, base);
  RedisBackend::Listener& self = *this;
  if (address.uses_cluster())
    own_ = std::make_unique<ClusterRedis>(base, address, std::move(scripts), health, self);
  else
    own_ = std::make_unique<StandaloneRedis>(base, address, std::move(scripts), health, self,
                                             /*with_subscriber=*/owner());
}

FanoutBackend::~FanoutBackend() { stop(); }

void FanoutBackend::stop() {
  if (!left_) {
    left_ = true;
    shared_.leave(index_);
  }
  own_->stop();
}

void FanoutBackend::subscribe(const std::vector<std::string>& names) {
  shared_.request(index_, true, names);
}

void FanoutBackend::unsubscribe(const std::vector<std::string>& names) {
  shared_.request(index_, false, names);
}

void FanoutBackend::on_pubsub(std::string_view kind, std::string_view name,
                              std::string_view payload) {
  if (owner()) shared_.owner_pubsub(kind, name, payload);
}

void FanoutBackend::on_subscriptions_lost(const std::vector<std::string>* names) {
  if (owner()) shared_.owner_lost(names);
}

void FanoutBackend::on_subscriber_ready() {
  if (owner()) shared_.owner_retry();
}

}  // namespace comet
