// comet-bench: load generator for Comet Sidecar (and, for comparison, Nchan).
//
// The parent process forks client processes (each holding a share of the
// subscribers, at most --max-fds each, because a process here may hold only 20,000
// files), drives the phases of a scenario over socketpairs, publishes, samples the
// server's memory from /proc and prints one JSON line of results (stdout) plus a
// readable summary (stderr). The exit status is 1 on any lost or duplicated message,
// failed connection or unexpected disconnect; 2 on bad usage.
#include <dirent.h>
#include <event2/event.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench.h"

namespace bench {
namespace {

const char kUsage[] =
    "usage: comet-bench MODE --port P [options]\n"
    "modes:\n"
    "  hold       N subscribers held open: ramp rate, server memory per connection; a probe\n"
    "             message per channel at the end checks every subscriber is alive\n"
    "  fanout     N subscribers, then M timestamped messages at --rate: latency percentiles,\n"
    "             deliveries/s, loss and duplicates (M=1 channel=1: time to reach everyone)\n"
    "  poll       N clients polling (--transport poll: wait=0) or long-polling (longpoll)\n"
    "             for --duration: requests/s (publishes --messages at --rate meanwhile)\n"
    "  reconnect  N subscribers; while publishing, all reconnect within --window seconds\n"
    "             with their cursors: time to resume, loss, duplicates\n"
    "options:\n"
    "  --target comet|nchan       server flavour (message format, resume headers)\n"
    "  --host H --port P          server address (loopback only)\n"
    "  --pub-port P               where publishes go (the sidecar's publish listener; default "
    "--port)\n"
    "  --transport ws|sse|xhr|iframe|multipart|longpoll|poll\n"
    "                             (xhr, iframe: /stream?format=..., comet only; multipart:\n"
    "                             /stream?format=multipart, or Nchan's http-multipart)\n"
    "  -n N                       subscribers or poll clients (default 100)\n"
    "  --channels C               subscriber k listens on channel k % C (default 1)\n"
    "  --prefix NAME              channel names are NAME0, NAME1, ... (default b<pid>-)\n"
    "  --procs P                  client processes (default: ceil(N / --max-fds))\n"
    "  --max-fds N                connections per client process (default 19000)\n"
    "  --threads T                event loops per client process (default 1)\n"
    "  --ramp-concurrency K       connection attempts in flight per loop (default 256)\n"
    "  --ramp-rate R              connections per second, 0 = unlimited (default 0)\n"
    "  --ramp-timeout S           give up waiting for the ramp (default 120)\n"
    "  --settle S                 pause after the ramp before measuring (default 1)\n"
    "  --duration S               hold / poll / reconnect publishing time (default 5)\n"
    "  --messages M --rate R      messages to publish and per second (0 = unpaced)\n"
    "  --size B                   pad message data to B bytes\n"
    "  --publish http|redis       POST /pub/<ch> or EVALSHA publish.lua (default http)\n"
    "  --pub-conns K --pub-pipeline D   HTTP publisher connections and requests in flight\n"
    "  --redis HOST:PORT --lua FILE --history N   Redis publishing\n"
    "  --drain-timeout S          wait for deliveries after the last publish (default 10)\n"
    "  --window S --storm-at S    reconnect: spread and start of the storm (default 1, 1)\n"
    "  --server-pid PID[,PID...]  server processes whose memory is sampled (repeatable)\n"
    "  --no-bind                  do not spread over source addresses 127.0.0.2-254\n"
    "  --no-probe                 hold: skip the final probe message\n"
    "  --tls                      subscribers connect over TLS (https, wss): non-blocking\n"
    "                             OpenSSL handshake first; publishes stay plain HTTP\n"
    "  --tls-ca FILE              verify the server's certificate against FILE (default: none)\n"
    "  --ws-deflate               WebSocket subscribers offer permessage-deflate (RFC 7692;\n"
    "                             client_max_window_bits) and inflate compressed messages;\n"
    "                             wire_bytes_per_delivery: bytes of the frames that delivered\n"
    "                             (header + payload as received, decrypted with --tls)\n"
    "  --tls-sni NAME             SNI and, with --tls-ca, the name checked (default localhost)\n"
    "  --ws-path --sse-path --poll-path --pub-path   endpoint paths (/ws /sse /poll /pub/)\n"
    "  --multipart-path P         Nchan's http-multipart location (default /multipart)\n"
    "  --label TEXT               copied into the JSON result\n"
    "  --quiet                    no progress lines\n";

struct MemSample {
  uint64_t rss_kib = 0, pss_kib = 0;
  int processes = 0;
  uint64_t cpu_ns = 0;  // CPU time used so far by all threads of the server processes
};

// Sum of the first field of /proc/<pid>/task/*/schedstat: nanoseconds on a CPU.
uint64_t process_cpu_ns(int pid) {
  uint64_t total = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + e->d_name + "/schedstat");
    uint64_t ns = 0;
    if (f >> ns) total += ns;
  }
  closedir(d);
  return total;
}

