#include "transports/poll_now.h"

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include "hub/hub.h"
#include "presence/presence_registry.h"
#include "transports/poll_answer.h"
#include "util/clock.h"

namespace comet {
namespace {

using HistoryIt = std::deque<MessagePtr>::const_iterator;

struct ChannelAnswer {
  const std::string* name;
  const Channel* channel;  // null: no message on it yet
  uint64_t position;       // where the client is; advanced over the messages it gets
  HistoryIt first, last;   // the messages it gets
};

/**
 * Where a subscriber starting at `from` would be, when the hub can judge it without a
 * reset or a read of Redis; false otherwise. Mirrors Hub::subscribe/position_subscriber.
 */
bool position_now(const Hub& hub, const Channel* ch, const std::optional<Position>& from,
                  uint64_t& position) {
  const bool fresh = !from || (from->epoch.empty() && from->id == 0);
  if (ch != nullptr && ch->syncing()) return false;
  if (ch == nullptr || ch->epoch().empty()) {
    // No message yet on this worker. With the embedded bus that is the channel's state
    // (the session would answer "@.0" as well); with Redis only a sync can tell. A
    // cursor naming an epoch gets a reset.
    position = 0;
    return !hub.has_observer() && fresh;
  }
  // With Redis a channel is followed live only while this worker has a subscriber on
  // it; otherwise its state here may be stale and only a sync can tell.
  if (hub.has_observer() && ch->subscriber_count() == 0) return false;
  if (!from)
    position = ch->last_id();
  else if (from->epoch.empty() && from->id == 0)
    position = 0;  // "@.0": continues in the current epoch
  else if (from->epoch == ch->epoch())
    position = from->id;
  else
    return false;  // epoch-changed reset
  // Ahead of the hub (a read of Redis decides), or older than the history (a reset).
  return position <= ch->last_id() && position >= ch->oldest_id() - 1;
}

}  // namespace

bool answer_poll_now(RequestContext& ctx, const ChannelRequest& channels, std::string_view callback,
                     bool wait) {
  const size_t n = channels.channels.size();
  if (n == 0) return false;
  // Presence channels: the poller is a member while held and for the grace after (the
  // session's subscriptions do that), and the answer carries "members".
  for (const std::string& name : channels.channels)
    if (is_presence_channel(name)) return false;
  const Config& config = ctx.config();
  // A held poll would withhold what is past its authorization's grace: the session knows how.
  if (ctx.private_until_ms != 0 && wall_clock_ms() - ctx.private_until_ms >= config.token_grace_ms)
    return false;
  Hub& hub = ctx.worker.hub;
  // Per-worker scratch (each worker is one thread): no allocation once warm.
  thread_local std::vector<ChannelAnswer> answers;
  thread_local std::string body;
  thread_local std::string response;
  answers.clear();
  bool any_message = false;
  for (size_t i = 0; i < n; ++i) {
    // parse_channel_request has dropped repeated names: each channel comes once.
    const std::string& name = channels.channels[i];
    const Channel* ch = hub.find_trimmed(name);
    uint64_t position = 0;
    if (!position_now(hub, ch, channels.from[i], position)) return false;
    if (ch != nullptr && ch->epoch().empty()) ch = nullptr;
    answers.push_back(ChannelAnswer{&name, ch, position, {}, {}});
    any_message = any_message || (ch != nullptr && position < ch->last_id());
  }
  if (!any_message && wait) return false;  // a long-poll that waits: the session holds it

  // As the session's replay: channel after channel, each message counted before it is
  // taken, until half of max-output-bytes is passed (the message crossing it included).
  const size_t budget = config.max_output_bytes / 2;
  size_t bytes = 0;
  for (ChannelAnswer& a : answers) {
    if (a.channel == nullptr) continue;
    const auto& history = a.channel->history();
    a.first = std::upper_bound(history.begin(), history.end(), a.position,
                               [](uint64_t id, const MessagePtr& m) { return id < m->id; });
    a.last = a.first;
    while (a.last != history.end() && bytes <= budget) {
      bytes += (*a.last)->envelope.size();
      a.position = (*a.last)->id;
      ++a.last;
    }
  }

  body.clear();
  begin_poll_body(body, callback);
  for (size_t i = 0; i < answers.size(); ++i) {
    if (i != 0) body += ',';
    body += *answers[i].name;
    body += '@';
    if (answers[i].channel != nullptr) body += answers[i].channel->epoch();
    body += '.';
    body += std::to_string(answers[i].position);
  }
  begin_poll_messages(body);
  bool first = true;
  for (const ChannelAnswer& a : answers) {
    if (a.channel == nullptr) continue;
    for (HistoryIt it = a.first; it != a.last; ++it) {
      if (!first) body += ',';
      first = false;
      body += (*it)->envelope;
    }
  }
  end_poll_body(body, callback);
  response.clear();
  append_poll_response(response, body, callback, ctx.origin.cors_headers, ctx.keep_alive);
  ctx.port.write(response);
  return true;
}

}  // namespace comet
