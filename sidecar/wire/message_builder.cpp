#include "wire/message_builder.h"

#include <string_view>

#include "hub/cursor.h"
#include "util/json_escape.h"
#include "ws/frame_codec.h"

namespace comet {
namespace {

std::string render_envelope(const Message& m) {
  std::string out;
  out.reserve(m.data.size() + m.channel.size() + m.epoch.size() + m.event.size() + 64);
  out += "{\"ch\":";
  append_json_string(out, m.channel);
  if (m.id != 0) {
    out += ",\"id\":" + std::to_string(m.id) + ",\"prev\":" + std::to_string(m.prev_id);
    out += ",\"epoch\":";
    append_json_string(out, m.epoch);
  }
  if (!m.event.empty()) {
    out += ",\"event\":";
    append_json_string(out, m.event);
  }
  out += ",\"data\":";
  append_json_string(out, m.data);
  out += '}';
  return out;
}

// SSE data may not contain raw line breaks: each of CRLF, CR and LF starts a new
// "data:" line, and the browser joins them back with "\n".
std::string render_sse_body(const Message& m) {
  std::string out;
  out.reserve(m.data.size() + m.event.size() + 16);
  if (!m.event.empty()) out += "event: " + m.event + "\n";
  out += "data: ";
  const std::string_view d = m.data;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] == '\r') {
      if (i + 1 < d.size() && d[i + 1] == '\n') ++i;
      out += "\ndata: ";
    } else if (d[i] == '\n') {
      out += "\ndata: ";
    } else {
      out.push_back(d[i]);
    }
  }
  out += '\n';
  return out;
}

}  // namespace

MessagePtr make_message(std::string channel, std::string epoch, uint64_t id, uint64_t prev_id,
                        std::string event, std::string data, int64_t published_ms,
                        int64_t origin_ms) {
  auto m = std::make_shared<Message>();
  m->channel = std::move(channel);
  m->epoch = std::move(epoch);
  m->id = id;
  m->prev_id = prev_id;
  m->event = std::move(event);
  m->data = std::move(data);
  m->published_ms = published_ms;
  m->origin_ms = origin_ms;
  m->envelope = render_envelope(*m);
  m->sse_body = render_sse_body(*m);
  if (m->id != 0) {
    // Most streams carry one channel; their cursor after this message is the same for
    // every subscriber, so it is rendered here once instead of per delivery.
    m->sse_id = "id: " + m->channel + "@";
    append_position(m->sse_id, Position{m->epoch, m->id});
    m->sse_id += '\n';
  }
  m->ws_header_len = static_cast<uint8_t>(
      ws::encode_header(m->ws_header, ws::Opcode::kText, m->envelope.size(), true));
  return m;
}

}  // namespace comet
