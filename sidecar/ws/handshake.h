// RFC 6455 section 4.2 opening handshake: request validation and 101 response.
#pragma once

#include <string>
#include <string_view>

namespace comet::ws {

// Returns the Sec-WebSocket-Accept value for `sec_websocket_key`: base64 of the
// SHA-1 of the key (as received, already trimmed) concatenated with the RFC 6455
// GUID. Always 28 characters.
std::string accept_key(std::string_view sec_websocket_key);

// Outcome of check_upgrade_request.
struct HandshakeCheck {
  // 0 when the upgrade may proceed; 400 for a malformed request; 426 when the
  // version is not 13, in which case the response must carry
  // "Sec-WebSocket-Version: 13".
  int http_status;
  // Static string describing the problem (for logs or the response body);
  // "ok" on success. Never null, never owned by the caller.
  const char* reason;
};

// Validates the parts of an HTTP request that make it a WebSocket upgrade.
// Header arguments are the raw field values (empty when the header is absent).
// Requires: method "GET"; an Upgrade list containing the token "websocket" and
// a Connection list containing "upgrade" (comma-separated, case-insensitive,
// optional whitespace); Sec-WebSocket-Version "13" (else 426); and a
// Sec-WebSocket-Key that is base64 for exactly 16 bytes. Does not allocate.
HandshakeCheck check_upgrade_request(std::string_view method, std::string_view upgrade_header,
                                     std::string_view connection_header,
                                     std::string_view version_header, std::string_view key_header);

// Returns the complete "101 Switching Protocols" response head, ending with the
// blank line, carrying `accept` (from accept_key) as Sec-WebSocket-Accept and then
// `extra_headers` (complete lines with CRLF, e.g. deflate_response_header's).
std::string build_upgrade_response(std::string_view accept, std::string_view extra_headers = {});

}  // namespace comet::ws
