#include "transports/channel_request.h"

#include <algorithm>

namespace comet {

std::string parse_channel_request(const http::Request& request, const http::QueryParams& query,
                                  const Config& config, bool honour_last_event_id,
                                  ChannelRequest& out) {
  out = ChannelRequest{};
  std::vector<CursorEntry> cursor;
  const std::string* cursor_text = query.get("cursor");
  const std::string* last_event_id =
      honour_last_event_id ? request.header("last-event-id") : nullptr;
  if (last_event_id != nullptr && !last_event_id->empty()) cursor_text = last_event_id;
  if (cursor_text != nullptr && !cursor_text->empty() && !parse_cursor(*cursor_text, cursor))
    return "malformed cursor (expected channel@epoch.id[,channel@epoch.id...])";

  if (const std::string* ch = query.get("ch")) {
    for (std::string_view name : http::split_list(*ch, ',')) {
      if (!is_valid_channel_name(name))
        return "invalid channel name '" + std::string(name.substr(0, 128)) +
               "' (1-128 characters of A-Z a-z 0-9 _ . : / = + -)";
      if (std::find(out.channels.begin(), out.channels.end(), name) == out.channels.end())
        out.channels.emplace_back(name);
    }
  } else {
    for (const CursorEntry& entry : cursor)
      if (std::find(out.channels.begin(), out.channels.end(), entry.channel) == out.channels.end())
        out.channels.push_back(entry.channel);
  }
  if (out.channels.empty()) return "no channel given (use ch=name[,name...])";
  if (out.channels.size() > config.max_channels)
    return "too many channels: " + std::to_string(out.channels.size()) + " (max-channels is " +
           std::to_string(config.max_channels) + ")";

  out.from.resize(out.channels.size());
  for (const CursorEntry& entry : cursor) {
    auto it = std::find(out.channels.begin(), out.channels.end(), entry.channel);
    if (it != out.channels.end()) out.from[it - out.channels.begin()] = entry.position;
  }
  return "";
}

bool is_valid_callback_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  bool at_start = true;
  for (char c : name) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
    const bool digit = c >= '0' && c <= '9';
    if (c == '.') {
      if (at_start) return false;
      at_start = true;
      continue;
    }
    if (at_start ? !letter : !(letter || digit)) return false;
    at_start = false;
  }
  return !at_start;
}

}  // namespace comet
