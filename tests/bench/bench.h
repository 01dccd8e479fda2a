// comet-bench: shared declarations of the load generator (options, statistics, the
// latency histogram and the entry points of the subscriber and publisher sides).
#pragma once

#include <time.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct event_base;

namespace bench {

// Monotonic clock in nanoseconds; comparable across processes on one machine, which
// is what lets a subscriber in one process time a message stamped by the publisher in
// another.
inline int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

enum class Target { kComet, kNchan };
// kXhr / kIframe / kMultipart: the sidecar's /stream?format=xhr|iframe|multipart (Nchan:
// http-multipart at --multipart-path; it has no XHR-ndjson or iframe equivalent).
enum class Transport { kWs, kSse, kLongPoll, kPoll, kXhr, kIframe, kMultipart };

struct Options {
  std::string mode;  // hold | fanout | poll | reconnect
  Target target = Target::kComet;
  Transport transport = Transport::kWs;
  std::string host = "127.0.0.1";
  int port = 0;
  int pub_port = 0;  // where publishes go (the sidecar's publish listener); 0 = port
  std::string ws_path = "/ws", sse_path = "/sse", poll_path = "/poll", pub_path = "/pub/";
  std::string multipart_path = "/multipart";  // Nchan only (the sidecar's is /stream)
  std::string prefix = "bench";               // channel names: prefix + index
  int n = 100;                                // subscribers / poll clients
  int channels = 1;
  int procs = 0;                 // client processes (0 = enough to stay under the fd cap)
  int threads = 1;               // event loops per client process
  int ramp_concurrency = 256;    // connection attempts in flight per thread
  double ramp_rate = 0;          // new connections per second over all (0 = unlimited)
  double ramp_timeout = 120;     // seconds
  double duration = 5;           // hold time / poll run time / reconnect publishing time
  double settle = 1;             // wait after the ramp before measuring / publishing
  double drain_timeout = 10;     // wait for deliveries after the last publish
  int messages = -1;             // messages to publish (-1 = mode default)
  double rate = 1000;            // messages per second (0 = as fast as possible)
  int size = 0;                  // pad message data to this many bytes
  std::string publish = "http";  // http | redis
  std::string redis = "127.0.0.1:6379";
  std::string lua = "bridge/lua/publish.lua";
  int history = 1000;
  int pub_conns = 4;
  int pub_pipeline = 64;
  std::vector<int> server_pids;
  bool bind_source = true;
  int src_first = 2, src_last = 254;  // 127.0.0.X source addresses
  double reconnect_window = 1.0;      // seconds over which clients reconnect
  double reconnect_at = 1.0;          // seconds into publishing when the storm starts
  bool probe = true;                  // hold: publish one message at the end and check it
  std::string label;
  bool quiet = false;
  int max_fds = 19000;  // connections per client process
  // Subscribers over TLS (https / wss): a non-blocking OpenSSL handshake (SNI
  // tls_sni) on every connection before its request. Publishes stay plain HTTP.
  bool tls = false;
  std::string tls_ca;  // verify the server against this PEM file; empty = no verification
  std::string tls_sni = "localhost";
  // WebSocket subscribers offer `permessage-deflate; client_max_window_bits` and inflate
  // RSV1 messages (RFC 7692) when the server accepts.
  bool ws_deflate = false;
};

// Log-linear histogram: exact below 128, then 64 sub-buckets per power of two
// (about 1.6% resolution). Values are nanoseconds.
class Histogram {
 public:
  static constexpr int kSub = 64;
  static constexpr int kBuckets = kSub * 60;
  Histogram() : counts_(kBuckets, 0) {}
  static int index(uint64_t v) {
    if (v < 2 * kSub) return static_cast<int>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - 6;
    return (shift + 1) * kSub + static_cast<int>((v >> shift) - kSub);
  }
  static uint64_t lower(int i) {
    if (i < 2 * kSub) return static_cast<uint64_t>(i);
    const int shift = i / kSub - 1;
    return static_cast<uint64_t>(kSub + i % kSub) << shift;
  }
  void add(uint64_t v) {
    counts_[index(v)]++;
    total_++;
    if (v > max_) max_ = v;
  }
  void merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; i++) counts_[i] += o.counts_[i];
    total_ += o.total_;
    if (o.max_ > max_) max_ = o.max_;
  }
  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }
  // Value at quantile q (0..1): middle of the bucket holding it, capped at max.
  uint64_t quantile(double q) const;
  std::string serialize() const;
  void deserialize(std::string_view s);

 private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

