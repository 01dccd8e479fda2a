#pragma once
// %XX decoding for request targets, query strings and URL credentials.

#include <string>
#include <string_view>

namespace comet {

// Decodes %XX escapes (hex digits in either case) from `in` into `out`, replacing its
// previous contents. With `plus_as_space` a '+' decodes to ' ' (form/query encoding);
// otherwise it is kept literally (paths). Returns false, leaving `out` empty, on a malformed
// escape ("%G1", a truncated "%4" or "%") or a NUL byte, raw or decoded, since NULs would
// truncate names silently once handed to C APIs.
bool percent_decode(std::string_view in, std::string& out, bool plus_as_space);

}  // namespace comet
