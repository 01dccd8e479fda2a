#pragma once
// A published message: immutable once built, shared (by reference count) by every
// worker's history and every subscriber. Each wire rendering is built once, by
// make_message (wire/message_builder.h): the hub stores and orders messages but never
// needs to know a transport's framing.

#include <cstdint>
#include <memory>
#include <string>

namespace comet {

struct Message {
  std::string channel;
  std::string epoch;         // channel epoch; empty for a bare (id-less) publish
  uint64_t id = 0;           // per-channel sequence; 0 = no id (live only, not resumable)
  uint64_t prev_id = 0;      // id of the message before it in the channel (0 = first)
  std::string event;         // optional event name
  std::string data;          // payload, valid UTF-8
  int64_t published_ms = 0;  // monotonic milliseconds, for the history age bound
  int64_t origin_ms = 0;     // the source's clock at publish (Redis TIME, ms); 0 = unknown:
                             // tells two messages published under one id apart

  // Renderings, built once by make_message() (wire/message_builder.h):
  std::string envelope;  // {"ch":..,"id":..,"prev":..,"epoch":..,"event":..,"data":..}
  std::string
      sse_body;  // "event: x\ndata: line\n...\n" (raw payload; the caller adds id + blank line)
  std::string
      sse_id;  // "id: channel@epoch.id\n": the whole cursor of a one-channel stream ("" without id)
  uint8_t ws_header[10];  // WebSocket text-frame header for `envelope`
  uint8_t ws_header_len = 0;
};

using MessagePtr = std::shared_ptr<const Message>;

/** Milliseconds from a monotonic clock (shared by publishers and history trimming). */
int64_t monotonic_ms();

}  // namespace comet
