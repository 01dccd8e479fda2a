#include "bus/embedded_bus.h"

#include <openssl/rand.h>

#include <algorithm>

#include "wire/message_builder.h"

namespace comet {

std::string new_epoch() {
  static const char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  unsigned char random[12];
  if (RAND_bytes(random, sizeof random) != 1) {
    // RAND_bytes only fails when the OS has no entropy source; fall back to the clock so
    // a restart still gets a different epoch.
    uint64_t t = static_cast<uint64_t>(monotonic_ms()) ^ reinterpret_cast<uintptr_t>(&random);
    for (auto& b : random) b = static_cast<unsigned char>(t >>= 5);
  }
  std::string epoch;
  for (unsigned char b : random) epoch.push_back(kAlphabet[b % 36]);
  return epoch;
}

void EmbeddedBus::attach(Inbox* inbox) {
  std::lock_guard<std::mutex> lock(mutex_);
  inboxes_.push_back(inbox);
}

void EmbeddedBus::detach(Inbox* inbox) {
  std::lock_guard<std::mutex> lock(mutex_);
  inboxes_.erase(std::remove(inboxes_.begin(), inboxes_.end(), inbox), inboxes_.end());
}

PublishResult EmbeddedBus::publish(std::string_view channel, std::string_view event,
                                   std::string_view data) {
  std::lock_guard<std::mutex> lock(mutex_);
  Sequence& seq = sequences_[std::string(channel)];
  if (seq.epoch.empty()) seq.epoch = new_epoch();
  const uint64_t prev = seq.last_id;
  const uint64_t id = ++seq.last_id;
  MessagePtr message = make_message(std::string(channel), seq.epoch, id, prev, std::string(event),
                                    std::string(data), monotonic_ms());
  for (Inbox* inbox : inboxes_) inbox->post(message);
  return PublishResult{true, std::string(channel), seq.epoch, id, {}};
}

bool EmbeddedBus::head(std::string_view channel, Position& out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sequences_.find(std::string(channel));
  if (it == sequences_.end()) return false;
  out = Position{it->second.epoch, it->second.last_id};
  return true;
}

}  // namespace comet
