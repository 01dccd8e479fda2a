// comet-bench publishers: HTTP POST /pub/<channel> over keep-alive pipelined
// connections, or EVALSHA of bridge/lua/publish.lua over one hiredis connection.
// Message k goes to channel k % C; a channel always uses the same connection, so its
// messages reach the server in publish order.
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "bench.h"
#include "http_util.h"

namespace bench {
namespace {

class PacedPublisher : public Publisher {
 public:
  PacedPublisher(event_base* base, const Options& o) : base_(base), o_(o) {}
  ~PacedPublisher() override {
    if (tick_ != nullptr) event_free(tick_);
  }
  void start(uint64_t count, double rate, void (*done)(void*), void* arg) override {
    count_ = count;
    rate_ = rate;
    done_ = done;
    done_arg_ = arg;
    t0_ = now_ns();
    if (count_ == 0) {
      done_(done_arg_);
      return;
    }
    tick_ = event_new(base_, -1, EV_PERSIST, on_tick, this);
    timeval tv{0, 500};
    event_add(tick_, &tv);
    pump();
  }
  uint64_t sent() const override { return sent_; }
  uint64_t acked() const override { return acked_; }
  uint64_t errors() const override { return errors_; }
  int64_t first_send_ns() const override { return first_send_; }
  int64_t last_send_ns() const override { return last_send_; }

 protected:
  // Sends message `k` (to channel k % C) if its connection has room; false if not.
  virtual bool try_send(uint64_t k, int channel, uint64_t seq) = 0;

  void pump() {
    uint64_t due = count_;
    if (rate_ > 0) {
      const double elapsed = static_cast<double>(now_ns() - t0_) / 1e9;
      due = std::min<uint64_t>(count_, static_cast<uint64_t>(elapsed * rate_) + 1);
    }
    while (sent_ < due) {
      const int channel = static_cast<int>(sent_ % static_cast<uint64_t>(o_.channels));
      const uint64_t seq = sent_ / static_cast<uint64_t>(o_.channels) + 1;
      if (!try_send(sent_, channel, seq)) break;
      const int64_t now = now_ns();
      if (sent_ == 0) first_send_ = now;
      last_send_ = now;
      sent_++;
    }
    if (sent_ == count_ && tick_ != nullptr) {
      event_free(tick_);
      tick_ = nullptr;
    }
  }
  void on_answer(bool ok) {
    acked_++;
    if (!ok) errors_++;
    if (acked_ == count_) {
      done_(done_arg_);
      return;
    }
    pump();
  }
  std::string payload(uint64_t seq) const { return make_payload(seq, now_ns(), o_.size); }

  event_base* base_;
  const Options& o_;

 private:
  static void on_tick(evutil_socket_t, short, void* arg) {
    static_cast<PacedPublisher*>(arg)->pump();
  }
  event* tick_ = nullptr;
  uint64_t count_ = 0, sent_ = 0, acked_ = 0, errors_ = 0;
  double rate_ = 0;
  int64_t t0_ = 0, first_send_ = 0, last_send_ = 0;
  void (*done_)(void*) = nullptr;
  void* done_arg_ = nullptr;
};

class HttpPublisher : public PacedPublisher {
 public:
  HttpPublisher(event_base* base, const Options& o) : PacedPublisher(base, o) {}
  ~HttpPublisher() override {
    for (auto& c : conns_) {
      if (c->ev != nullptr) event_free(c->ev);
      if (c->fd >= 0) close(c->fd);
    }
  }
  bool connect_all(std::string& error) {
    for (int i = 0; i < std::max(1, o_.pub_conns); i++) {
      auto c = std::make_unique<Conn>();
      c->self = this;
      if (!open(*c)) {
        error = std::string("publisher cannot connect: ") + strerror(errno);
        return false;
      }
      conns_.push_back(std::move(c));
    }
    return true;
  }

 private:
  struct Conn {
    HttpPublisher* self = nullptr;
    int fd = -1;
    event* ev = nullptr;
    std::string in, out;
    int outstanding = 0;
    bool writing = false;
  };

  // (Re)connects `c`, blocking: loopback answers at once.
  bool open(Conn& c) {
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(o_.pub_port != 0 ? o_.pub_port : o_.port));
    inet_pton(AF_INET, o_.host.c_str(), &dst.sin_addr);
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
      close(c.fd);
      c.fd = -1;
      return false;
    }
    evutil_make_socket_nonblocking(c.fd);
    c.in.clear();
    c.out.clear();
    c.writing = false;
    if (c.ev != nullptr) event_free(c.ev);
    c.ev = event_new(base_, c.fd, EV_READ | EV_PERSIST, on_event, &c);
    event_add(c.ev, nullptr);
    return true;
  }

  bool try_send(uint64_t, int channel, uint64_t seq) override {
    Conn& c = *conns_[static_cast<size_t>(channel) % conns_.size()];
    // A keep-alive connection the server closed while idle (e.g. during a long ramp).
    if (c.fd < 0 && c.outstanding == 0 && !open(c)) return false;
    if (c.fd < 0 || c.outstanding >= o_.pub_pipeline) return false;
    const std::string body = payload(seq);
    std::string req =
        "POST " + o_.pub_path + url_encode(channel_name(o_, channel)) +
        " HTTP/1.1\r\nHost: " + o_.host +
        "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    c.out += req;
    c.outstanding++;
    flush(c);
    return true;
  }

  void flush(Conn& c) {
    while (!c.out.empty()) {
      ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      fail(c);
      return;
    }
    const bool want_write = !c.out.empty();
    if (want_write != c.writing) {
      c.writing = want_write;
      event_del(c.ev);
      event_assign(c.ev, base_, c.fd,
                   static_cast<short>(EV_READ | EV_PERSIST | (want_write ? EV_WRITE : 0)), on_event,
                   &c);
      event_add(c.ev, nullptr);
    }
  }

