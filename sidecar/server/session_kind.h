#pragma once
// The kinds of session, counted per kind in /healthz and /metrics. Their names come
// from the transport table (transports/transport_table.h).

#include <cstddef>

namespace comet {

enum class SessionKind { kWebSocket, kSse, kStream, kPoll, kEcho, kPublish, kCount };
inline constexpr size_t kSessionKindCount = static_cast<size_t>(SessionKind::kCount);

/** The kind's name ("ws", "sse", ...), as the transport table gives it. */
const char* session_kind_name(SessionKind kind);

}  // namespace comet
