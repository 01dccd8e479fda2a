#pragma once
// A published message: immutable once built, shared (by reference count) by every
// worker's history and every subscriber. Each wire rendering is built once, by
// make_message (wire/message_builder.h): the hub stores and orders messages but never
// needs to know a transport's framing.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

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
  bool notice = false;       // a presence notice (presence/presence_notices.h): id 0, and
                             // SSE sends sse_body (a named event) in every format

  // Renderings, built once by make_message() (wire/message_builder.h):
  std::string envelope;  // {"ch":..,"id":..,"prev":..,"epoch":..,"event":..,"data":..}
  std::string
      sse_body;  // "event: x\ndata: line\n...\n" (raw payload; the caller adds id + blank line)
  std::string
      sse_id;  // "id: channel@epoch.id\n": the whole cursor of a one-channel stream ("" without id)
  uint8_t ws_header[10];  // WebSocket text-frame header for `envelope`
  uint8_t ws_header_len = 0;

  Message() = default;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message();

  /**
   * The permessage-deflate rendering (RFC 7692): one complete text frame, RSV1 set,
   * carrying `envelope` deflated with a window of at most 2^window_bits bytes (8-15) and
   * no context takeover, so the same bytes serve every deflate client. Built the first
   * time any thread asks for that window (under a lock, so exactly once) and kept for
   * the message's life; later calls cost one atomic load. Empty when deflate would not
   * make the envelope smaller (or zlib failed): send the plain frame instead. Safe from
   * any thread; the view lives as long as the message.
   */
  std::string_view ws_deflated_frame(int window_bits) const;

  /** True when `part` lies inside one of the renderings above (write_shared's contract). */
  bool holds(std::string_view part) const;

 private:
  // One lazily built frame per window size 9-15 (8 shares 9's: see ws/deflate.h);
  // null until built, then owned here. Seven pointers: most messages never need one.
  static constexpr int kDeflateWindows = 7;
  mutable std::atomic<const std::string*> ws_deflated_[kDeflateWindows] = {};
};

using MessagePtr = std::shared_ptr<const Message>;

/** Milliseconds from a monotonic clock (shared by publishers and history trimming). */
int64_t monotonic_ms();

}  // namespace comet
