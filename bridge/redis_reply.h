#pragma once
// Reading text out of hiredis replies.

#include <hiredis/hiredis.h>

#include <string_view>

namespace comet {

/** A string or status reply's text; empty for anything else (errors included). */
inline std::string_view reply_text(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
  return std::string_view(r->str, r->len);
}

/** reply_text, and an error reply's message too. */
inline std::string_view reply_or_error_text(const redisReply* r) {
  if (r != nullptr && r->type == REDIS_REPLY_ERROR) return std::string_view(r->str, r->len);
  return reply_text(r);
}

}  // namespace comet