// Counters gathered by the subscriber side (per thread, then per process, then over
// all processes).
struct Stats {
  uint64_t started = 0;      // connection attempts
  uint64_t ready = 0;        // subscribed (or first answer for polls)
  uint64_t failed = 0;       // could not connect / handshake refused
  uint64_t disconnects = 0;  // server closed a subscription unexpectedly
  uint64_t deliveries = 0;   // messages received
  uint64_t lost = 0;
  uint64_t dup = 0;
  uint64_t resets = 0;        // reset notices (history expired, epoch changed)
  uint64_t errors = 0;        // malformed answers, error frames, bad status
  uint64_t requests = 0;      // poll answers
  uint64_t reconnects = 0;    // reconnect mode: clients back after reconnecting
  uint64_t rx_bytes = 0;      // bytes read from the sockets (decrypted with --tls), all phases
  uint64_t ws_msg_bytes = 0;  // WebSocket: bytes (header + payload) of frames that were deliveries
  uint64_t ws_deflated = 0;   // WebSocket: delivery frames that came compressed (RSV1)
  uint64_t ws_deflate_conns = 0;  // WebSocket: upgrades that accepted permessage-deflate
  int64_t first_recv_ns = 0, last_recv_ns = 0;
  int64_t last_ready_ns = 0;
  Histogram latency;  // publish -> receive, ns
  Histogram resume;   // reconnect start -> subscribed again, ns

  void merge(const Stats& o);
  std::string serialize() const;
  bool deserialize(std::string_view s);
};

// Messages are numbered per channel: the k-th published message (from 0) goes to
// channel k % C with sequence k / C + 1. This returns how many of `published`
// messages went to `channel`.
inline uint64_t published_to(uint64_t published, int channels, int channel) {
  const uint64_t c = static_cast<uint64_t>(channels);
  return published / c + (static_cast<uint64_t>(channel) < published % c ? 1 : 0);
}

std::string channel_name(const Options& o, int channel);
std::string url_encode(std::string_view s);

// Subscriber side: runs in a forked child. `ctl` is a socketpair end to the parent.
// Subscribers [first, last) of the whole run belong to this process.
int run_client_process(const Options& o, int ctl, int proc_index, int first, int last);

// Publisher side, driven by the parent's event loop.
class Publisher {
 public:
  virtual ~Publisher() = default;
  // Starts publishing `count` messages at `rate` per second (0 = unpaced);
  // `done` runs once every answer is in.
  virtual void start(uint64_t count, double rate, void (*done)(void*), void* arg) = 0;
  virtual uint64_t sent() const = 0;
  virtual uint64_t acked() const = 0;
  virtual uint64_t errors() const = 0;
  virtual int64_t first_send_ns() const = 0;
  virtual int64_t last_send_ns() const = 0;
};
// Returns nullptr and sets `error` on failure.
Publisher* make_publisher(event_base* base, const Options& o, std::string& error);

// Formats message data: "s<seq>t<ns>" then, up to `size` bytes, JSON-like text (a space
// and records with varied keys and values, cut at `size`) that compresses like real JSON.
std::string make_payload(uint64_t seq, int64_t t_ns, int size);
// Parses what make_payload produced; false if `data` is something else.
bool parse_payload(std::string_view data, uint64_t& seq, int64_t& t_ns);

}  // namespace bench
