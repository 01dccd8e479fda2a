// Helpers shared by the libFuzzer targets in tests/fuzz/: invariant checks that abort
// (so libFuzzer records the input as a crash), the split point of an input, and
// reference implementations the product code is compared against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace comet::fuzz {

/** Prints the failed invariant (and `detail`) and aborts: libFuzzer saves the input. */
[[noreturn]] inline void check_failed(const char* file, int line, const char* expr,
                                      const std::string& detail) {
  std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, expr);
  if (!detail.empty()) std::fprintf(stderr, "%s\n", detail.c_str());
  std::abort();
}

/**
 * Where to cut an input in two for the split-feeding runs: a hash of the bytes, so it
 * is the same every time an input is replayed and changes with every mutation.
 * Returns 0..size.
 */
inline size_t split_point(std::string_view data) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return static_cast<size_t>(h % (data.size() + 1));
}

/**
 * Reference UTF-8 check (RFC 3629 section 4's table, written independently of
 * util/utf8.cpp so the two can be compared): no overlongs, surrogates or code points
 * above U+10FFFF, nothing truncated.
 */
inline bool reference_utf8(std::string_view s) {
  size_t i = 0;
  auto in = [&](size_t k, unsigned lo, unsigned hi) {
    if (i + k >= s.size()) return false;
    const auto c = static_cast<unsigned char>(s[i + k]);
    return c >= lo && c <= hi;
  };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c <= 0x7F) {
      i += 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!in(1, 0x80, 0xBF)) return false;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned hi = c == 0xED ? 0x9F : 0xBF;
      if (!in(1, lo, hi) || !in(2, 0x80, 0xBF)) return false;
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      const unsigned lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
      if (!in(1, lo, hi) || !in(2, 0x80, 0xBF) || !in(3, 0x80, 0xBF)) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

/** Printable form of bytes for failure messages: C escapes, cut after `max` bytes. */
inline std::string escaped(std::string_view s, size_t max = 400) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

}  // namespace comet::fuzz

/** Aborts with the expression's text when `cond` is false. */
#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) ::comet::fuzz::check_failed(__FILE__, __LINE__, #cond, std::string()); \
  } while (0)

/** Like FUZZ_CHECK, also printing `detail` (a std::string expression, built only on failure). */
#define FUZZ_CHECK_MSG(cond, detail)                                               \
  do {                                                                             \
    if (!(cond)) ::comet::fuzz::check_failed(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)
