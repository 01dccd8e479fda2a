#include "auth/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "auth/json_limits.h"
#include "hub/cursor.h"

namespace comet {
namespace {

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Iterative parsing: a token's JSON cannot make the parser recurse without bound. Valid
// UTF-8 only: `sub` and `info` travel on to browsers (WebSocket text frames).
bool parse_object(std::string_view text, rapidjson::Document& doc) {
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(text.data(),
                                                                                    text.size());
  return !doc.HasParseError() && doc.IsObject();
}

bool read_time(const rapidjson::Document& doc, const char* name, int64_t& out) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd()) return false;
  if (it->value.IsInt64()) {
    out = it->value.GetInt64();
    return true;
  }
  // JWT allows fractional NumericDate; whole seconds are what comet_token issues.
  if (it->value.IsDouble() && it->value.GetDouble() > -1e15 && it->value.GetDouble() < 1e15) {
    out = static_cast<int64_t>(it->value.GetDouble());
    return true;
  }
  out = -1;
  return true;  // present but not a number: the caller refuses it
}

bool is_valid_pattern(std::string_view pattern) {
  if (pattern == "*") return true;
  if (!pattern.empty() && pattern.back() == '*') pattern.remove_suffix(1);
  return is_valid_channel_name(pattern);
}

TokenCheck refuse(const char* why) {
  TokenCheck check;
  check.error = why;
  return check;
}

}  // namespace

bool Grant::covers(std::string_view channel) const {
  for (const std::string& pattern : patterns) {
    if (!pattern.empty() && pattern.back() == '*') {
      if (channel.substr(0, pattern.size() - 1) ==
          std::string_view(pattern).substr(0, pattern.size() - 1))
        return true;
    } else if (channel == pattern) {
      return true;
    }
  }
  return false;
}

bool base64url_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 == 1) return false;
  out.reserve(in.size() * 3 / 4);
  uint32_t bits = 0;
  int count = 0;
  for (char c : in) {
    const int v = base64url_value(c);
    if (v < 0) return false;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  // Leftover bits must be zero (canonical encoding only).
  return (bits & ((1u << count) - 1)) == 0;
}

TokenCheck verify_token(std::string_view token, std::string_view secret, int64_t now_ms) {
  if (secret.empty()) return refuse("tokens are not accepted (no --token-secret configured)");
  if (token.size() > kMaxTokenBytes) return refuse("token too long");
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return refuse("malformed token (expected header.payload.signature)");

  std::string header_json, payload_json, signature;
  if (!base64url_decode(token.substr(0, dot1), header_json) ||
      !base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1), payload_json) ||
      !base64url_decode(token.substr(dot2 + 1), signature))
    return refuse("malformed token (bad base64url)");

  // The algorithm is pinned: the header may only confirm it, never choose another.
  rapidjson::Document header;
  if (!parse_object(header_json, header)) return refuse("malformed token header");
  auto alg = header.FindMember("alg");
  if (alg == header.MemberEnd() || !alg->value.IsString() ||
      std::string_view(alg->value.GetString(), alg->value.GetStringLength()) != "HS256")
    return refuse("token algorithm must be HS256");
  auto typ = header.FindMember("typ");
  if (typ != header.MemberEnd() &&
      (!typ->value.IsString() ||
       std::string_view(typ->value.GetString(), typ->value.GetStringLength()) != "JWT"))
    return refuse("token type must be JWT");

  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const std::string_view signing_input = token.substr(0, dot2);
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
           &mac_len) == nullptr)
    return refuse("cannot compute the token signature");
  if (signature.size() != mac_len || CRYPTO_memcmp(signature.data(), mac, mac_len) != 0)
    return refuse("bad token signature");

  rapidjson::Document payload;
  if (!parse_object(payload_json, payload)) return refuse("malformed token payload");
  int64_t exp = 0, nbf = 0;
  if (!read_time(payload, "exp", exp) || exp < 0) return refuse("token has no valid exp");
  // "Never" (PHP_INT_MAX) is the year 9999: exp + skew and exp * 1000 must not overflow.
  constexpr int64_t kLatest = 253402300799;  // 9999-12-31T23:59:59Z
  if (exp > kLatest) exp = kLatest;
  const int64_t now_s = now_ms / 1000;
  if (now_s > exp + kTokenSkewSeconds) return refuse("token expired");
  if (read_time(payload, "nbf", nbf)) {
    if (nbf < 0) return refuse("token nbf is not a number");
    if (now_s < nbf - kTokenSkewSeconds) return refuse("token not valid yet (nbf)");
  }

  TokenCheck check;
  auto channels = payload.FindMember("channels");
  if (channels == payload.MemberEnd() || !channels->value.IsArray() || channels->value.Empty() ||
      channels->value.Size() > 256)
    return refuse("token channels must be a list of 1-256 channel names or prefixes");
  for (const auto& v : channels->value.GetArray()) {
    if (!v.IsString()) return refuse("token channels must be strings");
    std::string_view pattern(v.GetString(), v.GetStringLength());
    if (!is_valid_pattern(pattern)) return refuse("token has an invalid channel pattern");
    check.grant.patterns.emplace_back(pattern);
  }
  auto sub = payload.FindMember("sub");
  if (sub != payload.MemberEnd()) {
    if (sub->value.IsString() && sub->value.GetStringLength() <= 256)
      check.grant.user.assign(sub->value.GetString(), sub->value.GetStringLength());
    else if (sub->value.IsInt64())
      check.grant.user = std::to_string(sub->value.GetInt64());
    else
      return refuse("token sub must be a string or an integer");
  }
  // Public member info for presence channels (docs/protocol.md, "Presence"): kept as
  // compact JSON; its size is checked where a presence subscription is authorized.
  auto info = payload.FindMember("info");
  if (info != payload.MemberEnd() && !info->value.IsNull()) {
    if (!info->value.IsObject()) return refuse("token info must be a JSON object");
    if (!nests_at_most(info->value, kMaxInfoDepth)) return refuse("token info nests too deep");
    rapidjson::StringBuffer compact;
    rapidjson::Writer<rapidjson::StringBuffer> writer(compact);
    info->value.Accept(writer);
    check.grant.info_json.assign(compact.GetString(), compact.GetSize());
  }
  check.grant.expires_ms = exp * 1000;
  check.ok = true;
  return check;
}

}  // namespace comet