MemSample sample_memory(const std::vector<int>& pids) {
  MemSample m;
  for (int pid : pids) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::string line;
    bool any = false;
    while (std::getline(f, line)) {
      if (line.rfind("Rss:", 0) == 0)
        m.rss_kib += strtoull(line.c_str() + 4, nullptr, 10), any = true;
      if (line.rfind("Pss:", 0) == 0) m.pss_kib += strtoull(line.c_str() + 4, nullptr, 10);
    }
    if (any) m.processes++;
    m.cpu_ns += process_cpu_ns(pid);
  }
  return m;
}

struct Child {
  pid_t pid = -1;
  int fd = -1;
  event* ev = nullptr;
  std::string buf;
  uint64_t ready = 0, failed = 0, deliveries = 0, requests = 0, reconnects = 0, disconnects = 0;
  bool ramp_done = false;
  bool done = false;
  Stats stats;
};

enum class Phase { kRamp, kSettle, kHold, kPublish, kDrain, kCollect, kDone };

struct Run {
  Options o;
  event_base* base = nullptr;
  std::vector<Child> children;
  Phase phase = Phase::kRamp;
  std::unique_ptr<Publisher> pub;
  event* timer = nullptr;
  int64_t t_start = 0, t_ramp_done = 0, t_phase = 0, t_last_progress = 0, t_pub_done = 0;
  int64_t t_storm = 0;
  bool storm_sent = false;
  uint64_t messages = 0;
  uint64_t expected = 0;  // deliveries expected if every subscriber is ready
  MemSample mem_before, mem_after, mem_end;
  uint64_t poll_req_start = 0, poll_req_end = 0;
  int64_t poll_t_start = 0, poll_t_end = 0;
  uint64_t last_deliveries = 0;
  int64_t t_last_delivery_change = 0;
  bool pub_done = false;
  bool pub_stalled = false;

  uint64_t sum(uint64_t Child::*f) const {
    uint64_t s = 0;
    for (const Child& c : children) s += c.*f;
    return s;
  }
};

double secs(int64_t ns) { return static_cast<double>(ns) / 1e9; }

void send_line(Run& r, const std::string& line) {
  for (Child& c : r.children) {
    if (c.fd < 0) continue;
    ssize_t n = write(c.fd, line.data(), line.size());
    (void)n;
  }
}

void on_pub_done(void* arg) {
  Run& r = *static_cast<Run*>(arg);
  r.pub_done = true;
  r.t_pub_done = now_ns();
}

uint64_t expected_deliveries(const Options& o, uint64_t messages) {
  uint64_t e = 0;
  const int full = o.n / o.channels, extra = o.n % o.channels;
  for (int c = 0; c < o.channels; c++)
    e += published_to(messages, o.channels, c) * static_cast<uint64_t>(full + (c < extra ? 1 : 0));
  return e;
}

void start_publishing(Run& r) {
  r.phase = Phase::kPublish;
  r.t_phase = now_ns();
  r.expected = expected_deliveries(r.o, r.messages);
  r.pub_done = false;
  r.t_last_delivery_change = now_ns();
  if (r.o.mode == "poll") {
    r.poll_req_start = r.sum(&Child::requests);
    r.poll_t_start = now_ns();
  }
  const double rate = r.o.mode == "hold" ? 0 : r.o.rate;
  r.pub->start(r.messages, rate, on_pub_done, &r);
}