  void fail(Conn& c) {
    if (c.outstanding > 0)
      fprintf(stderr, "comet-bench: publisher connection lost with %d requests outstanding\n",
              c.outstanding);
    event_del(c.ev);
    close(c.fd);
    c.fd = -1;
    const int lost = c.outstanding;
    c.outstanding = 0;
    for (int i = 0; i < lost; i++) on_answer(false);
  }

  static void on_event(evutil_socket_t, short what, void* arg) {
    Conn& c = *static_cast<Conn*>(arg);
    HttpPublisher& self = *c.self;
    if (what & EV_WRITE) self.flush(c);
    if (!(what & EV_READ) || c.fd < 0) return;
    char buf[16384];
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      self.fail(c);
      return;
    }
    if (n < 0) return;
    c.in.append(buf, static_cast<size_t>(n));
    for (;;) {
      HttpHead h;
      if (!parse_head(c.in, h)) break;
      size_t total;
      if (h.chunked) {
        std::string body;
        size_t m = dechunk_complete(std::string_view(c.in).substr(h.header_len), body);
        if (m == 0) break;
        if (m == SIZE_MAX) {
          self.fail(c);
          return;
        }
        total = h.header_len + m;
      } else {
        const size_t cl = h.content_length < 0 ? 0 : static_cast<size_t>(h.content_length);
        if (c.in.size() < h.header_len + cl) break;
        total = h.header_len + cl;
      }
      if (h.status < 200 || h.status >= 300) {
        static int reported = 0;
        if (reported++ < 5)
          fprintf(stderr, "comet-bench: publish answered %d: %.200s\n", h.status,
                  c.in.substr(h.header_len, total - h.header_len).c_str());
      }
      c.in.erase(0, total);
      c.outstanding--;
      self.on_answer(h.status >= 200 && h.status < 300);
      if (c.fd < 0) return;
    }
  }

  std::vector<std::unique_ptr<Conn>> conns_;
};

class RedisPublisher : public PacedPublisher {
 public:
  RedisPublisher(event_base* base, const Options& o) : PacedPublisher(base, o) {}
  ~RedisPublisher() override {
    if (ac_ != nullptr) redisAsyncDisconnect(ac_);
  }
  bool connect_all(std::string& error) {
    std::string host = o_.redis;
    int port = 6379;
    size_t colon = host.rfind(':');
    if (colon != std::string::npos) {
      port = atoi(host.c_str() + colon + 1);
      host.resize(colon);
    }
    std::ifstream f(o_.lua);
    if (!f) {
      error = "cannot read " + o_.lua;
      return false;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string script = ss.str();
    redisContext* c = redisConnect(host.c_str(), port);
    if (c == nullptr || c->err) {
      error = "cannot connect to Redis at " + o_.redis;
      if (c != nullptr) redisFree(c);
      return false;
    }
    auto* r =
        static_cast<redisReply*>(redisCommand(c, "SCRIPT LOAD %b", script.data(), script.size()));
    if (r == nullptr || r->type != REDIS_REPLY_STRING) {
      error = "SCRIPT LOAD failed";
      if (r != nullptr) freeReplyObject(r);
      redisFree(c);
      return false;
    }
    sha_.assign(r->str, r->len);
    freeReplyObject(r);
    redisFree(c);
    ac_ = redisAsyncConnect(host.c_str(), port);
    if (ac_ == nullptr || ac_->err) {
      error = "cannot connect to Redis (async)";
      return false;
    }
    redisLibeventAttach(ac_, base_);
    return true;
  }

 private:
  bool try_send(uint64_t, int channel, uint64_t seq) override {
    if (outstanding_ >= o_.pub_pipeline * std::max(1, o_.pub_conns)) return false;
    const std::string ch = channel_name(o_, channel);
    const std::string k1 = "comet:{" + ch + "}:seq", k2 = "comet:{" + ch + "}:epoch",
                      k3 = "comet:{" + ch + "}:log", pubch = "comet:{" + ch + "}";
    const std::string data = payload(seq);
    const std::string hist = std::to_string(o_.history);
    const char* argv[] = {"EVALSHA",     sha_.c_str(), "3", k1.c_str(),   k2.c_str(), k3.c_str(),
                          pubch.c_str(), data.c_str(), "",  hist.c_str(), "0"};
    size_t lens[11];
    for (int i = 0; i < 11; i++) lens[i] = strlen(argv[i]);
    outstanding_++;
    redisAsyncCommandArgv(ac_, on_reply, this, 11, argv, lens);
    return true;
  }
  static void on_reply(redisAsyncContext*, void* r, void* arg) {
    auto* self = static_cast<RedisPublisher*>(arg);
    auto* reply = static_cast<redisReply*>(r);
    const bool ok = reply != nullptr && reply->type == REDIS_REPLY_ARRAY;
    if (!ok && reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
      static int reported = 0;
      if (reported++ < 5) fprintf(stderr, "comet-bench: EVALSHA error: %s\n", reply->str);
    }
    self->outstanding_--;
    self->on_answer(ok);
  }
  redisAsyncContext* ac_ = nullptr;
  std::string sha_;
  int outstanding_ = 0;
};

}  // namespace

Publisher* make_publisher(event_base* base, const Options& o, std::string& error) {
  if (o.publish == "redis") {
    auto p = std::make_unique<RedisPublisher>(base, o);
    if (!p->connect_all(error)) return nullptr;
    return p.release();
  }
  auto p = std::make_unique<HttpPublisher>(base, o);
  if (!p->connect_all(error)) return nullptr;
  return p.release();
}

}  // namespace bench
