// Token verification (auth/token.cpp): exactly what comet_token() issues is accepted,
// and every way of forging, downgrading or stretching a token is refused.

#include "auth/token.h"

#include <doctest/doctest.h>

#include <string>

#include "test_token.h"

namespace comet {
namespace {

using test::base64url;
using test::hmac_sha256;

const std::string kSecret = "s3cret-for-tests";
constexpr int64_t kNow = 1700000000;  // seconds
constexpr int64_t kNowMs = kNow * 1000;

std::string make_token(const std::string& header, const std::string& payload,
                       const std::string& secret = kSecret) {
  const std::string input = base64url(header) + "." + base64url(payload);
  return input + "." + base64url(hmac_sha256(secret, input));
}

std::string payload(const std::string& channels, int64_t exp, const std::string& extra = "") {
  return "{\"channels\":" + channels + ",\"exp\":" + std::to_string(exp) +
         ",\"iat\":" + std::to_string(kNow) + extra + "}";
}

const std::string kHs256 = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

TEST_CASE("a token as comet_token() issues it is accepted, with its channels, expiry and user") {
  // Made with php: comet_token(['chat:42','private:user/7/*'], 300, ['sub' => '7'])
  const TokenCheck check = verify_token(
      make_token(kHs256,
                 payload("[\"chat:42\",\"private:user/7/*\"]", kNow + 300, ",\"sub\":\"7\"")),
      kSecret, kNowMs);
  REQUIRE_MESSAGE(check.ok, check.error);
  CHECK(check.grant.expires_ms == (kNow + 300) * 1000);
  CHECK(check.grant.user == "7");
  CHECK(check.grant.covers("chat:42"));
  CHECK_FALSE(check.grant.covers("chat:4"));
  CHECK_FALSE(check.grant.covers("chat:421"));
  CHECK(check.grant.covers("private:user/7/inbox"));
  CHECK(check.grant.covers("private:user/7/"));
  CHECK_FALSE(check.grant.covers("private:user/70/inbox"));
  CHECK_FALSE(check.grant.covers("private:user/8/inbox"));
}

TEST_CASE("an integer sub and a '*' pattern") {
  const TokenCheck check = verify_token(
      make_token(kHs256, payload("[\"*\"]", kNow + 60, ",\"sub\":42")), kSecret, kNowMs);
  REQUIRE(check.ok);
  CHECK(check.grant.user == "42");
  CHECK(check.grant.covers("anything:at/all"));
}

TEST_CASE("an info claim is the member info of presence channels, as compact JSON") {
  const TokenCheck check = verify_token(
      make_token(kHs256, payload("[\"presence:room\"]", kNow + 60,
                                 ",\"sub\":\"7\",\"info\": { \"name\" : \"Ann\", \"n\": [1, 2] }")),
      kSecret, kNowMs);
  REQUIRE_MESSAGE(check.ok, check.error);
  CHECK(check.grant.info_json == "{\"name\":\"Ann\",\"n\":[1,2]}");
  const TokenCheck none =
      verify_token(make_token(kHs256, payload("[\"presence:room\"]", kNow + 60, ",\"info\":null")),
                   kSecret, kNowMs);
  REQUIRE(none.ok);
  CHECK(none.grant.info_json.empty());
  const TokenCheck bad =
      verify_token(make_token(kHs256, payload("[\"presence:room\"]", kNow + 60, ",\"info\":[1]")),
                   kSecret, kNowMs);
  CHECK_FALSE(bad.ok);
  CHECK(bad.error == "token info must be a JSON object");
  // Info deeper than 32 levels (the recursive JSON writer) and invalid UTF-8 are refused.
  std::string deep = "{\"a\":";
  for (int i = 0; i < 40; ++i) deep += "[";
  for (int i = 0; i < 40; ++i) deep += "]";
  deep += "}";
  const TokenCheck nested = verify_token(
      make_token(kHs256, payload("[\"presence:room\"]", kNow + 60, ",\"info\":" + deep)), kSecret,
      kNowMs);
  CHECK_FALSE(nested.ok);
  CHECK(nested.error == "token info nests too deep");
  const TokenCheck latin1 = verify_token(
      make_token(kHs256, payload("[\"presence:room\"]", kNow + 60, ",\"sub\":\"caf\xE9\"")),
      kSecret, kNowMs);
  CHECK_FALSE(latin1.ok);
}

TEST_CASE("the algorithm is pinned to HS256") {
  const std::string body = payload("[\"a\"]", kNow + 60);
  // alg none with an empty signature: the classic downgrade.
  const std::string none =
      base64url("{\"alg\":\"none\",\"typ\":\"JWT\"}") + "." + base64url(body) + ".";
  CHECK(verify_token(none, kSecret, kNowMs).error == "token algorithm must be HS256");
  // HS512 signed correctly with the same secret is still refused.
  const std::string input =
      base64url("{\"alg\":\"HS512\",\"typ\":\"JWT\"}") + "." + base64url(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha512(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  const std::string hs512 = input + "." + base64url(std::string(reinterpret_cast<char*>(mac), len));
  CHECK(verify_token(hs512, kSecret, kNowMs).error == "token algorithm must be HS256");
  CHECK_FALSE(verify_token(make_token("{\"alg\":\"RS256\"}", body), kSecret, kNowMs).ok);
  CHECK_FALSE(verify_token(make_token("{\"typ\":\"JWT\"}", body), kSecret, kNowMs).ok);
  CHECK_FALSE(
      verify_token(make_token("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", body), kSecret, kNowMs).ok);
  CHECK(verify_token(make_token("{\"alg\":\"HS256\"}", body), kSecret, kNowMs).ok);
}

TEST_CASE("signatures: another secret, a changed payload, a truncated signature") {
  const std::string body = payload("[\"a\"]", kNow + 60);
  CHECK(verify_token(make_token(kHs256, body, "other"), kSecret, kNowMs).error ==
        "bad token signature");
  std::string token = make_token(kHs256, body);
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  const std::string forged =
      token.substr(0, dot1 + 1) + base64url(payload("[\"*\"]", kNow + 60)) + token.substr(dot2);
  CHECK(verify_token(forged, kSecret, kNowMs).error == "bad token signature");
  CHECK_FALSE(verify_token(token.substr(0, token.size() - 4), kSecret, kNowMs).ok);
  CHECK_FALSE(verify_token(token + "x", kSecret, kNowMs).ok);
  CHECK(verify_token(token, "", kNowMs).error.find("--token-secret") != std::string::npos);
}

TEST_CASE("exp and nbf with 30 s of skew; exp is required") {
  CHECK(verify_token(make_token(kHs256, payload("[\"a\"]", kNow - 29)), kSecret, kNowMs).ok);
  CHECK(verify_token(make_token(kHs256, payload("[\"a\"]", kNow - 31)), kSecret, kNowMs).error ==
        "token expired");
  CHECK(verify_token(make_token(kHs256, payload("[\"a\"]", kNow + 60,
                                                ",\"nbf\":" + std::to_string(kNow + 29))),
                     kSecret, kNowMs)
            .ok);
  CHECK(verify_token(make_token(kHs256, payload("[\"a\"]", kNow + 60,
                                                ",\"nbf\":" + std::to_string(kNow + 31))),
                     kSecret, kNowMs)
            .error == "token not valid yet (nbf)");
  CHECK_FALSE(verify_token(make_token(kHs256, "{\"channels\":[\"a\"]}"), kSecret, kNowMs).ok);
  CHECK_FALSE(
      verify_token(make_token(kHs256, "{\"channels\":[\"a\"],\"exp\":\"soon\"}"), kSecret, kNowMs)
          .ok);
}

TEST_CASE("channels must be 1-256 valid names or prefixes") {
  auto check = [](const std::string& channels) {
    return verify_token(make_token(kHs256, payload(channels, kNow + 60)), kSecret, kNowMs).ok;
  };
  CHECK(check("[\"a\",\"b/*\"]"));
  CHECK_FALSE(check("[]"));
  CHECK_FALSE(check("\"a\""));
  CHECK_FALSE(check("[1]"));
  CHECK_FALSE(check("[\"a b\"]"));
  CHECK_FALSE(check("[\"a*b\"]"));
  CHECK_FALSE(check("[\"**\"]"));
  std::string many = "[";
  for (int i = 0; i < 257; ++i)
    many += std::string(i ? "," : "") + "\"c" + std::to_string(i) + "\"";
  CHECK_FALSE(check(many + "]"));
}

TEST_CASE("malformed input is refused, never crashes") {
  for (const char* bad :
       {"", ".", "..", "a.b", "a.b.c.d", "!!!.@@@.###", "e30.e30.", "e30.e30.e30"})
    CHECK_FALSE(verify_token(bad, kSecret, kNowMs).ok);
  // Deep nesting in the payload: the parser is iterative.
  std::string deep(2500, '[');
  CHECK_FALSE(verify_token(make_token(kHs256, deep), kSecret, kNowMs).ok);
  CHECK(verify_token(std::string(5000, 'a'), kSecret, kNowMs).error == "token too long");
}

TEST_CASE("base64url decoding") {
  std::string out;
  CHECK(base64url_decode("aGk", out));
  CHECK(out == "hi");
  CHECK(base64url_decode("-_8", out));
  CHECK_FALSE(base64url_decode("a", out));
  CHECK_FALSE(base64url_decode("aGk=", out));
  CHECK_FALSE(base64url_decode("aGl", out));  // non-zero leftover bits
}

}  // namespace
}  // namespace comet

namespace comet {
namespace {

TEST_CASE("exp of PHP_INT_MAX (\"never\") does not overflow: it is the year 9999") {
  // Found by fuzzing: exp + skew and exp * 1000 were signed overflows.
  for (const char* exp : {"9223372036854775807", "9223372036854776", "253402300800"}) {
    CAPTURE(exp);
    const TokenCheck check =
        verify_token(make_token(kHs256, std::string("{\"channels\":[\"a\"],\"exp\":") + exp + "}"),
                     kSecret, kNowMs);
    REQUIRE(check.ok);
    CHECK(check.grant.expires_ms == 253402300799LL * 1000);
  }
}

}  // namespace
}  // namespace comet
