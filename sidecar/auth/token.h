#pragma once
// Verification of comet_token() tokens: JWT, HS256 only (docs/protocol.md, "Tokens").

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace comet {

/** What a valid token grants: channel patterns until an expiry, for a user. */
struct Grant {
  std::vector<std::string> patterns;  // exact names, or prefixes ending in '*'
  int64_t expires_ms = 0;             // wall clock; the token's exp or the app's ttl
  std::string user;                   // "sub" (token) or "user" (auth-url); may be empty
  std::string info_json;              // public member info (token "info" or auth-url); may be empty

  /** True when a pattern covers `channel` (expiry is not looked at). */
  bool covers(std::string_view channel) const;
};

struct TokenCheck {
  bool ok = false;
  std::string error;  // why not, for the client ("bad signature", "expired", ...)
  Grant grant;
};

/** Clock skew allowed on exp and nbf, each way. */
constexpr int64_t kTokenSkewSeconds = 30;
constexpr size_t kMaxTokenBytes = 4096;

/**
 * Verifies `token` under `secret` at `now_ms` (wall clock): compact JWT, header alg
 * HS256 (typ JWT if present), HMAC-SHA256 signature compared in constant time, exp
 * required, nbf optional, channels 1..256 strings. Never throws.
 */
TokenCheck verify_token(std::string_view token, std::string_view secret, int64_t now_ms);

/** base64url (RFC 4648 section 5) without padding; false on bad characters or length. */
bool base64url_decode(std::string_view in, std::string& out);

}  // namespace comet
