// libFuzzer target: the Redis payload formats (bridge/redis_payload.h).
//
// The input is used twice:
//  * as a pub/sub payload received on comet:{chat:42} ("comet/1 {json}" or a bare message),
//    given to parse_pubsub_payload;
//  * as the RESP bytes of a reply, read with hiredis's own reader as the bridge does,
//    and given to parse_history_reply.
// Every message either produces is checked the way subscribers will read it: its event
// name is one HTTP publishing would accept; the JSON envelope parses back to the
// message's fields and holds none of the characters that must stay escaped for HTML and
// JSONP; the SSE body, read by the EventSource rules (CR, LF and CRLF end a line), yields
// exactly the message's event and data and no other field or blank line; the SSE id line
// is the message's cursor; the WebSocket header frames the envelope.

#include <hiredis/hiredis.h>
#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/redis_payload.h"
#include "fuzz_support.h"
#include "hub/cursor.h"
#include "ws/frame_codec.h"

namespace {

using comet::Message;
using comet::fuzz::escaped;

constexpr std::string_view kChannel = "chat:42";
constexpr int64_t kWallNowMs = 1700000000000;
constexpr int64_t kMonoNowMs = 5000000;

std::string describe(const Message& m) {
  return "id=" + std::to_string(m.id) + " prev=" + std::to_string(m.prev_id) +
         " epoch=" + escaped(m.epoch) + " event=" + escaped(m.event) + " data=" + escaped(m.data) +
         "\nsse_body=" + escaped(m.sse_body) + "\nenvelope=" + escaped(m.envelope);
}

// Data with CRLF and lone CR turned into LF: what EventSource hands the page.
std::string normalize_line_breaks(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
      out += '\n';
    } else {
      out += s[i];
    }
  }
  return out;
}

