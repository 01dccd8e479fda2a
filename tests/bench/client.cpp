// comet-bench subscriber side: one forked process holds a share of the subscribers,
// spread over event-loop threads. Each connection is a plain non-blocking socket with
// one libevent event; the parsers below speak just enough WebSocket, SSE and HTTP/1.1
// to read what Comet Sidecar and Nchan send. With --tls the same socket carries an
// OpenSSL client (non-blocking handshake driven by that one event, then SSL_read /
// SSL_write); without it nothing below touches OpenSSL.
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <thread>

#include "bench.h"
#include "http_util.h"
#include "rapidjson/document.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace bench {
namespace {

// kTls: TCP connected, TLS handshake in progress (--tls only).
enum class St : uint8_t { kIdle, kConnecting, kTls, kHeaders, kStream, kClosed, kFailed };

struct Thread;

struct Sub {
  Thread* th = nullptr;
  event* ev = nullptr;
  SSL* ssl = nullptr;  // --tls only
  int fd = -1;
  int channel = 0;
  uint32_t gidx = 0;
  St st = St::kIdle;
  bool ready = false;         // has been subscribed once (counted in Stats::ready)
  bool live = false;          // subscribed on the current connection
  bool reconnecting = false;  // storm: waiting to be subscribed again
  bool chunked = false;
  bool poll_close = false;  // poll answer had Connection: close
  bool deflate = false;     // WebSocket: permessage-deflate accepted (--ws-deflate)
  uint8_t attempts = 0;
  uint8_t tls_ev = 0;       // TLS handshake: what s.ev waits for (0 none, EV_READ, EV_WRITE)
  uint16_t gen = 0;         // bumped per connection attempt
  uint8_t chunk_state = 0;  // 0 size line, 1 data, 2 CRLF after data
  uint64_t chunk_left = 0;
  uint64_t next_seq = 1;
  int64_t t_start = 0;
  std::string in;    // bytes read, not yet consumed
  std::string body;  // SSE: de-chunked stream text not yet consumed (CR removed)
  std::string pos;   // comet WS: "EPOCH.ID"; SSE: last id; comet poll: cursor; nchan poll: Etag
  std::string pos2;  // nchan poll: Last-Modified
};

enum Cmd : int { kCmdNone = 0, kCmdStorm = 1, kCmdStop = 2 };

struct Thread {
  const Options* o = nullptr;
  int index = 0;
  event_base* base = nullptr;
  event* tick = nullptr;
  event* cmd_ev = nullptr;
  std::vector<Sub> subs;
  size_t next_start = 0;
  int in_flight = 0;
  int64_t t0 = 0;
  double rate_share = 0;  // ramp rate for this thread
  uint64_t started_fresh = 0;
  std::vector<Sub*> retry;
  std::vector<std::pair<int64_t, Sub*>> storm;  // (when, sub), sorted
  size_t storm_next = 0;
  sockaddr_in dst{};
  SSL_CTX* ssl_ctx = nullptr;  // --tls: shared by the process's threads
  std::string host_header;
  Stats st;
  bool stopping = false;
  // read by the control thread
  std::atomic<uint64_t> a_ready{0}, a_failed{0}, a_deliveries{0}, a_requests{0}, a_reconnects{0},
      a_disconnects{0};
  std::atomic<bool> ramp_done{false};
  std::atomic<int> cmd{kCmdNone};
  std::atomic<uint64_t> published{0};
  std::vector<char> rbuf = std::vector<char>(1 << 16);
  std::mt19937 rng;
  // --ws-deflate: one raw inflate stream per thread, reset per message (the servers
  // answer with no context takeover, so every message stands alone).
  z_stream zs{};
  bool zs_ready = false;
  std::string inflated;
  ~Thread() {
    if (zs_ready) inflateEnd(&zs);
  }
};

void on_sub_event(evutil_socket_t fd, short what, void* arg);
void process_input(Sub& s);
void start_connection(Sub& s);
void close_connection(Sub& s);
bool send_bytes(Sub& s, std::string_view bytes);

const Options& opt(const Sub& s) { return *s.th->o; }
bool is_comet(const Sub& s) { return opt(s).target == Target::kComet; }

// ---- bookkeeping -----------------------------------------------------------------

void mark_failed(Sub& s) {
  Thread& t = *s.th;
  close_connection(s);
  if ((!s.ready || s.reconnecting) && !t.stopping && s.attempts < 5) {
    // A refused or reset attempt during the ramp (listen queue overflow): try again.
    s.attempts++;
    s.st = St::kIdle;
    t.retry.push_back(&s);
    return;
  }
  s.st = St::kFailed;
  if (!s.ready) {
    t.in_flight--;
    t.st.failed++;
    t.a_failed.fetch_add(1, std::memory_order_relaxed);
  } else if (!t.stopping) {
    t.st.disconnects++;
    t.a_disconnects.fetch_add(1, std::memory_order_relaxed);
  }
}

void mark_live(Sub& s, int64_t now) {
  Thread& t = *s.th;
  if (s.live) return;
  s.live = true;
  if (!s.ready) {
    s.ready = true;
    t.in_flight--;
    t.st.ready++;
    t.st.last_ready_ns = now;
    t.a_ready.fetch_add(1, std::memory_order_relaxed);
  } else if (s.reconnecting) {
    s.reconnecting = false;
    t.st.reconnects++;
    t.st.resume.add(static_cast<uint64_t>(now - s.t_start));
    t.st.last_ready_ns = now;
    t.a_reconnects.fetch_add(1, std::memory_order_relaxed);
  }
}

void handle_payload(Sub& s, std::string_view data, int64_t now) {
  Stats& st = s.th->st;
  uint64_t seq;
  int64_t t_ns;
  if (!parse_payload(data, seq, t_ns)) {
    st.errors++;
    return;
  }
  st.deliveries++;
  s.th->a_deliveries.fetch_add(1, std::memory_order_relaxed);
  if (st.first_recv_ns == 0) st.first_recv_ns = now;
  st.last_recv_ns = now;
  st.latency.add(now > t_ns ? static_cast<uint64_t>(now - t_ns) : 0);
  if (seq == s.next_seq) {
    s.next_seq++;
  } else if (seq < s.next_seq) {
    st.dup++;
  } else {
    st.lost += seq - s.next_seq;
    s.next_seq = seq + 1;
  }
}

// ---- tiny JSON field extraction for the fixed-shape comet envelope ------------------

bool json_string_field(std::string_view j, std::string_view key, std::string_view& out) {
  std::string pat = "\"" + std::string(key) + "\":\"";
  size_t p = j.find(pat);
  if (p == std::string_view::npos) return false;
  p += pat.size();
  size_t e = j.find('"', p);
  if (e == std::string_view::npos) return false;
  out = j.substr(p, e - p);
  return out.find('\\') == std::string_view::npos;  // escapes: let RapidJSON decide
}

// The "data" string as it stands in the envelope, escapes left in: the payload's
// "s<seq>t<ns>" prefix has none, and that is all parse_payload reads (the --size padding
// is JSON-like text, whose quotes the envelope escapes).
bool json_data_field_raw(std::string_view j, std::string_view& out) {
  static constexpr std::string_view kPat = "\"data\":\"";
  size_t p = j.find(kPat);
  if (p == std::string_view::npos) return false;
  p += kPat.size();
  size_t e = p;
  for (;;) {
    e = j.find('"', e);
    if (e == std::string_view::npos) return false;
    size_t bs = 0;
    while (e - bs > p && j[e - bs - 1] == '\\') bs++;
    if (bs % 2 == 0) break;
    e++;
  }
  out = j.substr(p, e - p);
  return true;
}

bool json_int_field(std::string_view j, std::string_view key, uint64_t& out) {
  std::string pat = "\"" + std::string(key) + "\":";
  size_t p = j.find(pat);
  if (p == std::string_view::npos) return false;
  p += pat.size();
  uint64_t v = 0;
  size_t i = p;
  while (i < j.size() && j[i] >= '0' && j[i] <= '9')
    v = v * 10 + static_cast<uint64_t>(j[i++] - '0');
  if (i == p) return false;
  out = v;
  return true;
}

// One comet JSON object: an envelope or a {"type":...} notice.
void handle_comet_object(Sub& s, const rapidjson::Value& v, int64_t now) {
  if (!v.IsObject()) {
    s.th->st.errors++;
    return;
  }
  auto type = v.FindMember("type");
  if (type != v.MemberEnd() && type->value.IsString()) {
    std::string_view ty(type->value.GetString(), type->value.GetStringLength());
    auto ep = v.FindMember("epoch");
    auto id = v.FindMember("id");
    if (ty == "reset") s.th->st.resets++;
    if (ty == "error") s.th->st.errors++;
    if ((ty == "subscribed" || ty == "reset") && ep != v.MemberEnd() && ep->value.IsString() &&
        id != v.MemberEnd() && id->value.IsUint64()) {
      s.pos = std::string(ep->value.GetString()) + "." + std::to_string(id->value.GetUint64());
    }
    if (ty == "open" || ty == "reconnect") {
      // XHR streaming: the cursor covers our one channel ("ch@EPOCH.ID").
      auto cursor = v.FindMember("cursor");
      if (cursor != v.MemberEnd() && cursor->value.IsString()) {
        std::string_view c(cursor->value.GetString(), cursor->value.GetStringLength());
        const size_t at = c.rfind('@');
        if (at != std::string_view::npos) s.pos.assign(c.substr(at + 1));
      }
    }
    if (ty == "subscribed" || ty == "open") mark_live(s, now);
    return;
  }
  auto data = v.FindMember("data");
  auto ep = v.FindMember("epoch");
  auto id = v.FindMember("id");
  if (data == v.MemberEnd() || !data->value.IsString()) {
    s.th->st.errors++;
    return;
  }
  if (ep != v.MemberEnd() && ep->value.IsString() && id != v.MemberEnd() && id->value.IsUint64())
    s.pos = std::string(ep->value.GetString()) + "." + std::to_string(id->value.GetUint64());
  handle_payload(s, std::string_view(data->value.GetString(), data->value.GetStringLength()), now);
}

void handle_comet_ws_text(Sub& s, std::string_view j, int64_t now) {
  if (j.rfind("{\"type\"", 0) != 0) {
    std::string_view data, epoch;
    uint64_t id;
    if (json_data_field_raw(j, data) && json_string_field(j, "epoch", epoch) &&
        json_int_field(j, "id", id)) {
      // Fast path: a plain envelope (its data read raw, escapes and all: see above).
      s.pos.assign(epoch);
      s.pos += '.';
      s.pos += std::to_string(id);
      handle_payload(s, data, now);
      return;
    }
  }
  rapidjson::Document d;
  d.Parse(j.data(), j.size());
  if (d.HasParseError()) {
    s.th->st.errors++;
    return;
  }
  handle_comet_object(s, d, now);
}

// ---- requests ----------------------------------------------------------------------

std::string build_request(Sub& s) {
  const Options& o = opt(s);
  const std::string ch = channel_name(o, s.channel);
  std::string r = "GET ";
  switch (o.transport) {
    case Transport::kWs:
      r += o.ws_path + "?ch=" + url_encode(ch);
      if (is_comet(s) && !s.pos.empty()) r += "&cursor=" + url_encode(ch + "@" + s.pos);
      r += " HTTP/1.1\r\nHost: " + s.th->host_header +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
      if (o.ws_deflate)
        r += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
      r += "\r\n";
      break;
    case Transport::kSse:
      r += o.sse_path + "?ch=" + url_encode(ch) + " HTTP/1.1\r\nHost: " + s.th->host_header +
           "\r\nAccept: text/event-stream\r\n";
      if (!s.pos.empty()) r += "Last-Event-ID: " + s.pos + "\r\n";
      r += "\r\n";
      break;
    case Transport::kXhr:
    case Transport::kIframe:
    case Transport::kMultipart:
      if (!is_comet(s)) {  // Nchan: http-multipart, resumed like its long-poll
        // Nchan picks its http-multipart subscriber by the Accept header.
        r += o.multipart_path + "?ch=" + url_encode(ch) +
             " HTTP/1.1\r\nHost: " + s.th->host_header + "\r\nAccept: multipart/mixed\r\n\r\n";
        break;
      }
      r += std::string("/stream?format=") + (o.transport == Transport::kXhr      ? "xhr"
                                             : o.transport == Transport::kIframe ? "iframe&cb=c"
                                                                                 : "multipart");
      r += "&ch=" + url_encode(ch);
      if (!s.pos.empty()) r += "&cursor=" + url_encode(ch + "@" + s.pos);
      r += " HTTP/1.1\r\nHost: " + s.th->host_header + "\r\n\r\n";
      break;
    case Transport::kLongPoll:
    case Transport::kPoll:
      r += o.poll_path + "?ch=" + url_encode(ch);
      if (is_comet(s)) {
        if (!s.pos.empty()) r += "&cursor=" + url_encode(s.pos);
        // The first long-poll asks with wait=0 for the current cursor, so nothing
        // published after the client counts as ready can slip past it.
        if (o.transport == Transport::kPoll || s.pos.empty()) r += "&wait=0";
        r += " HTTP/1.1\r\nHost: " + s.th->host_header + "\r\n\r\n";
      } else {
        r += " HTTP/1.1\r\nHost: " + s.th->host_header + "\r\n";
        if (!s.pos2.empty()) r += "If-Modified-Since: " + s.pos2 + "\r\n";
        if (!s.pos.empty()) r += "If-None-Match: " + s.pos + "\r\n";
        r += "\r\n";
      }
      break;
  }
  return r;
}

bool send_tls(Sub& s, std::string_view bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ERR_clear_error();
    const int n = SSL_write(s.ssl, bytes.data() + off, static_cast<int>(bytes.size() - off));
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    // Requests are small: wait (as the plain path does) and retry with the same bytes.
    const int e = SSL_get_error(s.ssl, n);
    const short want = e == SSL_ERROR_WANT_WRITE ? POLLOUT : e == SSL_ERROR_WANT_READ ? POLLIN : 0;
    if (want != 0) {
      pollfd p{s.fd, want, 0};
      if (poll(&p, 1, 1000) > 0) continue;
    }
    return false;
  }
  return true;
}

