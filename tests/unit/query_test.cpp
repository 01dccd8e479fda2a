#include "http/query.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace comet::http {
namespace {

TEST_CASE("percent_decode decodes escapes in either case") {
  std::string out;
  CHECK(percent_decode("a%3Ab%3ac", out, false));
  CHECK(out == "a:b:c");
  CHECK(percent_decode("%E2%82%AC", out, false));
  CHECK(out == "\xE2\x82\xAC");
  CHECK(percent_decode("", out, false));
  CHECK(out.empty());
  CHECK(percent_decode("plain/path", out, false));
  CHECK(out == "plain/path");
}

TEST_CASE("percent_decode treats '+' as space only when asked") {
  std::string out;
  CHECK(percent_decode("a+b", out, false));
  CHECK(out == "a+b");
  CHECK(percent_decode("a+b", out, true));
  CHECK(out == "a b");
  CHECK(percent_decode("a%2Bb", out, true));
  CHECK(out == "a+b");
}

TEST_CASE("percent_decode rejects malformed escapes and NUL") {
  std::string out = "stale";
  CHECK_FALSE(percent_decode("%G1", out, false));
  CHECK(out.empty());
  CHECK_FALSE(percent_decode("%1G", out, false));
  CHECK_FALSE(percent_decode("abc%4", out, false));
  CHECK_FALSE(percent_decode("abc%", out, false));
  CHECK_FALSE(percent_decode("%", out, false));
  CHECK_FALSE(percent_decode("a%00b", out, false));
  CHECK_FALSE(percent_decode(std::string_view("a\0b", 3), out, false));
  // A valid escape right at the end is fine.
  CHECK(percent_decode("abc%41", out, false));
  CHECK(out == "abcA");
}

TEST_CASE("QueryParams parses names, values, flags and '+'") {
  QueryParams q;
  REQUIRE(QueryParams::parse("a=1&b&c=x%20y+z", q));
  REQUIRE(q.get("a") != nullptr);
  CHECK(*q.get("a") == "1");
  CHECK(q.has("b"));
  REQUIRE(q.get("b") != nullptr);
  CHECK(q.get("b")->empty());
  REQUIRE(q.get("c") != nullptr);
  CHECK(*q.get("c") == "x y z");
  CHECK_FALSE(q.has("d"));
  CHECK(q.get("d") == nullptr);
  CHECK(q.get("A") == nullptr);  // Names are case-sensitive.
}

TEST_CASE("QueryParams ignores empty pieces and keeps empty values") {
  QueryParams q;
  REQUIRE(QueryParams::parse("&&a=&&b=2&", q));
  CHECK(q.has("a"));
  CHECK(*q.get("a") == "");
  CHECK(*q.get("b") == "2");
  CHECK_FALSE(q.has(""));

  REQUIRE(QueryParams::parse("", q));
  CHECK_FALSE(q.has("a"));
}

TEST_CASE("QueryParams returns the first of repeated keys") {
  QueryParams q;
  REQUIRE(QueryParams::parse("ch=a&ch=b&ch=c", q));
  CHECK(*q.get("ch") == "a");
}

TEST_CASE("QueryParams decodes names and keeps '=' inside values") {
  QueryParams q;
  REQUIRE(QueryParams::parse("my+key=v%3D1=2&ch=a%3Ab", q));
  REQUIRE(q.get("my key") != nullptr);
  CHECK(*q.get("my key") == "v=1=2");
  CHECK(*q.get("ch") == "a:b");
}

TEST_CASE("QueryParams fails on malformed escapes and drops partial results") {
  QueryParams q;
  REQUIRE(QueryParams::parse("x=1", q));
  CHECK_FALSE(QueryParams::parse("a=1&b=%ZZ", q));
  CHECK_FALSE(q.has("a"));
  CHECK_FALSE(q.has("x"));
  CHECK_FALSE(QueryParams::parse("a%=1", q));
  CHECK_FALSE(QueryParams::parse("a=%4", q));
  CHECK_FALSE(QueryParams::parse("a=%00", q));
}

TEST_CASE("split_list splits, trims and drops empty items") {
  using V = std::vector<std::string_view>;
  CHECK(split_list("a,b,c", ',') == V{"a", "b", "c"});
  CHECK(split_list(" a , b\t,c ", ',') == V{"a", "b", "c"});
  CHECK(split_list(",,a,, ,b,", ',') == V{"a", "b"});
  CHECK(split_list("", ',').empty());
  CHECK(split_list("  ", ',').empty());
  CHECK(split_list("single", ',') == V{"single"});
  CHECK(split_list("a b;c", ';') == V{"a b", "c"});
}

}  // namespace
}  // namespace comet::http
