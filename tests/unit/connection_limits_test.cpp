// Connection limits (server/connection_limits.cpp): a process-wide cap, a per-address
// cap (IPv6 by /64), trusted proxies exempt, a small overflow band answered 503.

#include "server/connection_limits.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>

#include <vector>

namespace comet {
namespace {

sockaddr_storage v4(const char* text) {
  sockaddr_storage s{};
  auto* in = reinterpret_cast<sockaddr_in*>(&s);
  in->sin_family = AF_INET;
  inet_pton(AF_INET, text, &in->sin_addr);
  return s;
}

sockaddr_storage v6(const char* text) {
  sockaddr_storage s{};
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&s);
  in6->sin6_family = AF_INET6;
  inet_pton(AF_INET6, text, &in6->sin6_addr);
  return s;
}

const sockaddr* sa(const sockaddr_storage& s) { return reinterpret_cast<const sockaddr*>(&s); }

Config limits(size_t total, size_t per_ip) {
  Config c;
  c.max_connections = total;
  c.max_connections_per_ip = per_ip;
  return c;
}

TEST_CASE("per address: the cap, then the overflow band, then refusal; release frees a place") {
  ConnectionLimits l(limits(1000, 3));
  const auto a = v4("198.51.100.7"), b = v4("198.51.100.8");
  uint32_t key = 0;
  std::vector<uint32_t> keys;
  for (int i = 0; i < 3; ++i) {
    CHECK(l.admit(sa(a), key) == Admission::kAdmitted);
    keys.push_back(key);
  }
  CHECK(l.admit(sa(a), key) == Admission::kOverflow);
  CHECK(key == 0);
  CHECK(l.admit(sa(b), key) == Admission::kAdmitted);  // another address is not affected
  l.release(Admission::kAdmitted, key);
  for (uint32_t i = 1; i < ConnectionLimits::kOverflowBand; ++i)
    CHECK(l.admit(sa(a), key) == Admission::kOverflow);
  CHECK(l.admit(sa(a), key) == Admission::kRefused);
  CHECK(l.refused() == ConnectionLimits::kOverflowBand + 1);
  l.release(Admission::kAdmitted, keys[0]);
  CHECK(l.admit(sa(a), key) == Admission::kAdmitted);
  CHECK(l.open() == 3);
}

TEST_CASE("IPv6 counts per /64; v4-mapped IPv6 counts as the IPv4 address") {
  ConnectionLimits l(limits(1000, 2));
  uint32_t key = 0;
  CHECK(l.admit(sa(v6("2001:db8:1:2::1")), key) == Admission::kAdmitted);
  CHECK(l.admit(sa(v6("2001:db8:1:2:ffff::9")), key) == Admission::kAdmitted);
  CHECK(l.admit(sa(v6("2001:db8:1:2::77")), key) == Admission::kOverflow);  // same /64
  CHECK(l.admit(sa(v6("2001:db8:1:3::1")), key) == Admission::kAdmitted);   // another /64
  CHECK(l.admit(sa(v4("203.0.113.5")), key) == Admission::kAdmitted);
  CHECK(l.admit(sa(v6("::ffff:203.0.113.5")), key) == Admission::kAdmitted);
  CHECK(l.admit(sa(v4("203.0.113.5")), key) == Admission::kOverflow);
}

TEST_CASE("trusted proxies are not limited per address, but count in the total") {
  Config c = limits(5, 1);
  ConnectionLimits l(c);  // default trusted: 127.0.0.1, ::1
  uint32_t key = 0;
  for (int i = 0; i < 5; ++i) CHECK(l.admit(sa(v4("127.0.0.1")), key) == Admission::kAdmitted);
  CHECK(l.admit(sa(v4("127.0.0.1")), key) == Admission::kOverflow);  // the total
  CHECK(l.open() == 5);
  // Other loopback addresses are not proxies.
  ConnectionLimits m(limits(100, 1));
  CHECK(m.admit(sa(v4("127.0.0.2")), key) == Admission::kAdmitted);
  CHECK(m.admit(sa(v4("127.0.0.2")), key) == Admission::kOverflow);
  CHECK(m.admit(sa(v6("::1")), key) == Admission::kAdmitted);
  CHECK(m.admit(sa(v6("::1")), key) == Admission::kAdmitted);
}

TEST_CASE("0 turns a cap off; exempt connections are never counted") {
  ConnectionLimits l(limits(0, 0));
  uint32_t key = 0;
  for (int i = 0; i < 5000; ++i)
    CHECK(l.admit(sa(v4("198.51.100.7")), key) == Admission::kAdmitted);
  l.release(Admission::kExempt, 0);
  CHECK(l.open() == 5000);
}

TEST_CASE("the default total keeps a reserve below the open-file limit") {
  CHECK(default_max_connections(20000, 2) == 20000 - (64 + 160 + ConnectionLimits::kOverflowBand));
  CHECK(default_max_connections(1024, 1) == 1024 - (64 + 80 + ConnectionLimits::kOverflowBand));
  CHECK(default_max_connections(100, 8) == 64);
}

}  // namespace
}  // namespace comet