bool send_bytes(Sub& s, std::string_view bytes) {
  if (s.ssl != nullptr) return send_tls(s, bytes);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = send(s.fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Requests are small; a full send buffer here means the peer is stuck.
      pollfd p{s.fd, POLLOUT, 0};
      if (poll(&p, 1, 1000) > 0) continue;
    }
    return false;
  }
  return true;
}

void send_ws_frame(Sub& s, uint8_t opcode, std::string_view payload) {
  std::string f;
  f += static_cast<char>(0x80 | opcode);
  if (payload.size() < 126) {
    f += static_cast<char>(0x80 | payload.size());
  } else {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>((payload.size() >> 8) & 0xff);
    f += static_cast<char>(payload.size() & 0xff);
  }
  const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
  f.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < payload.size(); i++) f += static_cast<char>(payload[i] ^ mask[i & 3]);
  send_bytes(s, f);
}

// ---- response parsing -------------------------------------------------------------

// Moves de-chunked (or plain) stream bytes from s.in to s.body, dropping CRs.
// Returns false when the chunked stream ended or is malformed.
bool pump_stream(Sub& s) {
  auto append = [&](std::string_view v) {
    for (char c : v)
      if (c != '\r') s.body += c;
  };
  if (!s.chunked) {
    append(s.in);
    s.in.clear();
    return true;
  }
  size_t p = 0;
  bool ok = true;
  for (;;) {
    if (s.chunk_state == 0) {
      size_t eol = s.in.find("\r\n", p);
      if (eol == std::string::npos) break;
      char* endp;
      unsigned long long n = strtoull(s.in.c_str() + p, &endp, 16);
      if (endp == s.in.c_str() + p) {
        ok = false;
        break;
      }
      p = eol + 2;
      if (n == 0) {
        ok = false;
        break;
      }
      s.chunk_left = n;
      s.chunk_state = 1;
    } else if (s.chunk_state == 1) {
      size_t avail = s.in.size() - p;
      if (avail == 0) break;
      size_t take = std::min<uint64_t>(avail, s.chunk_left);
      append(std::string_view(s.in).substr(p, take));
      p += take;
      s.chunk_left -= take;
      if (s.chunk_left == 0) s.chunk_state = 2;
    } else {
      if (s.in.size() - p < 2) break;
      p += 2;
      s.chunk_state = 0;
    }
  }
  s.in.erase(0, p);
  return ok;
}