void stop_children(Run& r) {
  r.phase = Phase::kCollect;
  r.t_phase = now_ns();
  r.mem_end = sample_memory(r.o.server_pids);
  send_line(r, "S " + std::to_string(r.pub ? r.pub->sent() : 0) + "\n");
}

void on_timer(evutil_socket_t, short, void* arg) {
  Run& r = *static_cast<Run*>(arg);
  const Options& o = r.o;
  const int64_t now = now_ns();
  const uint64_t ready = r.sum(&Child::ready), failed = r.sum(&Child::failed);
  const uint64_t deliveries = r.sum(&Child::deliveries);
  if (deliveries != r.last_deliveries) {
    r.last_deliveries = deliveries;
    r.t_last_delivery_change = now;
  }
  const bool progress = !o.quiet && now - r.t_last_progress >= 1000000000LL;
  if (progress) r.t_last_progress = now;
  switch (r.phase) {
    case Phase::kRamp: {
      bool all = true;
      for (Child& c : r.children) all = all && c.ramp_done;
      if (progress)
        fprintf(stderr, "[ramp %5.1fs] ready %" PRIu64 "/%d  failed %" PRIu64 "  (%.0f/s)\n",
                secs(now - r.t_start), ready, o.n, failed,
                static_cast<double>(ready) / secs(now - r.t_start));
      if (all || secs(now - r.t_start) > o.ramp_timeout) {
        r.t_ramp_done = now;
        if (!o.quiet)
          fprintf(stderr, "[ramp] done: %" PRIu64 " ready, %" PRIu64 " failed in %.2fs\n", ready,
                  failed, secs(now - r.t_start));
        r.phase = Phase::kSettle;
        r.t_phase = now;
      }
      break;
    }
    case Phase::kSettle:
      if (secs(now - r.t_phase) >= o.settle) {
        r.mem_after = sample_memory(o.server_pids);
        if (o.mode == "hold") {
          r.phase = Phase::kHold;
          r.t_phase = now;
        } else {
          start_publishing(r);
        }
      }
      break;
    case Phase::kHold:
      if (progress)
        fprintf(stderr, "[hold %4.1fs] ready %" PRIu64 "\n", secs(now - r.t_phase), ready);
      if (secs(now - r.t_phase) >= o.duration) start_publishing(r);
      break;
    case Phase::kPublish: {
      if (o.mode == "reconnect" && !r.storm_sent && secs(now - r.t_phase) >= o.reconnect_at) {
        r.storm_sent = true;
        r.t_storm = now;
        send_line(r, "G\n");
      }
      if (progress)
        fprintf(stderr,
                "[%s %4.1fs] published %" PRIu64 "  deliveries %" PRIu64 "/%" PRIu64
                "  requests %" PRIu64 "  reconnected %" PRIu64 "\n",
                o.mode.c_str(), secs(now - r.t_phase), r.pub->sent(), deliveries, r.expected,
                r.sum(&Child::requests), r.sum(&Child::reconnects));
      // Bounded even if the server stops answering: the expected publishing time plus
      // the drain timeout plus 30 s.
      const double pub_budget =
          (o.rate > 0 && o.mode != "hold" ? static_cast<double>(r.messages) / o.rate : 0) +
          o.duration + o.drain_timeout + 30;
      if (!r.pub_done && secs(now - r.t_phase) > pub_budget) {
        fprintf(stderr,
                "comet-bench: publishing stalled (%" PRIu64 " of %" PRIu64 " sent, %" PRIu64
                " answered); giving up\n",
                r.pub->sent(), r.messages, r.pub->acked());
        r.pub_stalled = true;
        r.pub_done = true;
      }
      const bool poll_time_over = o.mode != "poll" || secs(now - r.t_phase) >= o.duration;
      const bool storm_over = o.mode != "reconnect" || r.storm_sent;
      if (r.pub_done && poll_time_over && storm_over) {
        if (o.mode == "poll") {
          r.poll_req_end = r.sum(&Child::requests);
          r.poll_t_end = now;
        }
        r.phase = Phase::kDrain;
        r.t_phase = now;
      }
      break;
    }
    case Phase::kDrain: {
      const bool all_back =
          o.mode != "reconnect" || r.sum(&Child::reconnects) + r.sum(&Child::disconnects) >= ready;
      if ((deliveries >= r.expected && all_back) ||
          secs(now - r.t_last_delivery_change) >= o.drain_timeout) {
        stop_children(r);
      }
      break;
    }
    case Phase::kCollect: {
      bool all = true;
      for (Child& c : r.children) all = all && c.done;
      if (!all && secs(now - r.t_phase) > 60) {
        fprintf(stderr, "comet-bench: client processes did not report within 60 s; killing them\n");
        for (Child& c : r.children)
          if (!c.done) {
            kill(c.pid, SIGKILL);
            c.done = true;
            c.stats.failed += 1;
          }
        all = true;
      }
      if (all) {
        r.phase = Phase::kDone;
        event_base_loopexit(r.base, nullptr);
      }
      break;
    }
    case Phase::kDone:
      break;
  }
}

