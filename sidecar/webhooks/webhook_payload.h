#pragma once
// The JSON a webhook request carries (docs/protocol.md, "Webhooks"):
//   {"time_ms":T,"events":[{"name":"member_added","channel":C,"user_id":U,"info":{..},
//    "time_ms":t},...]}

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "presence/presence_events.h"

namespace comet {

/**
 * Appends one event object (its name from presence_event_kind_name). user_id only on member events;
 * info only on member_added when the member has some (`info_json` is a JSON object, inserted as it
 * is).
 */
void append_webhook_event(std::string& out, const PresenceEvent& event);

/** The request body for `events`, made at `time_ms` (wall clock, ms since 1970). */
std::string webhook_batch_body(int64_t time_ms, const std::vector<PresenceEvent>& events);

/** A new batch id: 32 lowercase hex digits from the OpenSSL random generator. */
std::string new_webhook_batch_id();

}  // namespace comet