void process_sse(Sub& s, int64_t now) {
  size_t p = 0;
  for (;;) {
    size_t end = s.body.find("\n\n", p);
    if (end == std::string::npos) break;
    std::string_view ev(s.body.data() + p, end - p);
    p = end + 2;
    std::string data, event;
    bool has_id = false;
    size_t lp = 0;
    while (lp <= ev.size()) {
      size_t le = ev.find('\n', lp);
      std::string_view line =
          ev.substr(lp, le == std::string_view::npos ? std::string_view::npos : le - lp);
      lp = le == std::string_view::npos ? ev.size() + 1 : le + 1;
      if (line.empty() || line[0] == ':') continue;
      size_t colon = line.find(':');
      std::string_view field = line.substr(0, colon);
      std::string_view value =
          colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
      if (field == "data") {
        if (!data.empty()) data += '\n';
        data.append(value);
      } else if (field == "id") {
        s.pos.assign(value);
        has_id = true;
      } else if (field == "event") {
        event.assign(value);
      }
    }
    if (event == "comet-reset") {
      s.th->st.resets++;
    } else if (!data.empty()) {
      handle_payload(s, data, now);
    } else if (has_id && is_comet(s)) {
      mark_live(s, now);  // the id-only event: subscribed
    }
  }
  s.body.erase(0, p);
}

