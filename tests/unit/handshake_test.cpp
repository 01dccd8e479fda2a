#include "ws/handshake.h"

#include <doctest/doctest.h>

#include <string>

using comet::ws::accept_key;
using comet::ws::build_upgrade_response;
using comet::ws::check_upgrade_request;
using comet::ws::HandshakeCheck;

namespace {

constexpr const char* kKey = "dGhlIHNhbXBsZSBub25jZQ==";

HandshakeCheck check(std::string_view method, std::string_view upgrade, std::string_view connection,
                     std::string_view version, std::string_view key) {
  return check_upgrade_request(method, upgrade, connection, version, key);
}

}  // namespace

TEST_CASE("handshake: accept key matches RFC 6455 section 1.3") {
  CHECK(accept_key(kKey) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK(accept_key("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  CHECK(accept_key("").size() == 28);
}

TEST_CASE("handshake: valid upgrade requests") {
  auto ok = check("GET", "websocket", "Upgrade", "13", kKey);
  CHECK(ok.http_status == 0);
  CHECK(std::string(ok.reason) == "ok");
  CHECK(check("GET", "WebSocket", "keep-alive, Upgrade", "13", kKey).http_status == 0);
  CHECK(check("GET", "h2c , websocket", "keep-alive,upgrade", " 13 ", kKey).http_status == 0);
  CHECK(check("GET", "websocket", "UPGRADE\t,close", "13", " dGhlIHNhbXBsZSBub25jZQ== ")
            .http_status == 0);
  CHECK(check("GET", "websocket", "Upgrade", "13", "AAAAAAAAAAAAAAAAAAAAAA==").http_status == 0);
}

TEST_CASE("handshake: malformed requests get 400") {
  CHECK(check("POST", "websocket", "Upgrade", "13", kKey).http_status == 400);
  CHECK(check("get", "websocket", "Upgrade", "13", kKey).http_status == 400);
  CHECK(check("GET", "", "Upgrade", "13", kKey).http_status == 400);
  CHECK(check("GET", "websockets", "Upgrade", "13", kKey).http_status == 400);
  CHECK(check("GET", "websocket", "", "13", kKey).http_status == 400);
  CHECK(check("GET", "websocket", "keep-alive", "13", kKey).http_status == 400);
  CHECK(check("GET", "websocket", "not-upgrade", "13", kKey).http_status == 400);
  CHECK(check("GET", "websocket", "Upgrade", "13", "").http_status == 400);
  // 15 and 17 bytes, missing padding, and bad characters.
  CHECK(check("GET", "websocket", "Upgrade", "13", "AAAAAAAAAAAAAAAAAAAA").http_status == 400);
  CHECK(check("GET", "websocket", "Upgrade", "13", "AAAAAAAAAAAAAAAAAAAAAAA=").http_status == 400);
  CHECK(check("GET", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ").http_status == 400);
  CHECK(check("GET", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZ!==").http_status == 400);
  CHECK(check("GET", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ=A").http_status == 400);
  auto bad = check("GET", "websocket", "Upgrade", "13", "short");
  REQUIRE(bad.reason != nullptr);
  CHECK(std::string(bad.reason).size() > 0);
}

TEST_CASE("handshake: wrong or missing version gets 426") {
  CHECK(check("GET", "websocket", "Upgrade", "8", kKey).http_status == 426);
  CHECK(check("GET", "websocket", "Upgrade", "", kKey).http_status == 426);
  CHECK(check("GET", "websocket", "Upgrade", "13, 8", kKey).http_status == 426);
  // A bad version is reported as 426 even when the key is also bad.
  CHECK(check("GET", "websocket", "Upgrade", "7", "nope").http_status == 426);
}

TEST_CASE("handshake: 101 response") {
  CHECK(build_upgrade_response(accept_key(kKey)) ==
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\n");
}
