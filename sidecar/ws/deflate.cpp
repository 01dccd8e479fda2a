#include "ws/deflate.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace comet::ws {

namespace {

constexpr int kMinWindowBits = 9;  // zlib's raw deflate refuses 8
constexpr int kMaxWindowBits = 15;
constexpr unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};

// One thread's deflate streams, one per window size, created on first use: almost every
// client takes the default window, so a thread usually holds one (about 256 KiB).
class Deflaters {
 public:
  Deflaters() = default;
  Deflaters(const Deflaters&) = delete;
  Deflaters& operator=(const Deflaters&) = delete;
  ~Deflaters() {
    for (Stream& s : streams_)
      if (s.ready) deflateEnd(&s.z);
  }

  // The stream for `bits` (9-15), reset for a new message; nullptr if zlib cannot start.
  z_stream* get(int bits) {
    Stream& s = streams_[bits - kMinWindowBits];
    if (!s.ready) {
      std::memset(&s.z, 0, sizeof s.z);
      if (deflateInit2(&s.z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) !=
          Z_OK)
        return nullptr;
      s.ready = true;
    } else if (deflateReset(&s.z) != Z_OK) {
      return nullptr;
    }
    return &s.z;
  }

 private:
  struct Stream {
    z_stream z;
    bool ready = false;
  };
  Stream streams_[kMaxWindowBits - kMinWindowBits + 1];
};

class Inflater {
 public:
  Inflater() = default;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() {
    if (ready_) inflateEnd(&z_);
  }

  z_stream* get() {
    if (!ready_) {
      std::memset(&z_, 0, sizeof z_);
      if (inflateInit2(&z_, -kMaxWindowBits) != Z_OK) return nullptr;
      ready_ = true;
    } else if (inflateReset(&z_) != Z_OK) {
      return nullptr;
    }
    return &z_;
  }

 private:
  z_stream z_;
  bool ready_ = false;
};

thread_local Deflaters t_deflaters;
thread_local Inflater t_inflater;

}  // namespace

bool deflate_message(std::string_view data, int window_bits, std::string& out) {
  if (data.size() > UINT_MAX / 2) return false;
  z_stream* z = t_deflaters.get(std::clamp(window_bits, kMinWindowBits, kMaxWindowBits));
  if (z == nullptr) return false;
  const size_t start = out.size();
  // deflateBound covers Z_FINISH; the sync flush adds an empty stored block (5 bytes).
  size_t room = deflateBound(z, static_cast<uLong>(data.size())) + 16;
  out.resize(start + room);
  z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z->avail_in = static_cast<uInt>(data.size());
  size_t produced = 0;
  while (true) {
    z->next_out = reinterpret_cast<Bytef*>(out.data() + start + produced);
    z->avail_out = static_cast<uInt>(room - produced);
    const int rc = deflate(z, Z_SYNC_FLUSH);
    produced = room - z->avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    // A sync flush is complete once deflate returns with output space left over.
    if (z->avail_out != 0 && z->avail_in == 0) {
      if (produced < 4 || std::memcmp(out.data() + start + produced - 4, kTail, 4) != 0) break;
      out.resize(start + produced - 4);
      return true;
    }
    room *= 2;
    out.resize(start + room);
  }
  out.resize(start);
  return false;
}

InflateStatus inflate_message(std::string_view data, size_t max_bytes, std::string& out) {
  out.clear();
  if (data.size() > UINT_MAX / 2) return InflateStatus::kInvalid;
  z_stream* z = t_inflater.get();
  if (z == nullptr) return InflateStatus::kInvalid;
  // Room for one byte past the limit tells "exactly max_bytes" from "more".
  const size_t cap = max_bytes < SIZE_MAX ? max_bytes + 1 : max_bytes;
  out.resize(std::min(cap, std::max<size_t>(1024, data.size() * 4)));
  size_t produced = 0;
  bool ended = false;
  const std::string_view tail(reinterpret_cast<const char*>(kTail), sizeof kTail);
  for (int part = 0; part < 2 && !ended; ++part) {
    const std::string_view in = part == 0 ? data : tail;
    z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z->avail_in = static_cast<uInt>(in.size());
    while (true) {
      if (produced == out.size()) {
        if (produced >= cap) return InflateStatus::kTooBig;
        out.resize(std::min(cap, out.size() * 2));
      }
      const size_t room = std::min<size_t>(out.size() - produced, UINT_MAX);
      z->next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      z->avail_out = static_cast<uInt>(room);
      // Z_BLOCK on the tail stops right after its empty stored block, where the stream
      // must now be between blocks (data_type bit 128); anywhere else, it was cut short.
      const int rc = inflate(z, part == 0 ? Z_NO_FLUSH : Z_BLOCK);
      produced += room - z->avail_out;
      if (rc == Z_STREAM_END) {
        // A final block ends the message (RFC 7692 7.2.3.4); nothing may follow it.
        if (part == 0 && z->avail_in != 0) return InflateStatus::kInvalid;
        ended = true;
        break;
      }
      if (rc == Z_BUF_ERROR && z->avail_in == 0) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) return InflateStatus::kInvalid;
      if (z->avail_in == 0 && z->avail_out != 0) break;
    }
  }
  if (produced > max_bytes) return InflateStatus::kTooBig;
  if (!ended && (z->data_type & 128) == 0) return InflateStatus::kInvalid;
  out.resize(produced);
  return InflateStatus::kOk;
}

}  // namespace comet::ws