void on_child(evutil_socket_t fd, short, void* arg) {
  Run& r = *static_cast<Run*>(arg);
  Child* c = nullptr;
  for (Child& k : r.children)
    if (k.fd == fd) c = &k;
  if (c == nullptr) return;
  char buf[65536];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0) {
    event_free(c->ev);
    c->ev = nullptr;
    close(c->fd);
    c->fd = -1;
    if (!c->done) {
      fprintf(stderr, "comet-bench: client process %d ended without results\n", c->pid);
      c->done = true;
      c->stats.failed += 1;
    }
    return;
  }
  c->buf.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = c->buf.find('\n')) != std::string::npos) {
    std::string line = c->buf.substr(0, nl);
    c->buf.erase(0, nl + 1);
    if (line.rfind("P ", 0) == 0) {
      unsigned long long a, b, d, q, rc, dc;
      if (sscanf(line.c_str() + 2, "%llu %llu %llu %llu %llu %llu", &a, &b, &d, &q, &rc, &dc) ==
          6) {
        c->ready = a, c->failed = b, c->deliveries = d, c->requests = q, c->reconnects = rc,
        c->disconnects = dc;
      }
    } else if (line == "R") {
      c->ramp_done = true;
    } else if (line.rfind("D ", 0) == 0) {
      c->stats.deserialize(std::string_view(line).substr(2));
      c->done = true;
    }
  }
}

