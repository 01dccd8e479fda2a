#pragma once
// The sessionless poll: a `/poll` that can be answered at once from this worker's hub
// (wait=0, or a long-poll with retained messages after its cursor) is answered without
// a session, a subscription or hub bookkeeping, from per-worker buffers. Anything else
// (a reset to announce, a channel still syncing with Redis or not followed live, a
// cursor ahead of the hub, a poll that must wait) takes the poll session's path.

#include <string_view>

#include "transports/channel_request.h"
#include "transports/request_context.h"

namespace comet {

/** True when the request was answered; false: nothing was written, use the session. */
bool answer_poll_now(RequestContext& ctx, const ChannelRequest& channels, std::string_view callback,
                     bool wait);

}  // namespace comet
