#pragma once
// The /poll answer, {"cursor":..,"messages":[..]} (JSON or JSONP), written by the held
// poll session and by the sessionless answer alike.

#include <string>
#include <string_view>

namespace comet {

/** Starts the body: the JSONP prefix, if any, and `{"cursor":"`. */
void begin_poll_body(std::string& body, std::string_view callback);
/** Between the cursor and the items: `","messages":[`. */
void begin_poll_messages(std::string& body);
/**
 * Ends the body: `]`, `fields` (more members of the answer object, each starting with
 * a comma: the presence "members"), `}` and the JSONP suffix, if any.
 */
void end_poll_body(std::string& body, std::string_view callback, std::string_view fields = {});
/** Appends the whole 200 response carrying `body` to `out`. */
void append_poll_response(std::string& out, std::string_view body, std::string_view callback,
                          std::string_view cors_headers, bool keep_alive);

}  // namespace comet