// The line-framed streams: XHR streaming (one JSON object per line, blank padding lines),
// the forever iframe (one `<script>parent.c({...});</script>` per line after an HTML
// prelude) and multipart (a boundary, a header, then the object on its own line; for
// Nchan the raw message). Lines that carry no message are skipped.
void process_lines(Sub& s, int64_t now) {
  static constexpr std::string_view kCall = "<script>parent.";
  size_t p = 0;
  for (;;) {
    const size_t end = s.body.find('\n', p);
    if (end == std::string::npos) break;
    std::string_view line(s.body.data() + p, end - p);
    p = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.rfind(kCall, 0) == 0) {
      const size_t open = line.find('('), close = line.rfind(')');
      if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
        s.th->st.errors++;
        continue;
      }
      line = line.substr(open + 1, close - open - 1);
    }
    if (line.empty()) continue;
    if (is_comet(s)) {
      if (line.front() == '{') handle_comet_ws_text(s, line, now);
    } else if (line.front() == 's' && line.size() > 1 && line[1] >= '0' && line[1] <= '9') {
      handle_payload(s, line, now);  // Nchan multipart: the message body
    }
  }
  s.body.erase(0, p);
}

// RFC 7692 7.2.2: append 00 00 ff ff to the message's payload and inflate it raw.
bool inflate_message(Thread& t, std::string_view in) {
  if (!t.zs_ready) {
    if (inflateInit2(&t.zs, -15) != Z_OK) return false;
    t.zs_ready = true;
  } else if (inflateReset(&t.zs) != Z_OK) {
    return false;
  }
  static const unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};
  t.inflated.clear();
  char out[16384];
  for (int part = 0; part < 2; part++) {
    t.zs.next_in = part == 0 ? reinterpret_cast<Bytef*>(const_cast<char*>(in.data()))
                             : const_cast<Bytef*>(kTail);
    t.zs.avail_in = part == 0 ? static_cast<uInt>(in.size()) : 4;
    do {
      t.zs.next_out = reinterpret_cast<Bytef*>(out);
      t.zs.avail_out = sizeof out;
      const int rc = inflate(&t.zs, Z_SYNC_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return false;
      t.inflated.append(out, sizeof out - t.zs.avail_out);
      if (rc == Z_STREAM_END || (rc == Z_BUF_ERROR && t.zs.avail_out != 0)) break;
    } while (t.zs.avail_in > 0 || t.zs.avail_out == 0);
  }
  return true;
}

