// comet-bench: histogram, statistics serialisation and message payloads.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench.h"

namespace bench {

uint64_t Histogram::quantile(double q) const {
  if (total_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_));
  if (rank >= total_) rank = total_ - 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; i++) {
    seen += counts_[i];
    if (seen > rank) {
      const uint64_t lo = lower(i);
      const uint64_t hi = i + 1 < kBuckets ? lower(i + 1) : lo;
      const uint64_t mid = lo + (hi - lo) / 2;
      return mid > max_ ? max_ : mid;
    }
  }
  return max_;
}

std::string Histogram::serialize() const {
  std::string out = std::to_string(max_);
  char buf[48];
  for (int i = 0; i < kBuckets; i++) {
    if (counts_[i] == 0) continue;
    snprintf(buf, sizeof buf, ",%d:%" PRIu64, i, counts_[i]);
    out += buf;
  }
  return out;
}

void Histogram::deserialize(std::string_view s) {
  std::string copy(s);
  char* p = copy.data();
  max_ = strtoull(p, &p, 10);
  total_ = 0;
  while (*p == ',') {
    const long i = strtol(p + 1, &p, 10);
    if (*p != ':') break;
    const uint64_t c = strtoull(p + 1, &p, 10);
    if (i >= 0 && i < kBuckets) {
      counts_[i] += c;
      total_ += c;
    }
  }
}

void Stats::merge(const Stats& o) {
  started += o.started;
  ready += o.ready;
  failed += o.failed;
  disconnects += o.disconnects;
  deliveries += o.deliveries;
  lost += o.lost;
  dup += o.dup;
  resets += o.resets;
  errors += o.errors;
  requests += o.requests;
  reconnects += o.reconnects;
  rx_bytes += o.rx_bytes;
  ws_msg_bytes += o.ws_msg_bytes;
  ws_deflated += o.ws_deflated;
  ws_deflate_conns += o.ws_deflate_conns;
  if (o.first_recv_ns != 0 && (first_recv_ns == 0 || o.first_recv_ns < first_recv_ns))
    first_recv_ns = o.first_recv_ns;
  if (o.last_recv_ns > last_recv_ns) last_recv_ns = o.last_recv_ns;
  if (o.last_ready_ns > last_ready_ns) last_ready_ns = o.last_ready_ns;
  latency.merge(o.latency);
  resume.merge(o.resume);
}

std::string Stats::serialize() const {
  char buf[512];
  snprintf(buf, sizeof buf,
           "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
           " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
           " %" PRIu64 " %" PRId64 " %" PRId64 " %" PRId64 " ",
           started, ready, failed, disconnects, deliveries, lost, dup, resets, errors, requests,
           reconnects, rx_bytes, ws_msg_bytes, ws_deflated, ws_deflate_conns, first_recv_ns,
           last_recv_ns, last_ready_ns);
  return std::string(buf) + latency.serialize() + " " + resume.serialize();
}

bool Stats::deserialize(std::string_view s) {
  std::string copy(s);
  char* p = copy.data();
  uint64_t* u[] = {&started,    &ready,    &failed,       &disconnects, &deliveries,
                   &lost,       &dup,      &resets,       &errors,      &requests,
                   &reconnects, &rx_bytes, &ws_msg_bytes, &ws_deflated, &ws_deflate_conns};
  for (uint64_t* f : u) *f = strtoull(p, &p, 10);
  first_recv_ns = strtoll(p, &p, 10);
  last_recv_ns = strtoll(p, &p, 10);
  last_ready_ns = strtoll(p, &p, 10);
  while (*p == ' ') p++;
  char* sp = strchr(p, ' ');
  if (sp == nullptr) return false;
  latency.deserialize(std::string_view(p, static_cast<size_t>(sp - p)));
  resume.deserialize(std::string_view(sp + 1));
  return true;
}

std::string channel_name(const Options& o, int channel) {
  return o.prefix + std::to_string(channel);
}

std::string url_encode(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string make_payload(uint64_t seq, int64_t t_ns, int size) {
  char buf[64];
  int len = snprintf(buf, sizeof buf, "s%" PRIu64 "t%" PRId64, seq, t_ns);
  std::string out(buf, static_cast<size_t>(len));
  if (size <= len) return out;
  // Records of a typical API answer, keys repeated and values varied, so that deflate
  // finds what it finds in real JSON (not a run of one letter).
  static const char* const kNames[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace"};
  static const char* const kTags[] = {"news", "sports", "weather", "tech", "music"};
  std::string pad = " [";
  for (int i = 0; pad.size() < static_cast<size_t>(size - len); i++) {
    char rec[256];
    snprintf(rec, sizeof rec,
             "%s{\"id\":%d,\"user\":\"%s\",\"email\":\"%s%d@example.com\",\"score\":%d.%02d,"
             "\"active\":%s,\"tags\":[\"%s\",\"%s\"],\"text\":\"message %d from %s\"}",
             i ? "," : "", 1000 + i * 37, kNames[i % 7], kNames[(i * 3) % 7], i * 13 % 97,
             (i * 7919) % 1000, (i * 31) % 100, i % 3 ? "true" : "false", kTags[i % 5],
             kTags[(i + 2) % 5], 4000 + i * 11, kNames[(i + 4) % 7]);
    pad += rec;
  }
  out += pad;
  out.resize(static_cast<size_t>(size));
  return out;
}

bool parse_payload(std::string_view data, uint64_t& seq, int64_t& t_ns) {
  if (data.size() < 4 || data[0] != 's') return false;
  size_t i = 1;
  uint64_t s = 0;
  while (i < data.size() && data[i] >= '0' && data[i] <= '9')
    s = s * 10 + static_cast<uint64_t>(data[i++] - '0');
  if (i == 1 || i >= data.size() || data[i] != 't') return false;
  size_t j = ++i;
  int64_t t = 0;
  while (i < data.size() && data[i] >= '0' && data[i] <= '9') t = t * 10 + (data[i++] - '0');
  if (i == j) return false;
  seq = s;
  t_ns = t;
  return true;
}

}  // namespace bench
