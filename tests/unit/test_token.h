#pragma once
// Signs tokens as comet_token() (php-client) does, for session tests that subscribe to
// private and presence channels. Header-only: tests/CMakeLists.txt compiles only
// *_test.cpp files into unit_tests.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <ctime>
#include <string>

namespace comet {
namespace test {

inline std::string base64url(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : bytes) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out.push_back(kAlphabet[(bits >> count) & 63]);
    }
  }
  if (count > 0) out.push_back(kAlphabet[(bits << (6 - count)) & 63]);
  return out;
}

/** An HS256 JWT of `payload_json` (the claims object, as written) signed with `secret`. */
inline std::string sign_token(const std::string& payload_json, const std::string& secret) {
  const std::string signing_input =
      base64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}") + "." + base64url(payload_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &len);
  return signing_input + "." + base64url(std::string(reinterpret_cast<char*>(mac), len));
}

/** A token for `channel` naming user `sub` ("" = no sub), valid for an hour from now. */
inline std::string channel_token(const std::string& channel, const std::string& sub,
                                 const std::string& secret) {
  const int64_t exp = time(nullptr) + 3600;
  std::string payload = "{\"channels\":[\"" + channel + "\"],\"exp\":" + std::to_string(exp);
  if (!sub.empty()) payload += ",\"sub\":\"" + sub + "\"";
  return sign_token(payload + "}", secret);
}

}  // namespace test
}  // namespace comet