bool parse_args(int argc, char** argv, Options& o, std::string& error) {
  if (argc < 2) {
    error = "missing mode";
    return false;
  }
  o.mode = argv[1];
  // Fresh channels for every run, so no history of an earlier run is replayed.
  o.prefix = "b" + std::to_string(getpid()) + "-";
  if (o.mode == "-h" || o.mode == "--help") {
    fputs(kUsage, stdout);
    exit(0);
  }
  if (o.mode != "hold" && o.mode != "fanout" && o.mode != "poll" && o.mode != "reconnect") {
    error = "unknown mode " + o.mode;
    return false;
  }
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        error = a + " needs a value";
        return "";
      }
      return argv[++i];
    };
    auto num = [&]() { return atof(val().c_str()); };
    if (a == "--target") {
      std::string v = val();
      if (v == "comet")
        o.target = Target::kComet;
      else if (v == "nchan")
        o.target = Target::kNchan;
      else
        error = "bad --target " + v;
    } else if (a == "--transport") {
      std::string v = val();
      if (v == "ws")
        o.transport = Transport::kWs;
      else if (v == "sse")
        o.transport = Transport::kSse;
      else if (v == "longpoll")
        o.transport = Transport::kLongPoll;
      else if (v == "poll")
        o.transport = Transport::kPoll;
      else if (v == "xhr")
        o.transport = Transport::kXhr;
      else if (v == "iframe")
        o.transport = Transport::kIframe;
      else if (v == "multipart")
        o.transport = Transport::kMultipart;
      else
        error = "bad --transport " + v;
    } else if (a == "--host")
      o.host = val();
    else if (a == "--port")
      o.port = static_cast<int>(num());
    else if (a == "--pub-port")
      o.pub_port = static_cast<int>(num());
    else if (a == "-n" || a == "--n")
      o.n = static_cast<int>(num());
    else if (a == "--channels")
      o.channels = static_cast<int>(num());
    else if (a == "--prefix")
      o.prefix = val();
    else if (a == "--procs")
      o.procs = static_cast<int>(num());
    else if (a == "--max-fds")
      o.max_fds = static_cast<int>(num());
    else if (a == "--threads")
      o.threads = static_cast<int>(num());
    else if (a == "--ramp-concurrency")
      o.ramp_concurrency = static_cast<int>(num());
    else if (a == "--ramp-rate")
      o.ramp_rate = num();
    else if (a == "--ramp-timeout")
      o.ramp_timeout = num();
    else if (a == "--settle")
      o.settle = num();
    else if (a == "--duration")
      o.duration = num();
    else if (a == "--messages")
      o.messages = static_cast<int>(num());
    else if (a == "--rate")
      o.rate = num();
    else if (a == "--size")
      o.size = static_cast<int>(num());
    else if (a == "--publish")
      o.publish = val();
    else if (a == "--pub-conns")
      o.pub_conns = static_cast<int>(num());
    else if (a == "--pub-pipeline")
      o.pub_pipeline = static_cast<int>(num());
    else if (a == "--redis")
      o.redis = val();
    else if (a == "--lua")
      o.lua = val();
    else if (a == "--history")
      o.history = static_cast<int>(num());
    else if (a == "--drain-timeout")
      o.drain_timeout = num();
    else if (a == "--window")
      o.reconnect_window = num();
    else if (a == "--storm-at")
      o.reconnect_at = num();
    else if (a == "--server-pid") {
      std::stringstream ss(val());
      std::string p;
      while (std::getline(ss, p, ','))
        if (!p.empty()) o.server_pids.push_back(atoi(p.c_str()));
    } else if (a == "--no-bind")
      o.bind_source = false;
    else if (a == "--no-probe")
      o.probe = false;
    else if (a == "--tls")
      o.tls = true;
    else if (a == "--tls-ca")
      o.tls_ca = val();
    else if (a == "--tls-sni")
      o.tls_sni = val();
    else if (a == "--ws-deflate")
      o.ws_deflate = true;
    else if (a == "--ws-path")
      o.ws_path = val();
    else if (a == "--multipart-path")
      o.multipart_path = val();
    else if (a == "--sse-path")
      o.sse_path = val();
    else if (a == "--poll-path")
      o.poll_path = val();
    else if (a == "--pub-path")
      o.pub_path = val();
    else if (a == "--label")
      o.label = val();
    else if (a == "--quiet")
      o.quiet = true;
    else
      error = "unknown option " + a;
    if (!error.empty()) return false;
  }
  if (o.port <= 0 || o.port > 65535)
    error = "--port is required";
  else if (o.n < 1 || o.channels < 1 || o.channels > o.n)
    error = "need 1 <= --channels <= -n";
  else if (o.publish != "http" && o.publish != "redis")
    error = "bad --publish";
  else if (o.host.rfind("127.", 0) != 0 && o.host != "::1")
    error = "comet-bench targets loopback only";
  else if (o.duration > 3600 || o.ramp_timeout > 3600)
    error = "runs are bounded to an hour";
  return error.empty();
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

const char* transport_name(Transport t) {
  switch (t) {
    case Transport::kWs:
      return "ws";
    case Transport::kSse:
      return "sse";
    case Transport::kLongPoll:
      return "longpoll";
    case Transport::kPoll:
      return "poll";
    case Transport::kXhr:
      return "xhr";
    case Transport::kIframe:
      return "iframe";
    case Transport::kMultipart:
      return "multipart";
  }
  return "?";
}

}  // namespace

