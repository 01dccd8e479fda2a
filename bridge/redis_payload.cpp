#include "bridge/redis_payload.h"

#include <hiredis/hiredis.h>
#include <rapidjson/document.h>

#include <charconv>
#include <chrono>

#include "bridge/redis_reply.h"
#include "hub/cursor.h"
#include "util/utf8.h"
#include "wire/message_builder.h"

namespace comet {
namespace {

constexpr std::string_view kPayloadPrefix = "comet/1 ";

int64_t to_monotonic(int64_t published_wall_ms, int64_t wall_now_ms, int64_t mono_now_ms) {
  if (published_wall_ms <= 0) return mono_now_ms;
  const int64_t age = wall_now_ms - published_wall_ms;
  return mono_now_ms - (age > 0 ? age : 0);
}

bool to_u64(std::string_view text, uint64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool valid_epoch(std::string_view epoch) {
  Position p;
  return !epoch.empty() && parse_position(std::string(epoch) + ".0", p);
}

}  // namespace

int64_t wall_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string redis_pubsub_name(std::string_view channel) {
  std::string name = "comet:{";
  name.append(channel);
  name += '}';
  return name;
}

std::string channel_from_pubsub_name(std::string_view name) {
  constexpr std::string_view kPrefix = "comet:{";
  if (name.size() <= kPrefix.size() + 1 || name.substr(0, kPrefix.size()) != kPrefix ||
      name.back() != '}')
    return "";
  return std::string(name.substr(kPrefix.size(), name.size() - kPrefix.size() - 1));
}

MessagePtr parse_pubsub_payload(std::string_view channel, std::string_view payload,
                                int64_t wall_now_ms, int64_t mono_now_ms, std::string& error) {
  if (payload.substr(0, kPayloadPrefix.size()) != kPayloadPrefix) {
    if (!is_valid_utf8(payload)) {
      error = "bare payload is not valid UTF-8";
      return nullptr;
    }
    return make_message(std::string(channel), "", 0, 0, "", std::string(payload), mono_now_ms);
  }
  const std::string_view json = payload.substr(kPayloadPrefix.size());
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    error = "comet/1 payload is not a JSON object";
    return nullptr;
  }
  auto get_u64 = [&](const char* name, uint64_t& out) {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd()) return false;
    if (it->value.IsUint64()) {
      out = it->value.GetUint64();
      return true;
    }
    // Lua's cjson writes numbers as doubles; whole ones are fine.
    if (it->value.IsDouble() && it->value.GetDouble() >= 0 && it->value.GetDouble() < 9e15) {
      out = static_cast<uint64_t>(it->value.GetDouble());
      return static_cast<double>(out) == it->value.GetDouble();
    }
    return false;
  };
  auto get_string = [&](const char* name, std::string& out) {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd()) return true;  // optional
    if (!it->value.IsString()) return false;
    out.assign(it->value.GetString(), it->value.GetStringLength());
    return true;
  };
  uint64_t id = 0, prev = 0, ts = 0;
  std::string epoch, event, data;
  if (!get_u64("id", id) || id == 0 || !get_u64("prev", prev) || prev >= id) {
    error = "comet/1 payload needs integer id > prev >= 0";
    return nullptr;
  }
  get_u64("ts", ts);
  if (!get_string("epoch", epoch) || !valid_epoch(epoch) || !get_string("event", event) ||
      !get_string("data", data)) {
    error = "comet/1 payload has a bad epoch, event or data field";
    return nullptr;
  }
  // The event is written raw on an SSE `event:` line: the same names as HTTP publishing
  // allows, or a publisher writing to Redis directly could inject SSE lines (a forged id).
  if (!event.empty() && !is_valid_event_name(event)) {
    error = "comet/1 payload has an invalid event name (1-64 of A-Z a-z 0-9 _ - . :)";
    return nullptr;
  }
  if (!is_valid_utf8(data) || !is_valid_utf8(event)) {
    error = "message data is not valid UTF-8";
    return nullptr;
  }
  return make_message(
      std::string(channel), std::move(epoch), id, prev, std::move(event), std::move(data),
      to_monotonic(static_cast<int64_t>(ts), wall_now_ms, mono_now_ms), static_cast<int64_t>(ts));
}

bool parse_history_reply(std::string_view channel, const redisReply* reply, int64_t wall_now_ms,
                         int64_t mono_now_ms, HistoryReply& out, std::string& error) {
  out = HistoryReply{};
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
      reply->element[2]->type != REDIS_REPLY_ARRAY) {
    error = "history reply is not {epoch, head, entries}";
    return false;
  }
  out.epoch.assign(reply_text(reply->element[0]));
  if (!out.epoch.empty() && !valid_epoch(out.epoch)) {
    error = "history reply has a malformed epoch";
    return false;
  }
  const redisReply* head = reply->element[1];
  if (head->type != REDIS_REPLY_INTEGER || head->integer < 0) {
    error = "history reply has a bad head id";
    return false;
  }
  out.head = static_cast<uint64_t>(head->integer);
  const redisReply* entries = reply->element[2];
  for (size_t i = 0; i < entries->elements; ++i) {
    const redisReply* e = entries->element[i];
    uint64_t id = 0, prev = 0, ts = 0;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 5 ||
        !to_u64(reply_text(e->element[0]), id) || !to_u64(reply_text(e->element[3]), prev)) {
      error = "history entry is not {id, data, event, prev, ts}";
      return false;
    }
    to_u64(reply_text(e->element[4]), ts);
    const std::string_view data = reply_text(e->element[1]);
    const std::string_view event = reply_text(e->element[2]);
    // Never stored by our script (which is checked before it runs): skipped like above.
    if (!is_valid_utf8(data) || (!event.empty() && !is_valid_event_name(event))) continue;
    out.entries.push_back(make_message(
        std::string(channel), out.epoch, id, prev, std::string(event), std::string(data),
        to_monotonic(static_cast<int64_t>(ts), wall_now_ms, mono_now_ms),
        static_cast<int64_t>(ts)));
  }
  return true;
}

}  // namespace comet