void process_ws(Sub& s, int64_t now) {
  size_t off = 0;
  const std::string& in = s.in;
  for (;;) {
    size_t avail = in.size() - off;
    if (avail < 2) break;
    const auto* b = reinterpret_cast<const uint8_t*>(in.data() + off);
    uint64_t len = b[1] & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = (uint64_t(b[2]) << 8) | b[3];
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = (len << 8) | b[2 + i];
      hdr = 10;
    }
    if (b[1] & 0x80) {  // servers never mask
      s.th->st.errors++;
      mark_failed(s);
      return;
    }
    if (avail < hdr + len) break;
    std::string_view payload(in.data() + off + hdr, len);
    const int opcode = b[0] & 0x0f;
    off += hdr + len;
    if (opcode == 1) {
      Stats& st = s.th->st;
      const uint64_t before = st.deliveries;
      const bool compressed = (b[0] & 0x40) != 0;
      if (compressed) {
        if (!s.deflate || !inflate_message(*s.th, payload)) {
          st.errors++;
          continue;
        }
        payload = s.th->inflated;
      }
      if (is_comet(s))
        handle_comet_ws_text(s, payload, now);
      else
        handle_payload(s, payload, now);
      if (st.deliveries != before) {
        st.ws_msg_bytes += hdr + len;
        if (compressed) st.ws_deflated++;
      }
    } else if (opcode == 9) {
      send_ws_frame(s, 10, payload);
    } else if (opcode == 8) {
      if (!s.th->stopping) {
        s.th->st.disconnects++;
        s.th->a_disconnects.fetch_add(1, std::memory_order_relaxed);
      }
      close_connection(s);
      s.st = St::kClosed;
      return;
    } else if (opcode != 10) {
      s.th->st.errors++;
    }
  }
  s.in.erase(0, off);
}

// Returns false on an answer that makes polling on pointless (error status, garbage).
bool handle_poll_answer(Sub& s, const HttpHead& h, std::string_view body, int64_t now) {
  Thread& t = *s.th;
  t.st.requests++;
  t.a_requests.fetch_add(1, std::memory_order_relaxed);
  if (is_comet(s)) {
    if (h.status != 200) return false;
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    if (d.HasParseError() || !d.IsObject()) return false;
    auto msgs = d.FindMember("messages");
    if (msgs != d.MemberEnd() && msgs->value.IsArray())
      for (auto& m : msgs->value.GetArray()) handle_comet_object(s, m, now);
    // After the messages: handle_comet_object keeps a WebSocket-style position.
    auto cur = d.FindMember("cursor");
    if (cur == d.MemberEnd() || !cur->value.IsString()) return false;
    s.pos.assign(cur->value.GetString(), cur->value.GetStringLength());
  } else {
    if (!h.etag.empty()) s.pos = h.etag;
    if (!h.last_modified.empty()) s.pos2 = h.last_modified;
    if (h.status == 200) {
      handle_payload(s, body, now);
    } else if (h.status != 304 && h.status != 408) {
      return false;
    }
  }
  mark_live(s, now);
  return true;
}

void process_poll(Sub& s, int64_t now) {
  for (;;) {
    HttpHead h;
    if (!parse_head(s.in, h)) return;
    std::string body;
    size_t total;
    if (h.chunked) {
      size_t n = dechunk_complete(std::string_view(s.in).substr(h.header_len), body);
      if (n == 0) return;
      if (n == SIZE_MAX) {
        s.th->st.errors++;
        mark_failed(s);
        return;
      }
      total = h.header_len + n;
    } else {
      const int64_t cl = h.content_length < 0 ? 0 : h.content_length;
      if (s.in.size() < h.header_len + static_cast<size_t>(cl)) return;
      body = s.in.substr(h.header_len, static_cast<size_t>(cl));
      total = h.header_len + static_cast<size_t>(cl);
    }
    s.in.erase(0, total);
    if (!handle_poll_answer(s, h, body, now)) {
      static std::atomic<int> reported{0};
      if (reported++ < 3)
        fprintf(stderr, "comet-bench: poll answered %d: %.200s\n", h.status, body.c_str());
      s.th->st.errors++;
      s.attempts = 100;
      mark_failed(s);
      return;
    }
    if (s.th->stopping || s.st != St::kHeaders) return;
    if (h.close) {
      // Reconnect without counting a disconnect: the server may close keep-alives.
      close_connection(s);
      s.live = false;
      start_connection(s);
      return;
    }
    if (!send_bytes(s, build_request(s))) {
      mark_failed(s);
      return;
    }
  }
}

// TLS: SSL_read returns at most one record, so read until OpenSSL wants more from the
// socket (a short read says nothing about what is left in its buffer).
bool read_tls(Sub& s) {
  Thread& t = *s.th;
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(s.ssl, t.rbuf.data(), static_cast<int>(t.rbuf.size()));
    if (n > 0) {
      s.in.append(t.rbuf.data(), static_cast<size_t>(n));
      t.st.rx_bytes += static_cast<uint64_t>(n);
      continue;
    }
    const int e = SSL_get_error(s.ssl, n);
    // WANT_WRITE: OpenSSL has a reply (key update) it could not send; it goes out with
    // the next read or write.
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
  }
}

