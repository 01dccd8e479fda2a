#include "hub/cursor.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace comet {
namespace {

std::string position_text(const Position& p) {
  std::string out;
  append_position(out, p);
  return out;
}

TEST_CASE("channel names: 1-128 bytes of the allowed characters") {
  CHECK(is_valid_channel_name("a"));
  CHECK(is_valid_channel_name("chat:42"));
  CHECK(is_valid_channel_name("A-Z_a.z/0=9+x:y"));
  CHECK(is_valid_channel_name(std::string(128, 'c')));
  CHECK_FALSE(is_valid_channel_name(std::string(129, 'c')));
  CHECK_FALSE(is_valid_channel_name(""));
  for (const char* bad : {"a,b", "a@b", "a b", "a\tb", "a?b", "a#b", "a%20", "a&b", "a\"b", "a\\b",
                          "a*b", "\xC3\xA9", "a\nb"}) {
    CAPTURE(bad);
    CHECK_FALSE(is_valid_channel_name(bad));
  }
  CHECK_FALSE(is_valid_channel_name(std::string_view("a\0b", 3)));
}

TEST_CASE("parse_position reads EPOCH.ID") {
  Position p;
  REQUIRE(parse_position("k3j9q2m1x0aa.17", p));
  CHECK(p.epoch == "k3j9q2m1x0aa");
  CHECK(p.id == 17);
  REQUIRE(parse_position(".0", p));  // before the channel's first message
  CHECK(p.epoch.empty());
  CHECK(p.id == 0);
  REQUIRE(parse_position("E.18446744073709551615", p));
  CHECK(p.id == UINT64_MAX);
  REQUIRE(parse_position(std::string(32, 'Z') + ".1", p));
  CHECK(p.epoch.size() == 32);
}

TEST_CASE("parse_position rejects malformed positions and leaves the output alone") {
  for (const char* bad :
       {"", ".", "E", "E.", "17", "E.x", "E.1x", "E.-1", "E.+1", "E. 1", "E.1 ", "e-1.1", "a.b.1",
        "E_1.2", "E.18446744073709551616", "E.99999999999999999999", "\xC3\xA9.1", "E:1", "E@1"}) {
    CAPTURE(bad);
    Position p{"keep", 9};
    CHECK_FALSE(parse_position(bad, p));
    CHECK(p.epoch == "keep");
    CHECK(p.id == 9);
  }
  Position p;
  CHECK_FALSE(parse_position(std::string(33, 'Z') + ".1", p));
}

TEST_CASE("append_position writes EPOCH.ID") {
  CHECK(position_text(Position{"abc", 5}) == "abc.5");
  CHECK(position_text(Position{}) == ".0");
  CHECK(position_text(Position{"E", UINT64_MAX}) == "E.18446744073709551615");
  std::string out = "x@";
  append_position(out, Position{"E", 1});
  CHECK(out == "x@E.1");
}

TEST_CASE("parse_cursor reads the documented example") {
  std::vector<CursorEntry> entries;
  REQUIRE(parse_cursor("chat:42@k3j9q2m1x0aa.17,news@.0", entries));
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].channel == "chat:42");
  CHECK(entries[0].position.epoch == "k3j9q2m1x0aa");
  CHECK(entries[0].position.id == 17);
  CHECK(entries[1].channel == "news");
  CHECK(entries[1].position.epoch.empty());
  CHECK(entries[1].position.id == 0);
}

TEST_CASE("parse_cursor accepts channel names with dots and an empty cursor") {
  std::vector<CursorEntry> entries;
  REQUIRE(parse_cursor("a.b/c=d+e-f_g:h@E.3", entries));
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].channel == "a.b/c=d+e-f_g:h");
  CHECK(entries[0].position.id == 3);

  entries.push_back(CursorEntry{});
  REQUIRE(parse_cursor("", entries));
  CHECK(entries.empty());  // the output is replaced, not appended to
}

TEST_CASE("parse_cursor rejects any malformed entry") {
  for (const char* bad :
       {"a", "a@", "@E.1", "a@E", "a@E.x", "a@b@E.1", "a b@E.1", ",a@E.1", "a@E.1,,b@E.1",
        "a@E.1,b", "a@E.1;b@E.2", "a@E.1,@.0", "a@E.-1", "a%2C@E.1"}) {
    CAPTURE(bad);
    std::vector<CursorEntry> entries;
    CHECK_FALSE(parse_cursor(bad, entries));
  }
  std::vector<CursorEntry> entries;
  CHECK_FALSE(parse_cursor(std::string(129, 'c') + "@E.1", entries));
  CHECK(parse_cursor(std::string(128, 'c') + "@E.1", entries));
}

TEST_CASE("append_cursor_entry builds a cursor that parses back") {
  std::string cursor;
  append_cursor_entry(cursor, "chat:42", Position{"k3j9q2m1x0aa", 17});
  CHECK(cursor == "chat:42@k3j9q2m1x0aa.17");
  append_cursor_entry(cursor, "news", Position{});
  CHECK(cursor == "chat:42@k3j9q2m1x0aa.17,news@.0");
  append_cursor_entry(cursor, "x.y", Position{"Z9", 123456789012345ull});

  std::vector<CursorEntry> entries;
  REQUIRE(parse_cursor(cursor, entries));
  REQUIRE(entries.size() == 3);
  CHECK(entries[2].channel == "x.y");
  CHECK(entries[2].position.epoch == "Z9");
  CHECK(entries[2].position.id == 123456789012345ull);

  std::string again;
  for (const CursorEntry& e : entries) append_cursor_entry(again, e.channel, e.position);
  CHECK(again == cursor);
}

}  // namespace
}  // namespace comet
