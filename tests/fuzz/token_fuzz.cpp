// libFuzzer target: token verification (auth/token.h) and its base64url decoder.
//
// A fuzzer cannot forge an HMAC, so the input is used three ways, all verified under one
// fixed secret at one fixed time:
//  1. as a token, exactly as a client sends it (malformed, tampered, or one of the valid
//     seeds);
//  2. as a token whose signature the harness replaces with the right one, so mutated
//     headers and payloads get past the signature check;
//  3. as the payload JSON (the claims) of a token the harness builds and signs.
// Checked: a refusal carries a reason and grants nothing; an accepted token is correctly
// signed, fits kMaxTokenBytes, grants 1..256 valid patterns that cover what they name,
// has not expired, and is refused under another secret and with a changed signature.
// base64url_decode is checked against a reference encoder both ways (decoding is
// canonical, so encoding what it decoded gives back the input).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../unit/test_token.h"  // the unit tests' signer
#include "auth/token.h"
#include "fuzz_support.h"
#include "hub/cursor.h"

namespace {

using comet::TokenCheck;
using comet::fuzz::escaped;
using comet::test::base64url;

// The unit tests' secret and clock (tests/unit/token_test.cpp); the seed tokens in
// corpus/token/ are signed with it and expire in 2030.
constexpr std::string_view kSecret = "s3cret-for-tests";
constexpr int64_t kNowMs = 1700000000000;
constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";

std::string signature(std::string_view signing_input, std::string_view secret = kSecret) {
  return base64url(comet::test::hmac_sha256(secret, signing_input));
}

bool reference_pattern(std::string_view p) {
  if (p == "*") return true;
  if (!p.empty() && p.back() == '*') p.remove_suffix(1);
  return comet::is_valid_channel_name(p);
}

void check_result(std::string_view token, const TokenCheck& c) {
  if (!c.ok) {
    FUZZ_CHECK(!c.error.empty());
    FUZZ_CHECK(c.grant.patterns.empty() && c.grant.user.empty() && c.grant.expires_ms == 0);
    return;
  }
  FUZZ_CHECK(c.error.empty());
  FUZZ_CHECK(token.size() <= comet::kMaxTokenBytes);
  // Only a correctly signed token gets this far.
  const size_t dot2 = token.rfind('.');
  FUZZ_CHECK(dot2 != std::string_view::npos);
  FUZZ_CHECK_MSG(token.substr(dot2 + 1) == signature(token.substr(0, dot2)), escaped(token));
  FUZZ_CHECK(!c.grant.patterns.empty() && c.grant.patterns.size() <= 256);
  for (const std::string& p : c.grant.patterns) {
    FUZZ_CHECK_MSG(reference_pattern(p), escaped(p));
    if (p.back() == '*') {
      FUZZ_CHECK(c.grant.covers(p.substr(0, p.size() - 1) + "x"));
    } else {
      FUZZ_CHECK(c.grant.covers(p));
    }
  }
  FUZZ_CHECK(c.grant.user.size() <= 256);
  // Not expired, allowing the skew.
  FUZZ_CHECK_MSG(c.grant.expires_ms >= kNowMs - comet::kTokenSkewSeconds * 1000 - 999,
                 std::to_string(c.grant.expires_ms));
  // Another secret, or any change to the signature, and it is refused.
  FUZZ_CHECK(!comet::verify_token(token, "another-secret", kNowMs).ok);
  std::string tampered(token);
  char& last = tampered.back();
  last = last == 'A' ? 'B' : 'A';
  FUZZ_CHECK(!comet::verify_token(tampered, kSecret, kNowMs).ok);
}

void check_token(std::string_view token) {
  check_result(token, comet::verify_token(token, kSecret, kNowMs));
}

void check_base64url(std::string_view data) {
  std::string decoded;
  if (comet::base64url_decode(data, decoded))
    FUZZ_CHECK_MSG(base64url(decoded) == data, escaped(data));
  const std::string encoded = base64url(data);
  FUZZ_CHECK(comet::base64url_decode(encoded, decoded) && decoded == data);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  // 1. As sent.
  check_token(data);
  // 2. Re-signed: whatever the first two segments say gets past the signature.
  const size_t dot1 = data.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : data.find('.', dot1 + 1);
  if (dot2 != std::string_view::npos) {
    const std::string_view input = data.substr(0, dot2);
    check_token(std::string(input) + "." + signature(input));
  }
  // 3. As the claims of a token signed by the harness.
  const std::string input = base64url(kHeader) + "." + base64url(data);
  check_token(input + "." + signature(input));
  check_base64url(data);
  return 0;
}
