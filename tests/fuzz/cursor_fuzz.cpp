// libFuzzer target: cursor, position and channel-name parsing (hub/cursor.h), and the
// query-string path a cursor takes to get there (http/query.h, util/percent_decode.h).
//
// The input is tried as a cursor ("chat:42@k3j9q2.17,news@.0"), a position, a channel
// name and a query string ("ch=chat&cursor=chat%3A42%40k3j9q2.17"), as
// transports/channel_request.cpp reads them. Checked:
//  * is_valid_channel_name agrees with a reference written from the grammar;
//  * a parsed position / cursor holds only what the grammar allows, and encoded again
//    (append_position / append_cursor_entry) parses to the same thing, and that
//    encoding is stable;
//  * a parse that fails for one entry fails for the whole cursor;
//  * percent_decode never yields NUL, and undoes a reference percent-encoding.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "http/query.h"
#include "hub/cursor.h"
#include "util/percent_decode.h"

namespace {

using comet::CursorEntry;
using comet::Position;
using comet::fuzz::escaped;

bool reference_channel_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("_.:/=+-").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

void check_position(const Position& p) {
  FUZZ_CHECK(p.epoch.size() <= 32);
  for (char c : p.epoch) {
    FUZZ_CHECK_MSG((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'),
                   escaped(p.epoch));
  }
  FUZZ_CHECK(!p.epoch.empty() || p.id == 0);
}

void check_position_text(std::string_view text) {
  Position p;
  if (!comet::parse_position(text, p)) return;
  check_position(p);
  std::string encoded;
  comet::append_position(encoded, p);
  Position again;
  FUZZ_CHECK_MSG(comet::parse_position(encoded, again), escaped(encoded));
  FUZZ_CHECK(again.epoch == p.epoch && again.id == p.id);
}

std::string encode(const std::vector<CursorEntry>& entries) {
  std::string out;
  for (const CursorEntry& e : entries) comet::append_cursor_entry(out, e.channel, e.position);
  return out;
}

void check_cursor_text(std::string_view text) {
  std::vector<CursorEntry> entries;
  const bool ok = comet::parse_cursor(text, entries);
  // Each comma-separated piece must parse as an entry on its own; any that does not
  // fails the whole cursor.
  bool pieces_ok = true;
  size_t pieces = 0;
  for (size_t start = 0; start <= text.size() && !text.empty();) {
    const size_t comma = text.find(',', start);
    const std::string_view piece = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const size_t at = piece.rfind('@');
    Position p;
    pieces_ok = pieces_ok && at != std::string_view::npos &&
                reference_channel_name(piece.substr(0, at)) &&
                comet::parse_position(piece.substr(at + 1), p);
    ++pieces;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  FUZZ_CHECK_MSG(ok == pieces_ok, escaped(text));
  if (!ok) return;
  FUZZ_CHECK(entries.size() == pieces);
  for (const CursorEntry& e : entries) {
    FUZZ_CHECK(comet::is_valid_channel_name(e.channel));
    check_position(e.position);
  }
  const std::string encoded = encode(entries);
  std::vector<CursorEntry> again;
  FUZZ_CHECK_MSG(comet::parse_cursor(encoded, again), escaped(encoded));
  FUZZ_CHECK(again.size() == entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    FUZZ_CHECK(again[i].channel == entries[i].channel);
    FUZZ_CHECK(again[i].position.epoch == entries[i].position.epoch);
    FUZZ_CHECK(again[i].position.id == entries[i].position.id);
  }
  FUZZ_CHECK(encode(again) == encoded);
}

std::string reference_percent_encode(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void check_percent_decode(std::string_view text) {
  for (bool plus_as_space : {false, true}) {
    std::string decoded;
    if (comet::percent_decode(text, decoded, plus_as_space)) {
      FUZZ_CHECK(decoded.find('\0') == std::string::npos);
      FUZZ_CHECK(decoded.size() <= text.size());
    } else {
      FUZZ_CHECK(decoded.empty());
    }
  }
  std::string decoded;
  const bool ok = comet::percent_decode(reference_percent_encode(text), decoded, true);
  FUZZ_CHECK(ok == (text.find('\0') == std::string_view::npos));
  if (ok) FUZZ_CHECK(decoded == text);
}

void check_query(std::string_view text) {
  comet::http::QueryParams params;
  if (!comet::http::QueryParams::parse(text, params)) return;
  for (const char* name : {"cursor", "ch", "since"}) {
    if (const std::string* value = params.get(name)) {
      FUZZ_CHECK(params.has(name));
      FUZZ_CHECK(value->find('\0') == std::string::npos);
      check_cursor_text(*value);
      check_position_text(*value);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  FUZZ_CHECK(comet::is_valid_channel_name(text) == reference_channel_name(text));
  check_position_text(text);
  check_cursor_text(text);
  check_percent_decode(text);
  check_query(text);
  return 0;
}
