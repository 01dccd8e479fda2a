#include "server/connection_limits.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <random>

namespace comet {
namespace {

// The bytes an address is counted by: IPv4 (also when mapped into IPv6), or an IPv6 /64.
std::string address_bytes(const sockaddr* peer, bool prefix64) {
  if (peer->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(peer);
    return std::string(reinterpret_cast<const char*>(&in->sin_addr), 4);
  }
  if (peer->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(peer);
    const auto* bytes = reinterpret_cast<const char*>(&in6->sin6_addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return std::string(bytes + 12, 4);
    return std::string(bytes, prefix64 ? 8 : 16);
  }
  return "";
}

std::string parse_address(const std::string& text) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1)
    return std::string(reinterpret_cast<char*>(buf), 4);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(buf, kMapped, 12) == 0) return std::string(reinterpret_cast<char*>(buf) + 12, 4);
    return std::string(reinterpret_cast<char*>(buf), 16);
  }
  return "";
}

}  // namespace

ConnectionLimits::ConnectionLimits(const Config& config)
    : max_total_(config.max_connections),
      max_per_address_(config.max_connections_per_ip),
      // Seeded per process: nobody can pick addresses that share one count here.
      seed_(std::random_device{}()) {
  for (const std::string& address : config.trusted_proxies) {
    std::string bytes = parse_address(address);
    if (!bytes.empty()) trusted_.push_back(std::move(bytes));
  }
}

bool ConnectionLimits::exempt(const sockaddr* peer) const {
  if (peer == nullptr || (peer->sa_family != AF_INET && peer->sa_family != AF_INET6)) return true;
  const std::string full = address_bytes(peer, false);
  for (const std::string& trusted : trusted_)
    if (trusted == full) return true;
  return false;
}

uint32_t ConnectionLimits::key_of(const sockaddr* peer) const {
  // FNV-1a over the seed and the address bytes; 0 is kept for "not counted".
  uint32_t h = 2166136261u ^ seed_;
  for (unsigned char c : address_bytes(peer, true)) h = (h ^ c) * 16777619u;
  return h == 0 ? 1 : h;
}

Admission ConnectionLimits::admit(const sockaddr* peer, uint32_t& key) {
  key = max_per_address_ != 0 && !exempt(peer) ? key_of(peer) : 0;
  std::lock_guard<std::mutex> lock(mutex_);
  bool over = max_total_ != 0 && total_ >= max_total_;
  uint32_t* count = nullptr;
  if (key != 0) {
    count = &per_address_[key];
    over = over || *count >= max_per_address_;
  }
  if (over) {
    ++refused_;
    if (count != nullptr && *count == 0) per_address_.erase(key);
    if (overflow_ >= kOverflowBand) return Admission::kRefused;
    ++overflow_;
    key = 0;  // an overflow connection does not count against its address
    return Admission::kOverflow;
  }
  ++total_;
  if (count != nullptr) ++*count;
  return Admission::kAdmitted;
}

void ConnectionLimits::release(Admission admission, uint32_t key) {
  if (admission != Admission::kAdmitted && admission != Admission::kOverflow) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (admission == Admission::kOverflow) {
    --overflow_;
    return;
  }
  --total_;
  if (key == 0) return;
  auto it = per_address_.find(key);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

uint64_t ConnectionLimits::open() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_;
}

uint64_t ConnectionLimits::refused() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return refused_;
}

size_t default_max_connections(size_t open_file_limit, int workers) {
  // Per worker: a listener or two, an eventfd, its event base's own fds, a Redis
  // connection, auth-url connections; plus the process's own files and the band.
  const size_t reserve = 64 + static_cast<size_t>(workers) * 80 + ConnectionLimits::kOverflowBand;
  return open_file_limit > reserve + 64 ? open_file_limit - reserve : 64;
}

}  // namespace comet
