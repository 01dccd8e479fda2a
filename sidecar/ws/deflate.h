// permessage-deflate (RFC 7692) compression and decompression of whole messages, with
// no context takeover: every message is one self-contained deflate stream piece. Each
// thread keeps one reusable zlib stream per direction (and per window size), reset per
// message, so compressing or inflating allocates nothing once a thread has warmed up.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace comet::ws {

/**
 * Compresses `data` as one permessage-deflate message (RFC 7692 7.2.1): raw deflate,
 * flushed with Z_SYNC_FLUSH, the trailing 00 00 ff ff removed, with an LZ77 window of at
 * most 2^window_bits bytes (8-15; 8 compresses with zlib's smallest window, 9, whose
 * matches never reach back 256 bytes). Appends the result to `out`. Returns false (with
 * `out` unchanged) when zlib fails, e.g. out of memory. Uses this thread's deflate
 * stream for that window; callable from any thread.
 */
bool deflate_message(std::string_view data, int window_bits, std::string& out);

/** Outcome of inflate_message. */
enum class InflateStatus {
  kOk,
  kTooBig,   // the output would pass the limit: close with 1009
  kInvalid,  // not valid deflate data for one message: close with 1007
};

/**
 * Inflates one permessage-deflate message `data` (the payload of its frames, without
 * the 00 00 ff ff tail, which this appends) into `out` (replaced). Stops as soon as the
 * output would pass `max_bytes`, so a small bomb never costs more than `max_bytes` of
 * memory. Rejects data that is corrupt, stops inside a block, goes on after a final
 * block, or refers back before the message (no context takeover). Uses this thread's
 * inflate stream (32 KiB window: reads any window size). Callable from any thread.
 */
InflateStatus inflate_message(std::string_view data, size_t max_bytes, std::string& out);

}  // namespace comet::ws
