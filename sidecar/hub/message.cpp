#include "hub/message.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>

#include "ws/deflate.h"
#include "ws/frame_codec.h"

namespace comet {

namespace {

// Stands for "deflate does not help this message": built, but nothing to share.
const std::string kNotSmaller;

// Building a frame is serialized by a lock chosen by the message's address: workers
// delivering the same message wait for the one compressing it instead of compressing it
// too, and messages need no mutex of their own (most are never compressed).
std::mutex& build_lock(const Message* m) {
  static std::mutex locks[64];
  return locks[std::hash<const void*>()(m) / alignof(std::max_align_t) % 64];
}

std::string* build_deflated_frame(std::string_view envelope, int window_bits) {
  std::string payload;
  if (!ws::deflate_message(envelope, window_bits, payload) || payload.size() >= envelope.size())
    return nullptr;
  auto frame = std::make_unique<std::string>();
  uint8_t header[10];
  const size_t n = ws::encode_header(header, ws::Opcode::kText, payload.size(), true, true);
  frame->reserve(n + payload.size());
  frame->append(reinterpret_cast<const char*>(header), n);
  frame->append(payload);
  return frame.release();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

Message::~Message() {
  for (auto& slot : ws_deflated_) {
    const std::string* frame = slot.load(std::memory_order_acquire);
    if (frame != &kNotSmaller) delete frame;
  }
}

std::string_view Message::ws_deflated_frame(int window_bits) const {
  const int index = std::clamp(window_bits, 9, 15) - 9;
  std::atomic<const std::string*>& slot = ws_deflated_[index];
  const std::string* frame = slot.load(std::memory_order_acquire);
  if (frame == nullptr) {
    std::lock_guard<std::mutex> lock(build_lock(this));
    frame = slot.load(std::memory_order_acquire);
    if (frame == nullptr) {
      frame = build_deflated_frame(envelope, index + 9);
      if (frame == nullptr) frame = &kNotSmaller;
      slot.store(frame, std::memory_order_release);
    }
  }
  return *frame;
}

bool Message::holds(std::string_view part) const {
  if (part.empty()) return true;  // nothing to keep alive
  if (inside(part, envelope) || inside(part, sse_body) || inside(part, sse_id)) return true;
  for (const auto& slot : ws_deflated_) {
    const std::string* frame = slot.load(std::memory_order_acquire);
    if (frame != nullptr && inside(part, *frame)) return true;
  }
  return false;
}

int64_t monotonic_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace comet
