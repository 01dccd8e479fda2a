// permessage-deflate (RFC 7692) negotiation: which offer in Sec-WebSocket-Extensions the
// server accepts, and the answer it sends back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace comet::ws {

/**
 * What a permessage-deflate negotiation settled. Two bytes, kept by every WebSocket
 * session: with no context takeover both ways (always answered) nothing else is
 * per-connection state.
 */
struct DeflateAgreement {
  // 0: the extension is not in use. Otherwise the largest LZ77 window (2^N bytes, 8-15)
  // the server may compress with: 15 unless the client asked for less.
  uint8_t server_window_bits = 0;
  // The client offered server_max_window_bits: the answer must carry it (RFC 7692 7.1.2.1).
  bool echo_server_window = false;

  bool enabled() const { return server_window_bits != 0; }
};

/**
 * Picks the first acceptable permessage-deflate offer from the Sec-WebSocket-Extensions
 * header values `values` (one entry per header line; they form one list, RFC 6455 9.1).
 * Offers of other extensions are ignored. A permessage-deflate offer is skipped when it
 * has an unknown parameter, a parameter twice, a value on a parameter that takes none, or
 * a window size other than 8-15 without leading zeros; quoted values are unescaped first.
 * A list that does not parse declines everything. Returns a disabled agreement when
 * nothing is acceptable (the upgrade then proceeds without the extension). Pure function.
 */
DeflateAgreement negotiate_deflate(const std::vector<std::string_view>& values);

/**
 * The response header line for `agreement`, CRLF included:
 * "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover;
 * client_no_context_takeover[; server_max_window_bits=N]\r\n", or "" when disabled.
 */
std::string deflate_response_header(const DeflateAgreement& agreement);

}  // namespace comet::ws
