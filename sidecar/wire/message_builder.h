#pragma once
// Builds published messages with every wire rendering a transport sends (the JSON
// envelope, the SSE body and id line, the WebSocket frame header), once per message,
// so every subscriber on every transport shares the same bytes. Used by the buses
// (embedded and Redis), which create messages; the hub only stores and orders them.

#include "hub/message.h"

namespace comet {

/** Builds a message and all its renderings. `data` and `event` must be valid UTF-8. */
MessagePtr make_message(std::string channel, std::string epoch, uint64_t id, uint64_t prev_id,
                        std::string event, std::string data, int64_t published_ms,
                        int64_t origin_ms = 0);

}  // namespace comet
