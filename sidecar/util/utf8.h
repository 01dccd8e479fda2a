// Strict UTF-8 validation (RFC 3629) for WebSocket text frames and close reasons.
#pragma once

#include <cstdint>
#include <string_view>

namespace comet {

// Returns true iff `s` is well-formed UTF-8 per RFC 3629: no overlong encodings,
// no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF, and no sequence
// truncated at the end of `s`. The empty string is valid. Does not allocate.
bool is_valid_utf8(std::string_view s);

// Incremental validator for UTF-8 that arrives in pieces (WebSocket fragments,
// partially received frames). A code point may be split across chunks.
// Value type, no heap state; cheap to copy and to embed per connection.
class Utf8Validator {
 public:
  // Validates `chunk` as the continuation of everything fed since the last
  // reset(). Returns false as soon as the bytes seen so far cannot be the prefix
  // of any valid UTF-8 string (fail fast: the offending byte is enough, e.g.
  // 0xF4 0x90 fails on the 0x90). Once it has returned false it keeps returning
  // false until reset().
  bool feed(std::string_view chunk);

  // True when no error has been seen and the input so far ends on a code point
  // boundary, i.e. the concatenation of all chunks is complete valid UTF-8.
  bool complete() const { return !failed_ && need_ == 0; }

  // Forgets all input; the validator is ready for a new string.
  void reset() {
    need_ = 0;
    lo_ = 0x80;
    hi_ = 0xBF;
    failed_ = false;
  }

 private:
  uint8_t need_ = 0;   // continuation bytes still expected for the current code point
  uint8_t lo_ = 0x80;  // allowed range for the next continuation byte; the first one
  uint8_t hi_ = 0xBF;  // after some lead bytes is narrowed to exclude overlongs etc.
  bool failed_ = false;
};

}  // namespace comet