void on_readable(Sub& s) {
  Thread& t = *s.th;
  bool eof = false;
  if (s.ssl != nullptr) {
    eof = !read_tls(s);
  } else {
    for (;;) {
      ssize_t n = recv(s.fd, t.rbuf.data(), t.rbuf.size(), 0);
      if (n > 0) {
        s.in.append(t.rbuf.data(), static_cast<size_t>(n));
        t.st.rx_bytes += static_cast<uint64_t>(n);
        if (static_cast<size_t>(n) == t.rbuf.size()) continue;
        break;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      eof = true;
      break;
    }
  }
  const uint16_t gen = s.gen;
  process_input(s);
  if (eof && s.gen == gen && s.fd >= 0) mark_failed(s);
}

void process_input(Sub& s) {
  Thread& t = *s.th;
  const int64_t now = now_ns();
  const Options& o = opt(s);
  if (o.transport == Transport::kLongPoll || o.transport == Transport::kPoll) {
    process_poll(s, now);
    return;
  }
  if (s.st == St::kHeaders) {
    HttpHead h;
    if (!parse_head(s.in, h)) return;
    const int want = o.transport == Transport::kWs ? 101 : 200;
    if (h.status != want) {
      t.st.errors++;
      s.attempts = 100;  // a refusal is final
      mark_failed(s);
      return;
    }
    s.in.erase(0, h.header_len);
    s.chunked = h.chunked;
    s.st = St::kStream;
    if (o.ws_deflate && o.transport == Transport::kWs &&
        h.ws_extensions.find("permessage-deflate") != std::string::npos) {
      s.deflate = true;
      t.st.ws_deflate_conns++;
      static std::atomic<int> shown{0};  // once per process, --quiet or not (scripts read it)
      if (shown++ == 0)
        fprintf(stderr, "comet-bench: server accepted: %s\n", h.ws_extensions.c_str());
    }
    if (!is_comet(s)) mark_live(s, now);
  }
  if (o.transport == Transport::kWs) {
    process_ws(s, now);
  } else {
    auto process = o.transport == Transport::kSse ? process_sse : process_lines;
    if (!pump_stream(s)) {
      process(s, now);
      mark_failed(s);
      return;
    }
    process(s, now);
  }
}

void send_first_request(Sub& s) {
  s.st = St::kHeaders;
  if (!send_bytes(s, build_request(s))) {
    mark_failed(s);
    return;
  }
  if (!is_comet(s) && opt(s).transport == Transport::kLongPoll) mark_live(s, now_ns());
}

// TLS handshake step: wait for what OpenSSL wants, or go on with the request.
void tls_handshake(Sub& s) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(s.ssl);
  short want = 0;
  if (rc == 1) {
    want = EV_READ;
  } else {
    const int e = SSL_get_error(s.ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
      want = EV_READ;
    } else if (e == SSL_ERROR_WANT_WRITE) {
      want = EV_WRITE;
    } else {
      static std::atomic<int> reported{0};
      if (reported++ < 3) {
        char text[256] = "";
        ERR_error_string_n(ERR_peek_last_error(), text, sizeof text);
        fprintf(stderr, "comet-bench: TLS handshake failed (%s): %s\n",
                e == SSL_ERROR_SYSCALL ? "connection closed or reset" : "protocol", text);
      }
      // A reset (listen queue overflow) is retried like a refused connect; a protocol
      // or verification error is final.
      if (e != SSL_ERROR_SYSCALL) s.attempts = 100;
      mark_failed(s);
      return;
    }
  }
  if (want != s.tls_ev) {
    event_del(s.ev);
    event_assign(s.ev, s.th->base, s.fd, want | EV_PERSIST, on_sub_event, &s);
    event_add(s.ev, nullptr);
    s.tls_ev = static_cast<uint8_t>(want);
  }
  if (rc == 1) send_first_request(s);
}

void start_tls(Sub& s) {
  s.ssl = SSL_new(s.th->ssl_ctx);
  if (s.ssl == nullptr || SSL_set_fd(s.ssl, s.fd) != 1) {
    s.attempts = 100;
    mark_failed(s);
    return;
  }
  const Options& o = opt(s);
  SSL_set_tlsext_host_name(s.ssl, o.tls_sni.c_str());
  if (!o.tls_ca.empty()) SSL_set1_host(s.ssl, o.tls_sni.c_str());
  SSL_set_connect_state(s.ssl);
  s.st = St::kTls;
  s.tls_ev = 0;  // the connect's one-shot EV_WRITE has fired
  tls_handshake(s);
}

