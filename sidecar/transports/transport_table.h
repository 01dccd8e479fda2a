#pragma once
// The transport table: one row per endpoint that every transport-wide concern reads —
// the router (path, methods, 405 and preflight answers), --transports, the session
// names and per-kind counters, and the pipeline's steps (which channels to parse, the
// transport's own check, its start). Adding a transport = its file + one row (+ a
// SessionKind when it is a new kind of session, + docs).

#include <string_view>

#include "config/config.h"
#include "server/session_kind.h"
#include "transports/channel_request.h"
#include "transports/request_context.h"

namespace comet {

/** Which channels the pipeline parses before starting the transport. */
enum class ChannelParse {
  kNone,      // not a subscribing endpoint (publish, echo)
  kRequired,  // ch= or a cursor must name at least one channel
  kOptional,  // parsed when given (WebSocket subscribes by command too)
};

struct TransportRow {
  std::string_view path;  // exact path; a prefix when it ends in '/'; "" = --ws-echo-path
  const char* name;       // --transports name and counter label ("ws", "sse", ...)
  SessionKind kind;
  bool switchable;  // can be turned off with --transports
  bool is_publish;  // POST/PUT (publish) rather than GET (subscribe)
  ChannelParse channels;
  bool last_event_id;      // the Last-Event-ID header may carry the cursor (EventSource)
  bool close_after_error;  // upgrade endpoints: an error answer ends the connection
  Refusal (*check)(const RequestContext&);  // the transport's own parameters (optional)
  bool (*start)(RequestContext&, const ChannelRequest&);
};

/** The row serving `path`, or nullptr (then it is a static file or unknown). */
const TransportRow* find_transport(std::string_view path, const Config& config);

/** Whether `row` takes `method`: POST or PUT to publish, GET to subscribe. */
bool method_allowed(const TransportRow& row, std::string_view method);

/** Whether --transports leaves `row` on (rows that are not switchable always are). */
bool transport_enabled(const TransportRow& row, const Config& config);

/**
 * Checks a --transports list against the table: "" or a message naming the
 * unknown entry and the valid ones.
 */
std::string check_transport_names(const std::vector<std::string>& names);

}  // namespace comet
