// libFuzzer target: the WebSocket frame decoder (ws/frame_codec.h), server side.
//
// The input is what a client sends after the handshake. It is decoded as
// transports/ws_session.cpp does it (the sidecar's default limits, masking required) and
// with tiny limits and masking optional (the client-side use), each time in one piece,
// cut in two at a point the input chooses (fuzz_support.h) and, for short inputs, one
// byte at a time, keeping the unconsumed tail and appending to it as the decoder's
// contract asks. All ways must report the same messages, control frames and errors.
// Each limit set is also run with permessage-deflate negotiated (RSV1 messages inflated).
//
// Checked besides: text messages and close reasons are valid UTF-8 (by a reference
// check), messages respect the limits, control payloads fit in 125 bytes, close codes
// are ones allowed on the wire, nothing is reported after a close or an error, and a
// stopped decoder stays stopped. Round trips: every decoded message re-encoded with
// encode_masked_frame and every close with encode_close decodes to the same thing, and
// the input itself survives encode_frame / encode_masked_frame / encode_close.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "fuzz_support.h"
#include "ws/deflate.h"
#include "ws/frame_codec.h"

namespace {

using comet::fuzz::escaped;
using comet::fuzz::reference_utf8;
namespace ws = comet::ws;

// What transports/ws_session.cpp derives from an unconfigured comet::Config.
ws::DecoderLimits sidecar_limits() {
  const comet::Config config;
  ws::DecoderLimits limits;
  limits.max_frame_bytes = config.max_message_bytes;
  limits.max_message_bytes = config.max_message_bytes;
  limits.require_mask = true;
  return limits;
}

ws::DecoderLimits tiny_limits() {
  ws::DecoderLimits limits;
  limits.max_frame_bytes = 40;
  limits.max_message_bytes = 100;
  limits.require_mask = false;
  return limits;
}

// The same with permessage-deflate negotiated: RSV1 messages are inflated.
ws::DecoderLimits with_deflate(ws::DecoderLimits limits) {
  limits.permessage_deflate = true;
  return limits;
}

// Large enough for anything the fuzzer sends; masking optional, for round trips.
ws::DecoderLimits open_limits() {
  ws::DecoderLimits limits;
  limits.max_frame_bytes = 1 << 24;
  limits.max_message_bytes = 1 << 24;
  limits.require_mask = false;
  return limits;
}

bool is_wire_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

// Checks every callback against the contract and logs it for comparisons.
class Recorder final : public ws::FrameHandler {
 public:
  explicit Recorder(const ws::DecoderLimits& limits) : limits_(limits) {}

  void on_message(ws::Opcode op, std::string_view data) override {
    FUZZ_CHECK(!stopped_);
    FUZZ_CHECK(op == ws::Opcode::kText || op == ws::Opcode::kBinary);
    FUZZ_CHECK(data.size() <= limits_.max_message_bytes);
    if (op == ws::Opcode::kText) FUZZ_CHECK_MSG(reference_utf8(data), escaped(data));
    messages.push_back({op, std::string(data)});
    log += (op == ws::Opcode::kText ? "text " : "binary ") + std::string(data) + "\n";
  }
  void on_ping(std::string_view payload) override {
    FUZZ_CHECK(!stopped_);
    FUZZ_CHECK(payload.size() <= ws::kMaxControlPayload);
    log += "ping " + std::string(payload) + "\n";
  }
  void on_pong(std::string_view payload) override {
    FUZZ_CHECK(!stopped_);
    FUZZ_CHECK(payload.size() <= ws::kMaxControlPayload);
    log += "pong " + std::string(payload) + "\n";
  }
  void on_close(uint16_t code, std::string_view reason) override {
    FUZZ_CHECK(!stopped_);
    stopped_ = true;
    FUZZ_CHECK_MSG(code == ws::kCloseNoStatus || is_wire_close_code(code), std::to_string(code));
    FUZZ_CHECK(code != ws::kCloseNoStatus || reason.empty());
    FUZZ_CHECK(reason.size() <= ws::kMaxControlPayload - 2);
    FUZZ_CHECK_MSG(reference_utf8(reason), escaped(reason));
    closed = true;
    close_code = code;
    close_reason.assign(reason);
    log += "close " + std::to_string(code) + " " + std::string(reason) + "\n";
  }
  void on_protocol_error(uint16_t close_code, const char* why) override {
    FUZZ_CHECK(!stopped_);
    stopped_ = true;
    FUZZ_CHECK_MSG(close_code == ws::kCloseProtocolError ||
                       close_code == ws::kCloseInvalidPayload || close_code == ws::kCloseTooBig,
                   std::to_string(close_code));
    FUZZ_CHECK(why != nullptr && *why != '\0');
    log += "error " + std::to_string(close_code) + " " + why + "\n";
  }

  struct Message {
    ws::Opcode op;
    std::string data;
  };
  std::vector<Message> messages;
  bool closed = false;
  uint16_t close_code = 0;
  std::string close_reason;
  std::string log;