int main_impl(int argc, char** argv) {
  Run r;
  Options& o = r.o;
  std::string error;
  if (!parse_args(argc, argv, o, error)) {
    fprintf(stderr, "comet-bench: %s\n\n%s", error.c_str(), kUsage);
    return 2;
  }
  if (o.messages < 0) {
    if (o.mode == "hold")
      o.messages = o.probe ? o.channels : 0;
    else if (o.mode == "fanout")
      o.messages = 1000;
    else if (o.mode == "poll")
      o.messages = 0;
    else
      o.messages = static_cast<int>(o.rate * o.duration);
  }
  if (o.mode == "reconnect" && o.rate <= 0) {
    fprintf(stderr, "comet-bench: reconnect needs --rate > 0\n");
    return 2;
  }
  r.messages = static_cast<uint64_t>(o.messages);
  signal(SIGPIPE, SIG_IGN);

  r.mem_before = sample_memory(o.server_pids);
  const int procs = o.procs > 0 ? o.procs : (o.n + o.max_fds - 1) / o.max_fds;
  r.t_start = now_ns();
  for (int p = 0; p < procs; p++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      perror("socketpair");
      return 2;
    }
    const int first = static_cast<int>(static_cast<int64_t>(o.n) * p / procs);
    const int last = static_cast<int>(static_cast<int64_t>(o.n) * (p + 1) / procs);
    fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      close(sv[0]);
      for (Child& c : r.children) close(c.fd);
      _exit(run_client_process(o, sv[1], p, first, last));
    }
    close(sv[1]);
    Child c;
    c.pid = pid;
    c.fd = sv[0];
    r.children.push_back(std::move(c));
  }

  r.base = event_base_new();
  if (r.messages > 0) {
    r.pub.reset(make_publisher(r.base, o, error));
    if (!r.pub) {
      fprintf(stderr, "comet-bench: %s\n", error.c_str());
      for (Child& c : r.children) kill(c.pid, SIGTERM);
      return 2;
    }
  } else {
    // Nothing to publish: a publisher that is done at once.
    struct Null : Publisher {
      void start(uint64_t, double, void (*done)(void*), void* a) override { done(a); }
      uint64_t sent() const override { return 0; }
      uint64_t acked() const override { return 0; }
      uint64_t errors() const override { return 0; }
      int64_t first_send_ns() const override { return 0; }
      int64_t last_send_ns() const override { return 0; }
    };
    r.pub = std::make_unique<Null>();
  }
  for (Child& c : r.children) {
    c.ev = event_new(r.base, c.fd, EV_READ | EV_PERSIST, on_child, &r);
    event_add(c.ev, nullptr);
  }
  r.timer = event_new(r.base, -1, EV_PERSIST, on_timer, &r);
  timeval tv{0, 5000};
  event_add(r.timer, &tv);
  event_base_dispatch(r.base);

  Stats s;
  for (Child& c : r.children) {
    int status = 0;
    waitpid(c.pid, &status, 0);
    s.merge(c.stats);
    if (c.ev != nullptr) event_free(c.ev);
    if (c.fd >= 0) close(c.fd);
  }
  event_free(r.timer);
  // The publisher's events live on r.base: declared after it, it is destroyed first.
  struct BaseFree {
    event_base* b;
    ~BaseFree() { event_base_free(b); }
  } base_free{r.base};
  std::unique_ptr<Publisher> pub = std::move(r.pub);

  // ---- results ----
  const double ramp_s = secs(r.t_ramp_done - r.t_start);
  const double ramp_rate = ramp_s > 0 ? static_cast<double>(s.ready) / ramp_s : 0;
  const int64_t pss_delta =
      static_cast<int64_t>(r.mem_after.pss_kib) - static_cast<int64_t>(r.mem_before.pss_kib);
  const int64_t rss_delta =
      static_cast<int64_t>(r.mem_after.rss_kib) - static_cast<int64_t>(r.mem_before.rss_kib);
  const double pss_per =
      s.ready ? static_cast<double>(pss_delta) * 1024 / static_cast<double>(s.ready) : 0;
  const double rss_per =
      s.ready ? static_cast<double>(rss_delta) * 1024 / static_cast<double>(s.ready) : 0;
  const int64_t first_pub = pub->first_send_ns();
  const double delivery_span =
      s.last_recv_ns > first_pub && first_pub > 0 ? secs(s.last_recv_ns - first_pub) : 0;
  const double dps = delivery_span > 0 ? static_cast<double>(s.deliveries) / delivery_span : 0;
  const double pub_span = secs(pub->last_send_ns() - pub->first_send_ns());
  const double pub_rate = pub_span > 0 ? static_cast<double>(pub->sent() - 1) / pub_span : 0;
  const double poll_span = secs(r.poll_t_end - r.poll_t_start);
  const double rps =
      poll_span > 0 ? static_cast<double>(r.poll_req_end - r.poll_req_start) / poll_span : 0;
  const double storm_span =
      r.t_storm > 0 && s.last_ready_ns > r.t_storm ? secs(s.last_ready_ns - r.t_storm) : 0;
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  // Server CPU time, which (unlike wall-clock rates) does not depend on what else the
  // machine runs: during the ramp per connection, and from the end of the ramp to the
  // end of the run per delivered message (or per answered poll request).
  const double cpu_ramp_ms = static_cast<double>(r.mem_after.cpu_ns - r.mem_before.cpu_ns) / 1e6;
  const double cpu_run_ms = static_cast<double>(r.mem_end.cpu_ns - r.mem_after.cpu_ns) / 1e6;
  const uint64_t work =
      o.mode == "poll" && o.transport == Transport::kPoll ? s.requests : s.deliveries;
  const double cpu_per_conn_us = s.ready ? cpu_ramp_ms * 1000 / static_cast<double>(s.ready) : 0;
  const double cpu_per_item_us = work ? cpu_run_ms * 1000 / static_cast<double>(work) : 0;
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  const double client_cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                              static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  getrusage(RUSAGE_SELF, &ru);
  const double parent_cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                              static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;

  printf(
      "{\"mode\":\"%s\",\"target\":\"%s\",\"transport\":\"%s\",\"label\":\"%s\",\"n\":%d,"
      "\"channels\":%d,"
      "\"procs\":%d,\"threads\":%d,\"ready\":%" PRIu64 ",\"failed\":%" PRIu64
      ",\"disconnects\":%" PRIu64
      ",\"ramp_s\":%.3f,\"ramp_per_s\":%.0f,"
      "\"server_processes\":%d,\"pss_before_kib\":%" PRIu64 ",\"pss_after_kib\":%" PRIu64
      ",\"pss_end_kib\":%" PRIu64 ",\"rss_before_kib\":%" PRIu64 ",\"rss_after_kib\":%" PRIu64
      ",\"bytes_per_conn_pss\":%.0f,\"bytes_per_conn_rss\":%.0f,"
      "\"published\":%" PRIu64 ",\"publish_errors\":%" PRIu64
      ",\"publish_rate\":%.0f,\"publish\":\"%s\","
      "\"deliveries\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"dup\":%" PRIu64
      ",\"resets\":%" PRIu64 ",\"errors\":%" PRIu64
      ",\"deliveries_per_s\":%.0f,\"last_delivery_ms\":%.3f,"
      "\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
      "\"requests\":%" PRIu64
      ",\"requests_per_s\":%.0f,"
      "\"reconnected\":%" PRIu64
      ",\"storm_s\":%.3f,\"resume_ms\":{\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f},"
      "\"server_cpu_ramp_ms\":%.1f,\"server_cpu_run_ms\":%.1f,\"server_cpu_us_per_conn\":%.2f,"
      "\"server_cpu_us_per_item\":%.2f,\"client_cpu_s\":%.2f,\"tls\":%s,"
      "\"ws_deflate\":%s,\"ws_deflate_conns\":%" PRIu64 ",\"ws_deflated_deliveries\":%" PRIu64
      ",\"rx_bytes\":%" PRIu64
      ",\"rx_bytes_per_delivery\":%.1f,\"wire_bytes_per_delivery\":%.1f}\n",
      o.mode.c_str(), o.target == Target::kComet ? "comet" : "nchan", transport_name(o.transport),
      json_escape(o.label).c_str(), o.n, o.channels, procs, o.threads, s.ready, s.failed,
      s.disconnects, ramp_s, ramp_rate, r.mem_after.processes, r.mem_before.pss_kib,
      r.mem_after.pss_kib, r.mem_end.pss_kib, r.mem_before.rss_kib, r.mem_after.rss_kib, pss_per,
      rss_per, pub->sent(), pub->errors(), pub_rate, o.publish.c_str(), s.deliveries, r.expected,
      s.lost, s.dup, s.resets, s.errors, dps, us(s.latency.max()) / 1000.0,
      us(s.latency.quantile(0.5)), us(s.latency.quantile(0.9)), us(s.latency.quantile(0.99)),
      us(s.latency.quantile(0.999)), us(s.latency.max()), s.requests, rps, s.reconnects, storm_span,
      us(s.resume.quantile(0.5)) / 1000, us(s.resume.quantile(0.99)) / 1000,
      us(s.resume.max()) / 1000, cpu_ramp_ms, cpu_run_ms, cpu_per_conn_us, cpu_per_item_us,
      client_cpu_s + parent_cpu_s, o.tls ? "true" : "false", o.ws_deflate ? "true" : "false",
      s.ws_deflate_conns, s.ws_deflated, s.rx_bytes,
      s.deliveries ? static_cast<double>(s.rx_bytes) / static_cast<double>(s.deliveries) : 0.0,
      s.deliveries ? static_cast<double>(s.ws_msg_bytes) / static_cast<double>(s.deliveries) : 0.0);
  fflush(stdout);

  fprintf(stderr,
          "\n== comet-bench %s: %s over %s%s, %d clients on %d channel(s), %d process(es) ==\n",
          o.mode.c_str(), o.target == Target::kComet ? "comet" : "nchan",
          transport_name(o.transport), o.tls ? " (TLS)" : "", o.n, o.channels, procs);
  fprintf(stderr,
          "connections: %" PRIu64 " ready, %" PRIu64 " failed, %" PRIu64
          " dropped; ramp %.2fs (%.0f/s)\n",
          s.ready, s.failed, s.disconnects, ramp_s, ramp_rate);
  if (!o.server_pids.empty())
    fprintf(stderr,
            "server memory (%d processes): PSS %" PRIu64 " -> %" PRIu64
            " KiB = %.0f B/conn (RSS %.0f B/conn)\n",
            r.mem_after.processes, r.mem_before.pss_kib, r.mem_after.pss_kib, pss_per, rss_per);
  if (!o.server_pids.empty())
    fprintf(stderr,
            "server CPU: ramp %.0f ms (%.1f us/conn), after the ramp %.0f ms (%.2f us per %s); "
            "client CPU %.2f s\n",
            cpu_ramp_ms, cpu_per_conn_us, cpu_run_ms, cpu_per_item_us,
            o.mode == "poll" && o.transport == Transport::kPoll ? "request" : "delivery",
            client_cpu_s + parent_cpu_s);
  if (pub->sent() > 0) {
    fprintf(stderr, "published %" PRIu64 " (%" PRIu64 " errors) at %.0f/s via %s\n", pub->sent(),
            pub->errors(), pub_rate, o.publish.c_str());
    fprintf(stderr,
            "deliveries %" PRIu64 "/%" PRIu64 " (%.0f/s); lost %" PRIu64 ", duplicated %" PRIu64
            ", resets %" PRIu64 ", errors %" PRIu64 "\n",
            s.deliveries, r.expected, dps, s.lost, s.dup, s.resets, s.errors);
    fprintf(stderr, "latency us: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n",
            us(s.latency.quantile(0.5)), us(s.latency.quantile(0.9)), us(s.latency.quantile(0.99)),
            us(s.latency.quantile(0.999)), us(s.latency.max()));
  }
  if (o.mode == "poll")
    fprintf(stderr, "requests %" PRIu64 " total, %.0f/s over %.2fs\n", s.requests, rps, poll_span);
  if (o.mode == "reconnect")
    fprintf(stderr, "reconnected %" PRIu64 "; storm %.3fs; resume ms p50 %.2f p99 %.2f max %.2f\n",
            s.reconnects, storm_span, us(s.resume.quantile(0.5)) / 1000,
            us(s.resume.quantile(0.99)) / 1000, us(s.resume.max()) / 1000);
  bool bad = s.lost > 0 || s.dup > 0 || s.failed > 0 || s.disconnects > 0 || s.resets > 0 ||
             r.pub_stalled || pub->errors() > 0 || s.deliveries < r.expected ||
             s.ready < static_cast<uint64_t>(o.n);
  if (o.mode == "reconnect" && s.reconnects < s.ready) bad = true;
  fprintf(stderr, "%s\n", bad ? "RESULT: FAIL" : "RESULT: OK");
  return bad ? 1 : 0;
}

}  // namespace bench

int main(int argc, char** argv) { return bench::main_impl(argc, argv); }
