#include "util/json_escape.h"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "util/utf8.h"

namespace comet {
namespace {

std::string quoted(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

// What a JSON parser reads back from the literal.
std::string parse_back(const std::string& literal) {
  rapidjson::Document doc;
  doc.Parse(literal.c_str(), literal.size());
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsString());
  return std::string(doc.GetString(), doc.GetStringLength());
}

TEST_CASE("plain text is quoted unchanged") {
  CHECK(quoted("") == "\"\"");
  CHECK(quoted("hello world") == "\"hello world\"");
  CHECK(quoted("a/b") == "\"a/b\"");      // '/' needs no escape
  CHECK(quoted("~\x7F") == "\"~\x7F\"");  // DEL is not a JSON control character
}

TEST_CASE("append_json_string appends to what is there") {
  std::string out = "{\"k\":";
  append_json_string(out, "v");
  append_json_string(out, "w");
  CHECK(out == "{\"k\":\"v\"\"w\"");
}

TEST_CASE("quotes, backslashes and the common controls get short escapes") {
  CHECK(quoted("\"") == R"("\"")");
  CHECK(quoted("\\") == R"("\\")");
  CHECK(quoted("\n") == R"("\n")");
  CHECK(quoted("\r") == R"("\r")");
  CHECK(quoted("\t") == R"("\t")");
  CHECK(quoted("say \"hi\"\\n") == R"("say \"hi\"\\n")");
}

TEST_CASE("other control characters become lowercase \\u00XX") {
  CHECK(quoted(std::string_view("\0", 1)) == R"("\u0000")");
  CHECK(quoted("\x01") == R"("\u0001")");
  CHECK(quoted("\b") == R"("\u0008")");
  CHECK(quoted("\f") == R"("\u000c")");
  CHECK(quoted("\x0B") == R"("\u000b")");
  CHECK(quoted("\x1F") == R"("\u001f")");
  CHECK(quoted("\x1B[0m") == R"("\u001b[0m")");
}

TEST_CASE("'<', '>' and '&' are escaped for HTML script blocks") {
  CHECK(quoted("<") == R"("\u003c")");
  CHECK(quoted(">") == R"("\u003e")");
  CHECK(quoted("&") == R"("\u0026")");
  CHECK(quoted("</script><!--") == R"("\u003c/script\u003e\u003c!--")");
}

TEST_CASE("U+2028 and U+2029 are escaped for JSONP") {
  CHECK(quoted("\xE2\x80\xA8") == R"("\u2028")");
  CHECK(quoted("\xE2\x80\xA9") == R"("\u2029")");
  CHECK(quoted("a\xE2\x80\xA8\xE2\x80\xA9z") == R"("a\u2028\u2029z")");
  CHECK(quoted("\xE2\x80\xA8x") == R"("\u2028x")");
}

TEST_CASE("neighbouring code points pass through as UTF-8") {
  CHECK(quoted("\xE2\x80\xA6") == "\"\xE2\x80\xA6\"");  // U+2026 ellipsis
  CHECK(quoted("\xE2\x80\xA7") == "\"\xE2\x80\xA7\"");  // U+2027
  CHECK(quoted("\xE2\x80\xAA") == "\"\xE2\x80\xAA\"");  // U+202A
  CHECK(quoted("\xE2\x82\xAC") == "\"\xE2\x82\xAC\"");  // U+20AC euro
  CHECK(quoted("\xC3\xA9t\xC3\xA9") == "\"\xC3\xA9t\xC3\xA9\"");
  CHECK(quoted("\xF0\x9F\x98\x80") == "\"\xF0\x9F\x98\x80\"");
}

TEST_CASE("every single code point that needs it is escaped and parses back") {
  for (unsigned c = 0; c < 0x80; ++c) {
    CAPTURE(c);
    const std::string text(1, static_cast<char>(c));
    const std::string lit = quoted(text);
    CHECK(parse_back(lit) == text);
    const std::string inner = lit.substr(1, lit.size() - 2);
    const bool must_escape = c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&';
    CHECK((inner != text) == must_escape);
  }
}

// Random valid UTF-8 biased towards the characters that need care.
std::string random_utf8(std::mt19937& rng, size_t length) {
  static const char* const kPieces[] = {"a",
                                        "Z",
                                        "0",
                                        " ",
                                        "\"",
                                        "\\",
                                        "/",
                                        "<",
                                        ">",
                                        "&",
                                        "\n",
                                        "\r",
                                        "\t",
                                        "\b",
                                        "\x01",
                                        "\x1F",
                                        "\x7F",
                                        "\xC3\xA9",
                                        "\xE2\x80\xA8",
                                        "\xE2\x80\xA9",
                                        "\xE2\x80\xA6",
                                        "\xE2\x82\xAC",
                                        "\xF0\x9F\x98\x80",
                                        "\xEF\xBF\xBF",
                                        "\xF4\x8F\xBF\xBF"};
  std::string out;
  for (size_t i = 0; i < length; ++i) out += kPieces[rng() % (sizeof kPieces / sizeof *kPieces)];
  return out;
}

TEST_CASE("escaped strings round-trip through a JSON parser and stay script-safe") {
  std::mt19937 rng(2024);
  for (int n = 0; n < 2000; ++n) {
    std::string text = random_utf8(rng, rng() % 24);
    if (n % 3 == 0) text.push_back('\0');  // embedded NULs survive too
    CAPTURE(text);
    const std::string lit = quoted(text);
    CHECK(parse_back(lit) == text);
    CHECK(is_valid_utf8(lit));
    CHECK(lit.find_first_of("<>&") == std::string::npos);
    CHECK(lit.find("\xE2\x80\xA8") == std::string::npos);
    CHECK(lit.find("\xE2\x80\xA9") == std::string::npos);
    for (char c : lit) CHECK(static_cast<unsigned char>(c) >= 0x20);
  }
}

}  // namespace
}  // namespace comet