 private:
  ws::DecoderLimits limits_;
  bool stopped_ = false;
};

// Decodes `data` delivered in pieces ending at `cuts` (ascending; the last piece runs to
// the end) and returns the recorder with everything reported.
Recorder drive(const ws::DecoderLimits& limits, std::string_view data,
               const std::vector<size_t>& cuts) {
  ws::Decoder decoder(limits);
  Recorder rec(limits);
  std::string pending;  // the unconsumed tail, fed again with the next piece appended
  size_t delivered = 0;
  for (size_t i = 0; i <= cuts.size() && delivered < data.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : data.size();
    pending.append(data.substr(delivered, end - delivered));
    delivered = end;
    const bool was_stopped = decoder.failed() || decoder.closed();
    const std::string log_before = rec.log;
    const size_t consumed = decoder.feed(pending, rec);
    FUZZ_CHECK(consumed <= pending.size());
    if (was_stopped) {
      FUZZ_CHECK(consumed == 0);
      FUZZ_CHECK(rec.log == log_before);
    }
    pending.erase(0, consumed);
  }
  FUZZ_CHECK(!(decoder.failed() && decoder.closed()));
  FUZZ_CHECK(decoder.closed() == rec.closed);
  rec.log += decoder.failed() ? "failed\n" : decoder.closed() ? "closed\n" : "open\n";
  return rec;
}

void check_split_invariance(const ws::DecoderLimits& limits, std::string_view data) {
  const Recorder whole = drive(limits, data, {});
  const size_t cut = comet::fuzz::split_point(data);
  const Recorder split = drive(limits, data, {cut});
  FUZZ_CHECK_MSG(whole.log == split.log, "cut at " + std::to_string(cut) + "\n--- in one piece:\n" +
                                             escaped(whole.log, 2000) + "\n--- in two:\n" +
                                             escaped(split.log, 2000));
  if (data.size() <= 256) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < data.size(); ++i) cuts.push_back(i);
    const Recorder bytewise = drive(limits, data, cuts);
    FUZZ_CHECK_MSG(whole.log == bytewise.log, "--- in one piece:\n" + escaped(whole.log, 2000) +
                                                  "\n--- byte by byte:\n" +
                                                  escaped(bytewise.log, 2000));
  }

  // What was decoded, encoded again as a client would, decodes to the same.
  for (size_t i = 0; i < whole.messages.size() && i < 4; ++i) {
    const auto& m = whole.messages[i];
    const std::string frame = ws::encode_masked_frame(m.op, m.data, 0x37fa213d);
    const Recorder again = drive(open_limits(), frame, {comet::fuzz::split_point(frame)});
    FUZZ_CHECK(again.messages.size() == 1 && again.messages[0].op == m.op &&
               again.messages[0].data == m.data);
  }
  if (whole.closed) {
    const Recorder again =
        drive(open_limits(), ws::encode_close(whole.close_code, whole.close_reason), {});
    FUZZ_CHECK(again.closed && again.close_code == whole.close_code &&
               again.close_reason == whole.close_reason);
  }
}

// The server's encoders, fed the raw input as a payload.
void check_encoders(std::string_view data) {
  const ws::DecoderLimits open = open_limits();
  const size_t cut = comet::fuzz::split_point(data);

  const std::string plain = ws::encode_frame(ws::Opcode::kBinary, data);
  uint8_t header[10];
  const size_t header_len = ws::encode_header(header, ws::Opcode::kBinary, data.size());
  FUZZ_CHECK(plain.size() == header_len + data.size());
  FUZZ_CHECK(plain.compare(0, header_len, reinterpret_cast<const char*>(header), header_len) == 0);
  Recorder r = drive(open, plain, {cut});
  FUZZ_CHECK(r.messages.size() == 1 && r.messages[0].data == data);

  // Masked, and split into a fragment and its continuation at `cut`.
  const uint32_t key = static_cast<uint32_t>(cut * 2654435761u);
  const std::string fragments =
      ws::encode_masked_frame(ws::Opcode::kBinary, data.substr(0, cut), key, false) +
      ws::encode_masked_frame(ws::Opcode::kContinuation, data.substr(cut), ~key, true);
  r = drive(open, fragments, {cut});
  FUZZ_CHECK(r.messages.size() == 1 && r.messages[0].data == data);

  // A close reason is cut to 123 bytes at a code point boundary, or dropped when it is
  // not UTF-8.
  const std::string close = ws::encode_close(ws::kCloseGoingAway, data);
  FUZZ_CHECK(close.size() <= 2 + ws::kMaxControlPayload);
  r = drive(open, close, {});
  FUZZ_CHECK(r.closed && r.close_code == ws::kCloseGoingAway);
  FUZZ_CHECK(data.substr(0, r.close_reason.size()) == r.close_reason);
  if (reference_utf8(data)) {
    FUZZ_CHECK_MSG(r.close_reason.size() == data.size() || r.close_reason.size() + 3 >= 123,
                   escaped(data));
  }

  // permessage-deflate: the input compressed as the server compresses a message, sent
  // back with RSV1 in two fragments, inflates to itself; the inflater's limit holds.
  std::string deflated;
  FUZZ_CHECK(ws::deflate_message(data, 9 + static_cast<int>(cut % 7), deflated));
  const size_t dcut = std::min(cut, deflated.size());
  const std::string compressed =
      ws::encode_masked_frame(ws::Opcode::kBinary, deflated.substr(0, dcut), key, false, true) +
      ws::encode_masked_frame(ws::Opcode::kContinuation, deflated.substr(dcut), ~key, true);
  r = drive(with_deflate(open), compressed, {cut});
  FUZZ_CHECK(r.messages.size() == 1 && r.messages[0].data == data);
  std::string inflated;
  if (!data.empty()) {
    FUZZ_CHECK(ws::inflate_message(deflated, data.size() - 1, inflated) ==
               ws::InflateStatus::kTooBig);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  static const ws::DecoderLimits kSidecar = sidecar_limits();
  static const ws::DecoderLimits kTiny = tiny_limits();
  static const ws::DecoderLimits kSidecarDeflate = with_deflate(sidecar_limits());
  static const ws::DecoderLimits kTinyDeflate = with_deflate(tiny_limits());
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  check_split_invariance(kSidecar, data);
  check_split_invariance(kTiny, data);
  check_split_invariance(kSidecarDeflate, data);
  check_split_invariance(kTinyDeflate, data);
  check_encoders(data);
  return 0;
}
