#pragma once
// Builds hiredis reply trees by hand, shaped as Redis answers (RESP2), for tests of the
// code that reads them. Free the root with freeReplyObject.

#include <hiredis/hiredis.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace comet::reply_builder {

inline redisReply* str(const char* s) {
  auto* r = static_cast<redisReply*>(calloc(1, sizeof(redisReply)));
  r->type = REDIS_REPLY_STRING;
  r->len = strlen(s);
  r->str = strdup(s);
  return r;
}

inline redisReply* error(const char* s) {
  redisReply* r = str(s);
  r->type = REDIS_REPLY_ERROR;
  return r;
}

inline redisReply* integer(long long v) {
  auto* r = static_cast<redisReply*>(calloc(1, sizeof(redisReply)));
  r->type = REDIS_REPLY_INTEGER;
  r->integer = v;
  return r;
}

inline redisReply* array(std::initializer_list<redisReply*> items) {
  auto* r = static_cast<redisReply*>(calloc(1, sizeof(redisReply)));
  r->type = REDIS_REPLY_ARRAY;
  r->elements = items.size();
  r->element = static_cast<redisReply**>(calloc(items.size() + 1, sizeof(redisReply*)));
  size_t i = 0;
  for (redisReply* item : items) r->element[i++] = item;
  return r;
}

}  // namespace comet::reply_builder
