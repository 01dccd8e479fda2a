#include "util/utf8.h"

#include <cstring>

namespace comet {

namespace {

constexpr uint64_t kHighBits = 0x8080808080808080ULL;

}  // namespace

bool Utf8Validator::feed(std::string_view chunk) {
  if (failed_) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(chunk.data());
  const uint8_t* const end = p + chunk.size();
  while (p < end) {
    if (need_ == 0) {
      // Push traffic is overwhelmingly ASCII JSON; skipping 8 such bytes per step
      // keeps validation off the profile. memcpy avoids unaligned-load UB.
      while (end - p >= 8) {
        uint64_t word;
        std::memcpy(&word, p, sizeof(word));
        if (word & kHighBits) break;
        p += 8;
      }
      if (p == end) break;
      const uint8_t b = *p++;
      if (b < 0x80) continue;
      // The narrowed second-byte ranges below are what rule out overlong forms
      // (E0, F0), surrogates (ED) and code points above U+10FFFF (F4); C0, C1
      // and F5..FF can never start a valid sequence.
      if (b >= 0xC2 && b <= 0xDF) {
        need_ = 1;
      } else if (b == 0xE0) {
        need_ = 2;
        lo_ = 0xA0;
      } else if (b == 0xED) {
        need_ = 2;
        hi_ = 0x9F;
      } else if (b >= 0xE1 && b <= 0xEF) {
        need_ = 2;
      } else if (b == 0xF0) {
        need_ = 3;
        lo_ = 0x90;
      } else if (b >= 0xF1 && b <= 0xF3) {
        need_ = 3;
      } else if (b == 0xF4) {
        need_ = 3;
        hi_ = 0x8F;
      } else {
        failed_ = true;
        return false;
      }
      continue;
    }
    const uint8_t b = *p++;
    if (b < lo_ || b > hi_) {
      failed_ = true;
      return false;
    }
    // Only the first continuation byte has a narrowed range.
    lo_ = 0x80;
    hi_ = 0xBF;
    --need_;
  }
  return true;
}

bool is_valid_utf8(std::string_view s) {
  Utf8Validator v;
  return v.feed(s) && v.complete();
}

}  // namespace comet
