#include "hub/cursor.h"

#include <charconv>

namespace comet {
namespace {
constexpr size_t kMaxChannelName = 128;
constexpr size_t kMaxEpoch = 32;

bool is_channel_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '/' || c == '=' || c == '+' || c == '-';
}
bool is_epoch_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

bool is_valid_channel_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxChannelName) return false;
  for (char c : name)
    if (!is_channel_char(c)) return false;
  return true;
}

bool is_valid_event_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

bool parse_position(std::string_view text, Position& out) {
  const size_t dot = text.rfind('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view epoch = text.substr(0, dot);
  const std::string_view id = text.substr(dot + 1);
  if (epoch.size() > kMaxEpoch || id.empty() || id[0] < '0' || id[0] > '9') return false;
  for (char c : epoch)
    if (!is_epoch_char(c)) return false;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
  if (ec != std::errc() || end != id.data() + id.size()) return false;
  // Only "before the first message" (".0") has no epoch.
  if (epoch.empty() && value != 0) return false;
  out.epoch.assign(epoch);
  out.id = value;
  return true;
}

void append_position(std::string& out, const Position& p) {
  out += p.epoch;
  out += '.';
  out += std::to_string(p.id);
}

bool parse_cursor(std::string_view text, std::vector<CursorEntry>& out) {
  out.clear();
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view entry = text.substr(0, comma);
    if (comma == text.size() - 1) return false;  // a trailing comma is malformed
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t at = entry.rfind('@');
    if (at == std::string_view::npos) return false;
    CursorEntry parsed;
    parsed.channel.assign(entry.substr(0, at));
    if (!is_valid_channel_name(parsed.channel)) return false;
    if (!parse_position(entry.substr(at + 1), parsed.position)) return false;
    out.push_back(std::move(parsed));
  }
  return true;
}

void append_cursor_entry(std::string& out, std::string_view channel, const Position& p) {
  if (!out.empty()) out += ',';
  out += channel;
  out += '@';
  append_position(out, p);
}

}  // namespace comet
