// The TLS 1.3 record layer (tls/tls13_records.h) against itself: a peer made with the
// secrets the other way round seals what the server opens. Interoperability with a real
// OpenSSL client (keys, ivs, sequence numbers, KeyUpdate) is in tls_offload_test.cpp.

#include "tls/tls13_records.h"

#include <doctest/doctest.h>
#include <openssl/rand.h>

#include <cstdint>
#include <vector>

using comet::Tls13Records;

TEST_CASE("Tls13Records: what may come after the handshake") {
  uint8_t a[32], b[32];
  RAND_bytes(a, sizeof a);
  RAND_bytes(b, sizeof b);
  auto server = Tls13Records::create(0x1301, a, b, 32, 0);
  auto peer = Tls13Records::create(0x1301, b, a, 32, 0);
  REQUIRE(server != nullptr);
  REQUIRE(peer != nullptr);
  CHECK(Tls13Records::create(0x1304, a, b, 32, 0) == nullptr);  // CCM: not offered
  CHECK(Tls13Records::create(0x1302, a, b, 32, 0) == nullptr);  // SHA-384 wants 48 bytes
  std::vector<uint8_t> wire(Tls13Records::kMaxRecord);
  size_t used, plain_len;
  uint8_t* plain;

  SUBCASE("empty application data is fine") {
    const size_t size = peer->seal(nullptr, 0, wire.data());
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kData);
    CHECK(plain_len == 0);
    CHECK(server->read_seq() == 1);
  }
  SUBCASE("at most 32 records in a row without data: KeyUpdates and empty records") {
    // Each costs far more than a byte of data: a flood of them is refused.
    for (int round = 0; round < 2; round++) {
      for (int i = 0; i < 32; i++) {
        const size_t size =
            i % 2 == 0 ? peer->seal_key_update(wire.data()) : peer->seal(nullptr, 0, wire.data());
        REQUIRE(server->open(wire.data(), size, used, plain, plain_len) !=
                Tls13Records::Open::kError);
      }
      if (round == 0) {  // data resets the count
        const size_t size = peer->seal(reinterpret_cast<const uint8_t*>("d"), 1, wire.data());
        REQUIRE(server->open(wire.data(), size, used, plain, plain_len) ==
                Tls13Records::Open::kData);
      }
    }
    const size_t size = peer->seal(nullptr, 0, wire.data());
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kError);
    CHECK(server->alert() == Tls13Records::kUnexpectedMessage);
  }
  SUBCASE("an inner plaintext of only zeros (no type) is refused") {
    const uint8_t zeros[3] = {0, 0, 0};
    const size_t size = peer->seal_as(0, zeros, sizeof zeros, wire.data());
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kError);
    CHECK(server->alert() == Tls13Records::kUnexpectedMessage);
  }
  SUBCASE("an unknown inner type is refused") {
    const size_t size = peer->seal_as(24, reinterpret_cast<const uint8_t*>("hb"), 2, wire.data());
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kError);
  }
  SUBCASE("a handshake message other than KeyUpdate (a client NewSessionTicket) is refused") {
    const uint8_t ticket[] = {4, 0, 0, 1, 0};
    const size_t size = peer->seal_as(22, ticket, sizeof ticket, wire.data());
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kError);
    CHECK(server->alert() == Tls13Records::kUnexpectedMessage);
  }
  SUBCASE("a fatal alert from the peer: an error, and we send nothing back") {
    const uint8_t alert[] = {2, 40};
    const size_t size = peer->seal_as(21, alert, sizeof alert, wire.data());
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kError);
    CHECK(server->seal_closing_alert(wire.data()) == 0);
  }
  SUBCASE("a record after close_notify is refused") {
    size_t size = peer->seal_closing_alert(wire.data());
    REQUIRE(size > 0);
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kClosed);
    size = peer->seal(reinterpret_cast<const uint8_t*>("late"), 4, wire.data());
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kError);
    // Our close_notify in return is still allowed; only once.
    CHECK(server->seal_closing_alert(wire.data()) > 0);
    CHECK(server->seal_closing_alert(wire.data()) == 0);
  }
  SUBCASE("a record needs its whole body") {
    const size_t size = peer->seal(reinterpret_cast<const uint8_t*>("abc"), 3, wire.data());
    for (size_t cut = 0; cut < size; cut++)
      CHECK(server->open(wire.data(), cut, used, plain, plain_len) ==
            Tls13Records::Open::kNeedMore);
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kData);
    CHECK(used == size);
  }
  SUBCASE("a replayed record fails (the sequence number moved on)") {
    const size_t size = peer->seal(reinterpret_cast<const uint8_t*>("once"), 4, wire.data());
    std::vector<uint8_t> copy(wire.begin(), wire.begin() + static_cast<long>(size));
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kData);
    CHECK(server->open(copy.data(), size, used, plain, plain_len) == Tls13Records::Open::kError);
    CHECK(server->alert() == Tls13Records::kBadRecordMac);
  }
  SUBCASE("the write sequence never wraps: the last number is not used") {
    auto last = Tls13Records::create(0x1303, a, b, 32, UINT64_MAX - 1);
    REQUIRE(last != nullptr);
    CHECK(last->seal(reinterpret_cast<const uint8_t*>("a"), 1, wire.data()) > 0);
    CHECK(last->seal(reinterpret_cast<const uint8_t*>("b"), 1, wire.data()) == 0);
  }
  SUBCASE("a 16 KiB plaintext is one record, more is refused") {
    std::vector<uint8_t> data(Tls13Records::kMaxPlaintext + 1, 'z');
    CHECK(peer->seal(data.data(), data.size(), wire.data()) == 0);
    const size_t size = peer->seal(data.data(), Tls13Records::kMaxPlaintext, wire.data());
    CHECK(size == Tls13Records::kMaxPlaintext + Tls13Records::kOverhead);
    CHECK(server->open(wire.data(), size, used, plain, plain_len) == Tls13Records::Open::kData);
    CHECK(plain_len == Tls13Records::kMaxPlaintext);
  }
}