void on_sub_event(evutil_socket_t, short what, void* arg) {
  Sub& s = *static_cast<Sub*>(arg);
  if (s.st == St::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || !(what & EV_WRITE)) {
      mark_failed(s);
      return;
    }
    if (s.th->ssl_ctx != nullptr) {
      start_tls(s);
      return;
    }
    event_del(s.ev);
    event_assign(s.ev, s.th->base, s.fd, EV_READ | EV_PERSIST, on_sub_event, &s);
    event_add(s.ev, nullptr);
    send_first_request(s);
    return;
  }
  if (s.st == St::kTls) {
    tls_handshake(s);
    return;
  }
  if (what & EV_READ) on_readable(s);
}

void close_connection(Sub& s) {
  if (s.ev != nullptr) {
    event_free(s.ev);
    s.ev = nullptr;
  }
  if (s.ssl != nullptr) {  // no close_notify: the socket closes like a vanished client's
    SSL_free(s.ssl);
    s.ssl = nullptr;
  }
  if (s.fd >= 0) {
    close(s.fd);
    s.fd = -1;
  }
  s.in.clear();
  s.in.shrink_to_fit();
  s.body.clear();
  s.body.shrink_to_fit();
  s.chunk_state = 0;
  s.chunk_left = 0;
  s.live = false;
  s.deflate = false;
}

void start_connection(Sub& s) {
  Thread& t = *s.th;
  const Options& o = *t.o;
  s.gen++;
  s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd < 0) {
    s.attempts = 100;
    mark_failed(s);
    return;
  }
  int one = 1;
  setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (o.bind_source) {
    setsockopt(s.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    const int span = o.src_last - o.src_first + 1;
    src.sin_addr.s_addr =
        htonl((127u << 24) | static_cast<uint32_t>(o.src_first + static_cast<int>(s.gidx % span)));
    if (bind(s.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      s.attempts = 100;
      mark_failed(s);
      return;
    }
  }
  s.st = St::kConnecting;
  int rc = connect(s.fd, reinterpret_cast<sockaddr*>(&t.dst), sizeof t.dst);
  if (rc != 0 && errno != EINPROGRESS) {
    mark_failed(s);
    return;
  }
  s.ev = event_new(t.base, s.fd, EV_WRITE, on_sub_event, &s);
  event_add(s.ev, nullptr);
}

// ---- thread driver ------------------------------------------------------------------

void maybe_start(Thread& t) {
  const Options& o = *t.o;
  const int64_t now = now_ns();
  while (!t.retry.empty() && !t.stopping) {
    Sub* s = t.retry.back();
    t.retry.pop_back();
    start_connection(*s);
  }
  while (t.next_start < t.subs.size() && t.in_flight < o.ramp_concurrency && !t.stopping) {
    if (t.rate_share > 0) {
      const double allowed = static_cast<double>(now - t.t0) / 1e9 * t.rate_share + 1;
      if (static_cast<double>(t.started_fresh) >= allowed) break;
    }
    Sub& s = t.subs[t.next_start++];
    t.started_fresh++;
    t.in_flight++;
    t.st.started++;
    start_connection(s);
  }
  if (t.next_start == t.subs.size() && t.in_flight == 0 && t.retry.empty()) t.ramp_done.store(true);
}

void finish(Thread& t) {
  t.stopping = true;
  const uint64_t published = t.published.load();
  for (Sub& s : t.subs) {
    if (s.ready) {
      const uint64_t expect = published_to(published, t.o->channels, s.channel);
      const uint64_t got = s.next_seq - 1;
      if (got < expect) t.st.lost += expect - got;
    }
    close_connection(s);
  }
  event_base_loopexit(t.base, nullptr);
}

void start_storm(Thread& t) {
  const int64_t now = now_ns();
  std::uniform_real_distribution<double> when(0, t.o->reconnect_window);
  t.storm.clear();
  for (Sub& s : t.subs)
    if (s.ready && s.st != St::kFailed)
      t.storm.emplace_back(now + static_cast<int64_t>(when(t.rng) * 1e9), &s);
  std::sort(t.storm.begin(), t.storm.end());
  t.storm_next = 0;
}

void on_tick(evutil_socket_t, short, void* arg) {
  Thread& t = *static_cast<Thread*>(arg);
  maybe_start(t);
  if (t.storm_next < t.storm.size()) {
    const int64_t now = now_ns();
    while (t.storm_next < t.storm.size() && t.storm[t.storm_next].first <= now) {
      Sub& s = *t.storm[t.storm_next++].second;
      if (s.st == St::kFailed) continue;
      close_connection(s);
      s.reconnecting = true;
      s.attempts = 0;
      s.t_start = now_ns();
      start_connection(s);
    }
  }
}

void on_cmd(evutil_socket_t, short, void* arg) {
  Thread& t = *static_cast<Thread*>(arg);
  const int c = t.cmd.exchange(kCmdNone);
  if (c == kCmdStorm) start_storm(t);
  if (c == kCmdStop) finish(t);
}

void thread_main(Thread* t) {
  timeval tv{0, 2000};
  t->tick = event_new(t->base, -1, EV_PERSIST, on_tick, t);
  event_add(t->tick, &tv);
  t->t0 = now_ns();
  maybe_start(*t);
  event_base_dispatch(t->base);
  event_free(t->tick);
}

}  // namespace

