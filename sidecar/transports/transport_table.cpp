#include "transports/transport_table.h"

#include "transports/transports.h"

namespace comet {
namespace {

// path, name, kind, switchable, is_publish, channels, last_event_id, close_after_error,
// check, start
constexpr TransportRow kTransports[] = {
    {"/ws", "ws", SessionKind::kWebSocket, true, false, ChannelParse::kOptional, false, true,
     check_websocket_upgrade, start_websocket},
    {"/sse", "sse", SessionKind::kSse, true, false, ChannelParse::kRequired, true, false, check_sse,
     start_sse},
    {"/stream", "stream", SessionKind::kStream, true, false, ChannelParse::kRequired, false, false,
     check_stream, start_stream},
    {"/poll", "poll", SessionKind::kPoll, true, false, ChannelParse::kRequired, false, false,
     check_poll, start_poll},
    {"", "echo", SessionKind::kEcho, false, false, ChannelParse::kNone, false, true,
     check_websocket_upgrade, start_ws_echo},
    {"/pub/", "publish", SessionKind::kPublish, false, true, ChannelParse::kNone, false, false,
     nullptr, start_publish},
};

// Every session kind has its row, so it has a name.
constexpr bool every_kind_has_a_row() {
  for (size_t k = 0; k < kSessionKindCount; ++k) {
    bool found = false;
    for (const TransportRow& row : kTransports) found = found || static_cast<size_t>(row.kind) == k;
    if (!found) return false;
  }
  return true;
}
static_assert(every_kind_has_a_row(), "a SessionKind without a row in kTransports");

}  // namespace

const char* session_kind_name(SessionKind kind) {
  for (const TransportRow& row : kTransports)
    if (row.kind == kind) return row.name;
  return "?";
}

const TransportRow* find_transport(std::string_view path, const Config& config) {
  for (const TransportRow& row : kTransports) {
    if (row.path.empty()) {
      if (!config.ws_echo_path.empty() && path == config.ws_echo_path) return &row;
    } else if (row.path.back() == '/' ? path.substr(0, row.path.size()) == row.path
                                      : path == row.path) {
      return &row;
    }
  }
  return nullptr;
}

bool method_allowed(const TransportRow& row, std::string_view method) {
  return row.is_publish ? method == "POST" || method == "PUT" : method == "GET";
}

bool transport_enabled(const TransportRow& row, const Config& config) {
  if (!row.switchable) return true;
  for (const std::string& name : config.transports)
    if (name == row.name) return true;
  return false;
}

std::string check_transport_names(const std::vector<std::string>& names) {
  std::string valid;
  for (const TransportRow& row : kTransports)
    if (row.switchable) valid += std::string(valid.empty() ? "" : ", ") + row.name;
  for (const std::string& name : names) {
    bool known = false;
    for (const TransportRow& row : kTransports)
      known = known || (row.switchable && name == row.name);
    if (!known)
      return "--transports: unknown transport '" + name.substr(0, 32) +
             "' (expected a comma-separated list of " + valid + ")";
  }
  return "";
}

}  // namespace comet
