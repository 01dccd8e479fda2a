#include "ws/frame_codec.h"

#include <algorithm>

#include "ws/deflate.h"

namespace comet::ws {

namespace {

constexpr uint8_t kFinBit = 0x80;
constexpr uint8_t kRsv1Bit = 0x40;
constexpr uint8_t kRsvBits = 0x70;
constexpr uint8_t kMaskBit = 0x80;
constexpr uint8_t kLen16 = 126;
constexpr uint8_t kLen64 = 127;
constexpr size_t kMaxCloseReason = kMaxControlPayload - 2;
// A reassembly buffer larger than this is freed after delivery: a push server
// holds many idle connections, and one large upload should not pin its peak
// allocation on the connection for the rest of its life.
constexpr size_t kRetainCapacity = 16 * 1024;

// Writes the second header byte and the extended length; returns bytes written.
size_t write_length(uint8_t* out, uint64_t len, uint8_t mask_bit) {
  if (len < kLen16) {
    out[0] = static_cast<uint8_t>(mask_bit | len);
    return 1;
  }
  if (len <= 0xFFFF) {
    out[0] = mask_bit | kLen16;
    out[1] = static_cast<uint8_t>(len >> 8);
    out[2] = static_cast<uint8_t>(len);
    return 3;
  }
  out[0] = mask_bit | kLen64;
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<uint8_t>(len >> (56 - 8 * i));
  return 9;
}

// Copies `n` payload bytes to `dst`, unmasking when `mask` is set. `offset` is
// the position of src[0] within the frame payload, so the key stays aligned when
// a frame is processed in several pieces.
void unmask_into(char* dst, const uint8_t* src, size_t n, const uint8_t* mask, uint64_t offset) {
  if (mask == nullptr) {
    std::copy(src, src + n, dst);
    return;
  }
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<char>(src[i] ^ mask[(offset + i) & 3]);
}

bool is_valid_close_code(uint16_t code) {
  // 1004-1006 and 1015 are reserved and must never appear on the wire; the rest
  // of 1000-2999 is reserved for future protocol use, 3000-4999 is for
  // libraries and applications, and nothing above 4999 is defined.
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace

size_t encode_header(uint8_t out[10], Opcode op, uint64_t payload_len, bool fin, bool rsv1) {
  out[0] =
      static_cast<uint8_t>((fin ? kFinBit : 0) | (rsv1 ? kRsv1Bit : 0) | static_cast<uint8_t>(op));
  return 1 + write_length(out + 1, payload_len, 0);
}

std::string encode_frame(Opcode op, std::string_view payload, bool fin) {
  uint8_t header[10];
  const size_t header_len = encode_header(header, op, payload.size(), fin);
  std::string out;
  out.reserve(header_len + payload.size());
  out.append(reinterpret_cast<const char*>(header), header_len);
  out.append(payload);
  return out;
}

std::string encode_close(uint16_t code, std::string_view reason) {
  if (code == kCloseNoStatus) return encode_frame(Opcode::kClose, {});
  if (reason.size() > kMaxCloseReason) {
    size_t cut = kMaxCloseReason;
    // Never split a code point: back off while the first dropped byte is a
    // continuation byte.
    while (cut > 0 && (static_cast<uint8_t>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  if (!is_valid_utf8(reason)) reason = {};
  std::string payload;
  payload.reserve(2 + reason.size());
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason);
  return encode_frame(Opcode::kClose, payload);
}

std::string encode_masked_frame(Opcode op, std::string_view payload, uint32_t mask_key, bool fin,
                                bool rsv1) {
  uint8_t header[14];
  header[0] =
      static_cast<uint8_t>((fin ? kFinBit : 0) | (rsv1 ? kRsv1Bit : 0) | static_cast<uint8_t>(op));
  size_t header_len = 1 + write_length(header + 1, payload.size(), kMaskBit);
  uint8_t* mask = header + header_len;
  for (int i = 0; i < 4; ++i) mask[i] = static_cast<uint8_t>(mask_key >> (24 - 8 * i));
  header_len += 4;
  std::string out(header_len + payload.size(), '\0');
  std::copy(header, header + header_len, out.begin());
  // Masking is an involution, so the unmasking routine masks as well.
  unmask_into(out.data() + header_len, reinterpret_cast<const uint8_t*>(payload.data()),
              payload.size(), mask, 0);
  return out;
}

Decoder::Decoder(DecoderLimits limits) : limits_(limits) {}

void Decoder::fail(FrameHandler& h, uint16_t code, const char* why) {
  failed_ = true;
  h.on_protocol_error(code, why);
}

void Decoder::dispatch_control(Opcode op, std::string_view payload, FrameHandler& h) {
  if (op == Opcode::kPing) {
    h.on_ping(payload);
    return;
  }
  if (op == Opcode::kPong) {
    h.on_pong(payload);
    return;
  }
  if (payload.empty()) {
    closed_ = true;
    h.on_close(kCloseNoStatus, {});
    return;
  }
  if (payload.size() == 1) {
    fail(h, kCloseProtocolError, "close payload of 1 byte");
    return;
  }
  const auto code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                          static_cast<uint8_t>(payload[1]));
  if (!is_valid_close_code(code)) {
    fail(h, kCloseProtocolError, "invalid close code");
    return;
  }
  const std::string_view reason = payload.substr(2);
  if (!is_valid_utf8(reason)) {
    fail(h, kCloseInvalidPayload, "close reason is not valid UTF-8");
    return;
  }
  closed_ = true;
  h.on_close(code, reason);
}

size_t Decoder::feed(std::string_view bytes, FrameHandler& h) {
  size_t pos = 0;
  while (!failed_ && !closed_ && h.wants_more()) {
    const size_t avail = bytes.size() - pos;
    if (avail < 2) break;
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
    const bool fin = (p[0] & kFinBit) != 0;
    const uint8_t op_bits = p[0] & 0x0F;
    const bool masked = (p[1] & kMaskBit) != 0;
    const uint8_t len7 = p[1] & 0x7F;

    // Everything checkable from the first two bytes is checked before waiting
    // for the rest, so a bad peer is cut off as early as possible.
    const uint8_t rsv = p[0] & kRsvBits;
    if (rsv != 0 && (rsv != kRsv1Bit || !limits_.permessage_deflate)) {
      fail(h, kCloseProtocolError, "RSV bit set without a negotiated extension");
      break;
    }
    const bool control = (op_bits & 0x08) != 0;
    if (op_bits > 2 && (op_bits < 8 || op_bits > 10)) {
      fail(h, kCloseProtocolError, "reserved opcode");
      break;
    }
    // RFC 7692 6.1: only the first frame of a data message carries RSV1.
    if (rsv != 0 && control) {
      fail(h, kCloseProtocolError, "RSV1 on a control frame");
      break;
    }
    if (rsv != 0 && op_bits == 0) {
      fail(h, kCloseProtocolError, "RSV1 on a continuation frame");
      break;
    }
    const auto op = static_cast<Opcode>(op_bits);
    if (control) {
      if (!fin) {
        fail(h, kCloseProtocolError, "fragmented control frame");
        break;
      }
      if (len7 > kMaxControlPayload) {
        fail(h, kCloseProtocolError, "control frame payload over 125 bytes");
        break;
      }
    } else if (op == Opcode::kContinuation && !in_message_) {
      fail(h, kCloseProtocolError, "continuation frame without a message in progress");
      break;
    } else if (op != Opcode::kContinuation && in_message_) {
      fail(h, kCloseProtocolError, "new data frame inside a fragmented message");
      break;
    }
    if (!masked && limits_.require_mask) {
      fail(h, kCloseProtocolError, "unmasked client frame");
      break;
    }

    const size_t ext_len = len7 == kLen16 ? 2 : (len7 == kLen64 ? 8 : 0);
    const size_t header_len = 2 + ext_len + (masked ? 4 : 0);
    if (avail < header_len) break;
    uint64_t len = len7;
    if (ext_len != 0) {
      len = 0;
      for (size_t i = 0; i < ext_len; ++i) len = (len << 8) | p[2 + i];
    }
    if ((len >> 63) != 0) {
      fail(h, kCloseProtocolError, "64-bit payload length with the high bit set");
      break;
    }
    if (len > limits_.max_frame_bytes) {
      fail(h, kCloseTooBig, "frame exceeds max_frame_bytes");
      break;
    }
    const uint8_t* mask = masked ? p + header_len - 4 : nullptr;
    const uint8_t* payload = p + header_len;
    const uint64_t have = std::min<uint64_t>(len, avail - header_len);

    if (control) {
      // Control payloads are tiny, so they are simply waited for in full.
      if (have < len) break;
      char buf[kMaxControlPayload];
      unmask_into(buf, payload, len, mask, 0);
      dispatch_control(op, std::string_view(buf, len), h);
      if (failed_) break;
      pos += header_len + len;
      continue;
    }

    // message_ may already hold the part of this frame absorbed by an earlier
    // call; only what came before this frame counts against the message limit.
    const uint64_t before = message_.size() - frame_absorbed_;
    if (len > limits_.max_message_bytes || before > limits_.max_message_bytes - len) {
      fail(h, kCloseTooBig, "message exceeds max_message_bytes");
      break;
    }
    if (op != Opcode::kContinuation && frame_absorbed_ == 0) {
      message_op_ = op;
      message_.clear();
      utf8_.reset();
      compressed_ = rsv != 0;
    }
    // Absorbing a partial frame (instead of waiting for all of it) is what lets
    // invalid UTF-8 be rejected in the middle of a large frame.
    if (have > frame_absorbed_) {
      const size_t n = static_cast<size_t>(have - frame_absorbed_);
      const size_t old_size = message_.size();
      message_.resize(old_size + n);
      unmask_into(message_.data() + old_size, payload + frame_absorbed_, n, mask, frame_absorbed_);
      frame_absorbed_ = have;
      // Compressed text is checked once inflated.
      if (message_op_ == Opcode::kText && !compressed_ &&
          !utf8_.feed(std::string_view(message_).substr(old_size))) {
        fail(h, kCloseInvalidPayload, "invalid UTF-8 in text message");
        break;
      }
    }
    if (have < len) break;

    frame_absorbed_ = 0;
    if (!fin) {
      in_message_ = true;
      pos += header_len + len;
      continue;
    }
    if (message_op_ == Opcode::kText && !compressed_ && !utf8_.complete()) {
      fail(h, kCloseInvalidPayload, "text message ends inside a UTF-8 sequence");
      break;
    }
    in_message_ = false;
    pos += header_len + len;
    if (compressed_) {
      if (!deliver_inflated(h)) break;
    } else {
      h.on_message(message_op_, message_);
    }
    if (message_.capacity() > kRetainCapacity) {
      std::string().swap(message_);
    } else {
      message_.clear();
    }
  }
  return pos;
}

bool Decoder::deliver_inflated(FrameHandler& h) {
  // One buffer per thread, not per connection: a connection holds no inflated bytes
  // between messages. A large one is freed after use, as message_ is.
  thread_local std::string inflated;
  switch (inflate_message(message_, limits_.max_message_bytes, inflated)) {
    case InflateStatus::kOk:
      break;
    case InflateStatus::kTooBig:
      fail(h, kCloseTooBig, "inflated message exceeds max_message_bytes");
      return false;
    case InflateStatus::kInvalid:
      fail(h, kCloseInvalidPayload, "compressed message does not inflate");
      return false;
  }
  bool ok = true;
  if (message_op_ == Opcode::kText && !is_valid_utf8(inflated)) {
    fail(h, kCloseInvalidPayload, "invalid UTF-8 in text message");
    ok = false;
  } else {
    h.on_message(message_op_, inflated);
  }
  if (inflated.capacity() > kRetainCapacity) {
    std::string().swap(inflated);
  } else {
    inflated.clear();
  }
  return ok;
}

}  // namespace comet::ws
