#include "util/utf8.h"

#include <doctest/doctest.h>

#include <string>

using comet::is_valid_utf8;
using comet::Utf8Validator;

namespace {

// Builds a string from raw byte values, so test inputs read like hex dumps.
std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

// Feeds `s` one byte at a time; returns whether every feed succeeded and the
// result of complete().
std::pair<bool, bool> feed_bytewise(std::string_view s) {
  Utf8Validator v;
  for (char c : s) {
    if (!v.feed(std::string_view(&c, 1))) return {false, v.complete()};
  }
  return {true, v.complete()};
}

}  // namespace

TEST_CASE("utf8: valid strings") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("hello, world {\"json\": 1}"));
  CHECK(is_valid_utf8(bytes({0x7F})));
  CHECK(is_valid_utf8(bytes({0xC2, 0x80})));                             // U+0080
  CHECK(is_valid_utf8(bytes({0xDF, 0xBF})));                             // U+07FF
  CHECK(is_valid_utf8(bytes({0xE0, 0xA0, 0x80})));                       // U+0800
  CHECK(is_valid_utf8(bytes({0xED, 0x9F, 0xBF})));                       // U+D7FF
  CHECK(is_valid_utf8(bytes({0xEE, 0x80, 0x80})));                       // U+E000
  CHECK(is_valid_utf8(bytes({0xEF, 0xBF, 0xBF})));                       // U+FFFF
  CHECK(is_valid_utf8(bytes({0xF0, 0x90, 0x80, 0x80})));                 // U+10000
  CHECK(is_valid_utf8(bytes({0xF4, 0x8F, 0xBF, 0xBF})));                 // U+10FFFF
  CHECK(is_valid_utf8("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"));  // "κόσμε"
  // Long ASCII runs exercise the 8-byte fast path, with a multi-byte tail.
  CHECK(is_valid_utf8(std::string(37, 'a') + "\xE2\x82\xAC" + std::string(9, 'b')));
}

TEST_CASE("utf8: overlong encodings are rejected") {
  CHECK_FALSE(is_valid_utf8(bytes({0xC0, 0x80})));  // U+0000 in 2 bytes
  CHECK_FALSE(is_valid_utf8(bytes({0xC1, 0xBF})));
  CHECK_FALSE(is_valid_utf8(bytes({0xE0, 0x80, 0xAF})));  // '/' in 3 bytes
  CHECK_FALSE(is_valid_utf8(bytes({0xE0, 0x9F, 0xBF})));  // U+07FF in 3 bytes
  CHECK_FALSE(is_valid_utf8(bytes({0xF0, 0x80, 0x80, 0xAF})));
  CHECK_FALSE(is_valid_utf8(bytes({0xF0, 0x8F, 0xBF, 0xBF})));  // U+FFFF in 4 bytes
}

TEST_CASE("utf8: surrogates and out-of-range code points are rejected") {
  CHECK_FALSE(is_valid_utf8(bytes({0xED, 0xA0, 0x80})));                    // U+D800
  CHECK_FALSE(is_valid_utf8(bytes({0xED, 0xBF, 0xBF})));                    // U+DFFF
  CHECK_FALSE(is_valid_utf8(bytes({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80})));  // pair
  CHECK_FALSE(is_valid_utf8(bytes({0xF4, 0x90, 0x80, 0x80})));              // U+110000
  CHECK_FALSE(is_valid_utf8(bytes({0xF5, 0x80, 0x80, 0x80})));
  CHECK_FALSE(is_valid_utf8(bytes({0xFE})));
  CHECK_FALSE(is_valid_utf8(bytes({0xFF})));
}

TEST_CASE("utf8: truncated and stray bytes are rejected") {
  CHECK_FALSE(is_valid_utf8(bytes({0xC2})));
  CHECK_FALSE(is_valid_utf8(bytes({0xE2, 0x82})));
  CHECK_FALSE(is_valid_utf8(bytes({0xF0, 0x9F, 0x98})));
  CHECK_FALSE(is_valid_utf8(bytes({0x80})));              // lone continuation
  CHECK_FALSE(is_valid_utf8(bytes({0xE2, 0x41, 0xAC})));  // ASCII inside sequence
  CHECK_FALSE(is_valid_utf8(std::string(20, 'x') + "\xC3"));
}

TEST_CASE("utf8: incremental validator fails fast") {
  Utf8Validator v;
  CHECK(v.feed(bytes({0xF4})));
  CHECK_FALSE(v.complete());
  CHECK_FALSE(v.feed(bytes({0x90})));  // 0xF4 0x90 can only start a code point > U+10FFFF
  CHECK_FALSE(v.complete());
  CHECK_FALSE(v.feed("a"));  // stays failed
  v.reset();
  CHECK(v.complete());
  CHECK(v.feed("ok"));

  Utf8Validator s;
  CHECK(s.feed(bytes({0xED})));
  CHECK_FALSE(s.feed(bytes({0xA0})));  // surrogate detected on its second byte

  Utf8Validator o;
  CHECK_FALSE(o.feed(bytes({0xC0})));  // overlong lead byte rejected on its own
}

TEST_CASE("utf8: incremental validator handles code points split across chunks") {
  const std::string euro = "\xE2\x82\xAC";
  Utf8Validator v;
  CHECK(v.feed(euro.substr(0, 1)));
  CHECK_FALSE(v.complete());
  CHECK(v.feed(euro.substr(1, 1)));
  CHECK_FALSE(v.complete());
  CHECK(v.feed(euro.substr(2)));
  CHECK(v.complete());
  CHECK(v.feed(""));
  CHECK(v.complete());

  auto [ok, complete] = feed_bytewise(bytes({0xF4, 0x8F, 0xBF, 0xBF, 0x41}));
  CHECK(ok);
  CHECK(complete);
  auto [ok2, complete2] = feed_bytewise(bytes({0xF0, 0x9F, 0x98}));
  CHECK(ok2);
  CHECK_FALSE(complete2);
  auto [ok3, complete3] = feed_bytewise(bytes({0x41, 0xE0, 0x80}));
  CHECK_FALSE(ok3);
  CHECK_FALSE(complete3);
}
