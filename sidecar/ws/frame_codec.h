// RFC 6455 frame encoding (server side) and incremental, validating decoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/utf8.h"

namespace comet::ws {

// Frame opcodes defined by RFC 6455 section 5.2. Other values are reserved and
// are rejected by the Decoder.
enum class Opcode : uint8_t {
  kContinuation = 0,
  kText = 1,
  kBinary = 2,
  kClose = 8,
  kPing = 9,
  kPong = 10,
};

// Close status codes (RFC 6455 section 7.4.1).
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseUnsupported = 1003;
// Never sent on the wire: reported by FrameHandler::on_close for a close frame
// without a payload, and makes encode_close produce an empty close payload.
inline constexpr uint16_t kCloseNoStatus = 1005;
inline constexpr uint16_t kCloseInvalidPayload = 1007;
inline constexpr uint16_t kClosePolicy = 1008;
inline constexpr uint16_t kCloseTooBig = 1009;
inline constexpr uint16_t kCloseInternal = 1011;

// Largest payload a control frame (close, ping, pong) may carry.
inline constexpr size_t kMaxControlPayload = 125;

// Writes an unmasked frame header (server to client) for a payload of
// `payload_len` bytes into `out`, using the shortest length encoding (7, 16 or
// 64 bit). Sets FIN when `fin` and RSV1 when `rsv1` (the first frame of a
// permessage-deflate compressed message, RFC 7692 6); RSV2 and RSV3 are zero.
// Returns the number of bytes written: 2, 4 or 10. The caller then sends exactly
// `payload_len` bytes.
size_t encode_header(uint8_t out[10], Opcode op, uint64_t payload_len, bool fin = true,
                     bool rsv1 = false);

// Returns a complete unmasked frame: header followed by `payload`.
std::string encode_frame(Opcode op, std::string_view payload, bool fin = true);

// Returns a complete close frame carrying `code` (big-endian) and `reason`.
// The reason is cut to at most 123 bytes so the control payload stays within
// 125, backing off to a UTF-8 code point boundary; a reason that is not valid
// UTF-8 is dropped, because the peer would have to fail the connection on it.
// `code == kCloseNoStatus` yields a close frame with an empty payload.
std::string encode_close(uint16_t code, std::string_view reason);

// Returns a complete masked frame (client to server) with `mask_key` written
// big-endian as the 4 masking bytes (0x37fa213d -> 37 fa 21 3d). `rsv1` sets the
// RSV1 bit, which exists to exercise the decoder's extension checks. Intended
// for tests and for clients; a server must never mask.
std::string encode_masked_frame(Opcode op, std::string_view payload, uint32_t mask_key,
                                bool fin = true, bool rsv1 = false);

// Resource and conformance limits applied by a Decoder.
struct DecoderLimits {
  uint64_t max_frame_bytes = 1 << 20;    // largest single frame payload accepted
  uint64_t max_message_bytes = 1 << 20;  // largest reassembled message accepted
  bool require_mask = true;              // servers must reject unmasked frames
  // permessage-deflate (RFC 7692) was negotiated: RSV1 on the first frame of a data
  // message marks it compressed; it is inflated (within max_message_bytes) before
  // on_message. Without it any RSV bit is a protocol error.
  bool permessage_deflate = false;
};

// Receives the results of Decoder::feed. All string_views point into storage
// owned by the Decoder (or the fed buffer) and are valid only for the duration
// of the call; copy what must outlive it. Callbacks must not call feed() on the
// same Decoder, nor on another Decoder of the same thread (inflated messages share
// a per-thread buffer).
class FrameHandler {
 public:
  virtual ~FrameHandler() = default;

  // A complete, reassembled data message, inflated when it was compressed. `op`
  // is kText (already verified to be valid UTF-8) or kBinary. The data of an
  // inflated message lives in a per-thread buffer until the next message.
  virtual void on_message(Opcode op, std::string_view data) = 0;

  // A ping frame; the application should answer with a pong echoing `payload`.
  virtual void on_ping(std::string_view payload) = 0;

  // A pong frame (solicited or not).
  virtual void on_pong(std::string_view payload) = 0;

  // A valid close frame. `code` is kCloseNoStatus (1005) when the frame carried
  // no payload; `reason` is valid UTF-8. The decoder is closed afterwards.
  virtual void on_close(uint16_t code, std::string_view reason) = 0;

  // The peer violated the protocol or a limit. `close_code` is the status to
  // send in the closing handshake (1002, 1007 or 1009: a compressed message that
  // does not inflate is 1007, one that inflates past max_message_bytes 1009); `why` is a static
  // string for logs. Called at most once; the decoder is failed afterwards.
  virtual void on_protocol_error(uint16_t close_code, const char* why) = 0;

  // Asked before each frame: false stops feed() there (the rest is left unconsumed),
  // so a server whose answers pile up unread decodes no more until they drain.
  virtual bool wants_more() { return true; }
};

// Incremental decoder for the client-to-server half of one connection:
// validates frames, unmasks payloads, reassembles fragmented messages and
// checks text as UTF-8 while it arrives. Not thread-safe; one per connection.
class Decoder {
 public:
  explicit Decoder(DecoderLimits limits);

  // Decodes as many complete frames from the start of `bytes` as possible,
  // invoking `h` for every complete message and control frame, and returns the
  // number of bytes consumed (always whole frames). The caller must keep the
  // unconsumed tail and pass it again, with more data appended, at the start of
  // the next call: the decoder remembers how far it has already validated and
  // buffered a partially received frame, which lets it reject an oversize
  // header or invalid UTF-8 before the rest of the frame arrives.
  // After on_close or on_protocol_error it stops; the return value then
  // counts the frames before the offending one (including a close frame
  // itself), and later calls return 0 without invoking `h`.
  size_t feed(std::string_view bytes, FrameHandler& h);

  // True once on_protocol_error has been invoked.
  bool failed() const { return failed_; }

  // True once on_close has been invoked.
  bool closed() const { return closed_; }

 private:
  // Reports `code` through `h` and stops the decoder.
  void fail(FrameHandler& h, uint16_t code, const char* why);

  // Inflates the compressed message in message_ and delivers it; false when it
  // failed the decoder (not deflate data, over the limit, invalid UTF-8).
  bool deliver_inflated(FrameHandler& h);

  // Handles one complete control frame whose unmasked payload is `payload`.
  void dispatch_control(Opcode op, std::string_view payload, FrameHandler& h);

  DecoderLimits limits_;
  std::string message_;  // unmasked payload of the message being assembled
  Opcode message_op_ = Opcode::kText;
  bool in_message_ = false;      // a non-FIN data frame started a message
  bool compressed_ = false;      // the message being assembled had RSV1 (permessage-deflate)
  uint64_t frame_absorbed_ = 0;  // payload bytes of the partial head frame in message_
  Utf8Validator utf8_;
  bool failed_ = false;
  bool closed_ = false;
};

}  // namespace comet::ws
