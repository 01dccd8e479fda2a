#pragma once
// Signs tokens as comet_token() (php-client) does, for the token tests, the token fuzzer
// and session tests that subscribe to private and presence channels. Header-only:
// tests/CMakeLists.txt compiles only *_test.cpp files into unit_tests.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace comet {
namespace test {

inline std::string base64url(std::string_view bytes) {
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

/** HMAC-SHA256 of `data` under `key` (raw bytes). */
inline std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

/** An HS256 JWT of `payload_json` (the claims object, as written) signed with `secret`. */
inline std::string sign_token(const std::string& payload_json, const std::string& secret) {
  const std::string signing_input =
      base64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}") + "." + base64url(payload_json);
  return signing_input + "." + base64url(hmac_sha256(secret, signing_input));
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