// Reads an SSE block as the HTML standard's event-stream interpretation does, and
// checks it yields exactly the message's event and data.
void check_sse_body(const Message& m) {
  const std::string_view body = m.sse_body;
  FUZZ_CHECK_MSG(!body.empty() && body.back() == '\n', describe(m));
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r' || body[i] == '\n') {
      lines.push_back(body.substr(start, i - start));
      if (body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  FUZZ_CHECK_MSG(start == body.size(), describe(m));
  std::string event, data;
  bool have_event = false, have_data = false;
  for (std::string_view line : lines) {
    // A blank line would dispatch the event early; the rest would start another one.
    FUZZ_CHECK_MSG(!line.empty(), "blank line in the SSE body: " + describe(m));
    const size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    if (field == "event") {
      FUZZ_CHECK_MSG(!have_event, "two event lines: " + describe(m));
      have_event = true;
      event.assign(value);
    } else if (field == "data") {
      if (have_data) data += '\n';
      have_data = true;
      data.append(value);
    } else {
      FUZZ_CHECK_MSG(false, "unexpected SSE field \"" + escaped(field) + "\": " + describe(m));
    }
  }
  FUZZ_CHECK_MSG(have_data, describe(m));
  FUZZ_CHECK_MSG(event == m.event, "SSE event differs: " + describe(m));
  FUZZ_CHECK_MSG(data == normalize_line_breaks(m.data), "SSE data differs: " + describe(m));
}

void check_envelope(const Message& m) {
  FUZZ_CHECK_MSG(comet::fuzz::reference_utf8(m.envelope), describe(m));
  // Escaped for HTML <script> and JSONP (util/json_escape.h).
  FUZZ_CHECK_MSG(m.envelope.find_first_of("<>&") == std::string::npos, describe(m));
  FUZZ_CHECK_MSG(m.envelope.find("\xe2\x80\xa8") == std::string::npos &&
                     m.envelope.find("\xe2\x80\xa9") == std::string::npos,
                 describe(m));
  rapidjson::Document doc;
  doc.Parse(m.envelope.data(), m.envelope.size());
  FUZZ_CHECK_MSG(!doc.HasParseError() && doc.IsObject(), describe(m));
  auto text = [&](const char* name) {
    if (!doc.HasMember(name) || !doc[name].IsString()) return std::string("<absent>");
    return std::string(doc[name].GetString(), doc[name].GetStringLength());
  };
  FUZZ_CHECK(text("ch") == m.channel);
  FUZZ_CHECK_MSG(text("data") == m.data, describe(m));
  FUZZ_CHECK(text("event") == (m.event.empty() ? "<absent>" : m.event));
  if (m.id != 0) {
    FUZZ_CHECK(text("epoch") == m.epoch);
    FUZZ_CHECK(doc.HasMember("id") && doc["id"].IsUint64() && doc["id"].GetUint64() == m.id);
    FUZZ_CHECK(doc.HasMember("prev") && doc["prev"].IsUint64() &&
               doc["prev"].GetUint64() == m.prev_id);
  } else {
    FUZZ_CHECK(!doc.HasMember("id") && !doc.HasMember("epoch"));
  }
}

// docs/protocol.md: an event name is 1-64 of A-Z a-z 0-9 _ - . : (or none).
bool reference_event_name(std::string_view name) {
  if (name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

void check_message(const Message& m) {
  FUZZ_CHECK(m.channel == kChannel);
  FUZZ_CHECK_MSG(comet::fuzz::reference_utf8(m.data), describe(m));
  FUZZ_CHECK_MSG(comet::fuzz::reference_utf8(m.event), describe(m));
  check_sse_body(m);
  // Stricter than what SSE framing needs: what HTTP publishing accepts.
  FUZZ_CHECK_MSG(reference_event_name(m.event), describe(m));
  check_envelope(m);
  // parse_history_reply takes the epoch from Redis and lets it be empty (history.lua
  // never returns entries then); such an entry's cursor cannot be parsed back.
  if (m.id != 0 && !m.epoch.empty()) {
    std::vector<comet::CursorEntry> cursor;
    FUZZ_CHECK(m.sse_id.size() > 5 && m.sse_id.compare(0, 4, "id: ") == 0 &&
               m.sse_id.back() == '\n');
    FUZZ_CHECK_MSG(
        comet::parse_cursor(std::string_view(m.sse_id).substr(4, m.sse_id.size() - 5), cursor),
        describe(m));
    FUZZ_CHECK(cursor.size() == 1 && cursor[0].channel == m.channel &&
               cursor[0].position.epoch == m.epoch && cursor[0].position.id == m.id);
  } else if (m.id == 0) {
    FUZZ_CHECK(m.sse_id.empty());
  }
  uint8_t header[10];
  const size_t len = comet::ws::encode_header(header, comet::ws::Opcode::kText, m.envelope.size());
  FUZZ_CHECK(len == m.ws_header_len &&
             std::string_view(reinterpret_cast<char*>(header), len) ==
                 std::string_view(reinterpret_cast<const char*>(m.ws_header), m.ws_header_len));
}

void check_pubsub(std::string_view payload) {
  std::string error;
  const comet::MessagePtr m =
      comet::parse_pubsub_payload(kChannel, payload, kWallNowMs, kMonoNowMs, error);
  if (m == nullptr) {
    FUZZ_CHECK(!error.empty());
    return;
  }
  check_message(*m);
  if (payload.substr(0, 8) != "comet/1 ") {
    FUZZ_CHECK(m->id == 0 && m->epoch.empty() && m->event.empty() && m->data == payload);
    return;
  }
  FUZZ_CHECK(m->id != 0 && m->prev_id < m->id);
  comet::Position p;
  FUZZ_CHECK_MSG(!m->epoch.empty() && comet::parse_position(m->epoch + ".1", p), describe(*m));
  FUZZ_CHECK(m->published_ms <= kMonoNowMs);
}

// hiredis 0.14 allocates an array reply's element table from the count in its header,
// before any element arrives: "*300000000\r\n" costs 2.4 GB. Redis never sends that, so
// such inputs are not tried as replies.
bool has_huge_array_count(std::string_view resp) {
  for (size_t i = resp.find('*'); i != std::string_view::npos; i = resp.find('*', i + 1)) {
    uint64_t count = 0;
    for (size_t j = i + 1; j < resp.size() && resp[j] >= '0' && resp[j] <= '9'; ++j) {
      count = count * 10 + static_cast<uint64_t>(resp[j] - '0');
      if (count > 4096) return true;
    }
  }
  return false;
}

void check_history(std::string_view resp) {
  if (has_huge_array_count(resp)) return;
  redisReader* reader = redisReaderCreate();
  FUZZ_CHECK(reader != nullptr);
  void* reply = nullptr;
  if (redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK &&
      redisReaderGetReply(reader, &reply) == REDIS_OK && reply != nullptr) {
    comet::HistoryReply history;
    std::string error;
    if (comet::parse_history_reply(kChannel, static_cast<const redisReply*>(reply), kWallNowMs,
                                   kMonoNowMs, history, error)) {
      comet::Position p;
      FUZZ_CHECK(history.epoch.empty() || comet::parse_position(history.epoch + ".1", p));
      for (const comet::MessagePtr& m : history.entries) {
        FUZZ_CHECK(m != nullptr);
        FUZZ_CHECK(m->epoch == history.epoch);
        check_message(*m);
      }
    } else {
      FUZZ_CHECK(!error.empty());
    }
  }
  if (reply != nullptr) freeReplyObject(reply);
  redisReaderFree(reader);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  check_pubsub(data);
  check_history(data);
  return 0;
}
