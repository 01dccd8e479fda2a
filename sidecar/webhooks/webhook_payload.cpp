#include "webhooks/webhook_payload.h"

#include <openssl/rand.h>

#include <random>

#include "util/json_escape.h"

namespace comet {

void append_webhook_event(std::string& out, const PresenceEvent& event) {
  const bool member =
      event.kind == PresenceEvent::kMemberAdded || event.kind == PresenceEvent::kMemberRemoved;
  out += "{\"name\":\"";
  out += presence_event_kind_name(event.kind);
  out += "\",\"channel\":";
  append_json_string(out, event.channel);
  if (member) {
    out += ",\"user_id\":";
    append_json_string(out, event.user);
  }
  // "{}" is how the registry says "no info": left out, like an absent one.
  if (event.kind == PresenceEvent::kMemberAdded && !event.info_json.empty() &&
      event.info_json != "{}") {
    out += ",\"info\":";
    append_json_script_safe(out, event.info_json);
  }
  out += ",\"time_ms\":";
  out += std::to_string(event.time_ms);
  out += '}';
}

std::string webhook_batch_body(int64_t time_ms, const std::vector<PresenceEvent>& events) {
  std::string out = "{\"time_ms\":" + std::to_string(time_ms) + ",\"events\":[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i != 0) out += ',';
    append_webhook_event(out, events[i]);
  }
  out += "]}";
  return out;
}

std::string new_webhook_batch_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // Never seen on Linux (getrandom backs both); the id must still differ per batch.
    std::random_device random;
    for (unsigned char& b : bytes) b = static_cast<unsigned char>(random());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (const unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

}  // namespace comet