int run_client_process(const Options& o, int ctl, int proc_index, int first, int last) {
  evthread_use_pthreads();
  const int nthreads = std::max(1, std::min(o.threads, last - first));
  std::vector<std::unique_ptr<Thread>> threads;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &dst.sin_addr);
  const int total = last - first;
  SSL_CTX* ssl_ctx = nullptr;
  if (o.tls) {
    ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (ssl_ctx == nullptr) {
      fprintf(stderr, "comet-bench: cannot create a TLS context\n");
      return 1;
    }
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    // Idle subscribers keep no record buffers (the load generator holds 10K+ of them).
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    // Every connection is a full handshake, as from as many different browsers.
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ssl_ctx, kAlpn, sizeof kAlpn);
    if (o.tls_ca.empty()) {
      SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, nullptr);
    } else if (SSL_CTX_load_verify_locations(ssl_ctx, o.tls_ca.c_str(), nullptr) != 1) {
      fprintf(stderr, "comet-bench: cannot read --tls-ca %s\n", o.tls_ca.c_str());
      SSL_CTX_free(ssl_ctx);
      return 1;
    } else {
      SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, nullptr);
    }
  }
  for (int i = 0; i < nthreads; i++) {
    auto t = std::make_unique<Thread>();
    t->o = &o;
    t->index = i;
    t->base = event_base_new();
    t->dst = dst;
    t->ssl_ctx = ssl_ctx;
    t->host_header = o.host + ":" + std::to_string(o.port);
    t->rng.seed(static_cast<unsigned>(proc_index * 7919 + i * 104729 + 1));
    const int a = first + total * i / nthreads, b = first + total * (i + 1) / nthreads;
    t->subs.resize(static_cast<size_t>(b - a));
    for (int k = a; k < b; k++) {
      Sub& s = t->subs[static_cast<size_t>(k - a)];
      s.th = t.get();
      s.gidx = static_cast<uint32_t>(k);
      s.channel = k % o.channels;
    }
    if (o.ramp_rate > 0) t->rate_share = o.ramp_rate * (b - a) / std::max(1, o.n);
    t->cmd_ev = event_new(t->base, -1, 0, on_cmd, t.get());
    threads.push_back(std::move(t));
  }
  std::vector<std::thread> runners;
  for (auto& t : threads) runners.emplace_back(thread_main, t.get());

  // Control loop on this thread: progress every 20 ms, commands from the parent.
  bool ready_sent = false, stop = false;
  std::string line;
  int64_t last_report = 0;
  char buf[4096];
  auto send_all = [&](const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = write(ctl, s.data() + off, s.size() - off);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return;
      }
      off += static_cast<size_t>(n);
    }
  };
  auto command = [&](int c, uint64_t published) {
    for (auto& t : threads) {
      t->published.store(published);
      t->cmd.store(c);
      event_active(t->cmd_ev, EV_READ, 0);
    }
  };
  while (!stop) {
    pollfd p{ctl, POLLIN, 0};
    int rc = poll(&p, 1, 10);
    if (rc > 0) {
      ssize_t n = read(ctl, buf, sizeof buf);
      if (n <= 0) {
        command(kCmdStop, 0);  // parent went away
        break;
      }
      line.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = line.find('\n')) != std::string::npos) {
        std::string cmd = line.substr(0, nl);
        line.erase(0, nl + 1);
        if (cmd == "G") command(kCmdStorm, 0);
        if (cmd.rfind("S ", 0) == 0) {
          command(kCmdStop, strtoull(cmd.c_str() + 2, nullptr, 10));
          stop = true;
        }
      }
    }
    const int64_t now = now_ns();
    if (now - last_report >= 20000000LL && !stop) {
      last_report = now;
      uint64_t r = 0, f = 0, d = 0, q = 0, rc2 = 0, dc = 0;
      bool all_done = true;
      for (auto& t : threads) {
        r += t->a_ready.load(std::memory_order_relaxed);
        f += t->a_failed.load(std::memory_order_relaxed);
        d += t->a_deliveries.load(std::memory_order_relaxed);
        q += t->a_requests.load(std::memory_order_relaxed);
        rc2 += t->a_reconnects.load(std::memory_order_relaxed);
        dc += t->a_disconnects.load(std::memory_order_relaxed);
        all_done = all_done && t->ramp_done.load();
      }
      char msg[256];
      snprintf(msg, sizeof msg, "P %llu %llu %llu %llu %llu %llu\n", (unsigned long long)r,
               (unsigned long long)f, (unsigned long long)d, (unsigned long long)q,
               (unsigned long long)rc2, (unsigned long long)dc);
      send_all(msg);
      if (all_done && !ready_sent) {
        ready_sent = true;
        send_all("R\n");
      }
    }
  }
  for (auto& r : runners) r.join();
  Stats total_stats;
  for (auto& t : threads) {
    total_stats.merge(t->st);
    event_free(t->cmd_ev);
    event_base_free(t->base);
  }
  send_all("D " + total_stats.serialize() + "\n");
  close(ctl);
  if (ssl_ctx != nullptr) SSL_CTX_free(ssl_ctx);
  return 0;
}

}  // namespace bench
