#include "ws/handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "util/ascii.h"

namespace comet::ws {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// 16 bytes of nonce encode to 22 base64 digits plus "==" padding.
constexpr size_t kKeyChars = 24;
constexpr size_t kKeyDigits = 22;

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// True when the comma-separated header list contains `token`. Whole-token
// matching matters: a substring search would accept e.g. "not-upgrade".
bool has_token(std::string_view list, std::string_view token) {
  while (true) {
    const size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

bool is_base64_digit(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Only the shape is checked: the key is never decoded, just hashed back to the
// client, so non-zero pad bits (which lenient decoders accept) are tolerated.
bool is_16_byte_base64(std::string_view key) {
  if (key.size() != kKeyChars) return false;
  for (size_t i = 0; i < kKeyDigits; ++i) {
    if (!is_base64_digit(key[i])) return false;
  }
  return key[kKeyDigits] == '=' && key[kKeyDigits + 1] == '=';
}

}  // namespace

std::string accept_key(std::string_view sec_websocket_key) {
  // One-shot SHA1() because the streaming SHA1_* calls are deprecated in
  // OpenSSL 3; the concatenation is a one-off per connection, off the hot path.
  std::string input;
  input.reserve(sec_websocket_key.size() + kGuid.size());
  input.append(sec_websocket_key);
  input.append(kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  // 20 bytes -> 28 base64 characters, plus the NUL EVP_EncodeBlock appends.
  unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<size_t>(n));
}

HandshakeCheck check_upgrade_request(std::string_view method, std::string_view upgrade_header,
                                     std::string_view connection_header,
                                     std::string_view version_header, std::string_view key_header) {
  if (method != "GET") return {400, "WebSocket upgrade requires GET"};
  if (!has_token(upgrade_header, "websocket")) return {400, "Upgrade header lacks websocket"};
  if (!has_token(connection_header, "upgrade")) return {400, "Connection header lacks upgrade"};
  // The version is checked before the key so a client speaking another protocol
  // version learns which one we support instead of getting a bare 400.
  if (trim(version_header) != "13") return {426, "unsupported Sec-WebSocket-Version"};
  if (!is_16_byte_base64(trim(key_header))) return {400, "malformed Sec-WebSocket-Key"};
  return {0, "ok"};
}

std::string build_upgrade_response(std::string_view accept, std::string_view extra_headers) {
  std::string out;
  out.reserve(128 + extra_headers.size());
  out.append(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ");
  out.append(accept);
  out.append("\r\n");
  out.append(extra_headers);
  out.append("\r\n");
  return out;
}

}  // namespace comet::ws
