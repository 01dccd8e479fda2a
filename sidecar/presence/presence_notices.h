#pragma once
// The presence notices subscribers get (docs/protocol.md, "Notices to subscribers"),
// as JSON and as messages every transport can send like a bare (id-less) message.

#include <string>
#include <string_view>

#include "hub/message.h"

namespace comet {

/** Appends {"id":"7","info":{..}} ("{}" when `info_json` is empty). */
void append_member_json(std::string& out, std::string_view user, std::string_view info_json);

/** {"type":"join","ch":C,"member":{"id":..,"info":..}} */
std::string join_notice_json(std::string_view channel, std::string_view user,
                             std::string_view info_json);

/** {"type":"leave","ch":C,"member":{"id":..}} */
std::string leave_notice_json(std::string_view channel, std::string_view user);

/** {"type":"members","ch":C,"members":MEMBERS} with `members_array` a JSON array. */
std::string members_notice_json(std::string_view channel, std::string_view members_array);

/**
 * A notice as a message: id 0 (never stored, never moves a cursor), Message::notice
 * set, the JSON as envelope (WebSocket, /stream, /poll) and "event: comet-<type>\ndata:
 * JSON\n" as SSE body (both SSE formats). `type`: "join", "leave" or "members".
 */
MessagePtr make_presence_notice(std::string channel, std::string json, std::string_view type);

}  // namespace comet
