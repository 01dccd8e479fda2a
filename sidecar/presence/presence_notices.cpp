#include "presence/presence_notices.h"

#include "util/json_escape.h"
#include "ws/frame_codec.h"

namespace comet {

void append_member_json(std::string& out, std::string_view user, std::string_view info_json) {
  out += "{\"id\":";
  append_json_string(out, user);
  out += ",\"info\":";
  // The info was checked (a compact JSON object) when the subscription was authorized.
  // It may hold any text the app took from its users: written script-safe, since the
  // iframe/htmlfile streams and JSONP run it as script.
  append_json_script_safe(out, info_json.empty() ? std::string_view("{}") : info_json);
  out += '}';
}

std::string join_notice_json(std::string_view channel, std::string_view user,
                             std::string_view info_json) {
  std::string out = "{\"type\":\"join\",\"ch\":";
  append_json_string(out, channel);
  out += ",\"member\":";
  append_member_json(out, user, info_json);
  out += '}';
  return out;
}

std::string leave_notice_json(std::string_view channel, std::string_view user) {
  std::string out = "{\"type\":\"leave\",\"ch\":";
  append_json_string(out, channel);
  out += ",\"member\":{\"id\":";
  append_json_string(out, user);
  out += "}}";
  return out;
}

std::string members_notice_json(std::string_view channel, std::string_view members_array) {
  std::string out = "{\"type\":\"members\",\"ch\":";
  append_json_string(out, channel);
  out += ",\"members\":";
  out += members_array;
  out += '}';
  return out;
}

MessagePtr make_presence_notice(std::string channel, std::string json, std::string_view type) {
  auto m = std::make_shared<Message>();
  m->channel = std::move(channel);
  m->notice = true;
  m->published_ms = monotonic_ms();
  m->sse_body.reserve(json.size() + 32);
  m->sse_body += "event: comet-";
  m->sse_body += type;
  m->sse_body += "\ndata: ";
  m->sse_body += json;  // one line: JSON text never holds a raw line break
  m->sse_body += '\n';
  m->envelope = std::move(json);
  m->ws_header_len = static_cast<uint8_t>(
      ws::encode_header(m->ws_header, ws::Opcode::kText, m->envelope.size(), true));
  return m;
}

}  // namespace comet
