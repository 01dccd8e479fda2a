// The --auth-url client (docs/protocol.md, "Authorization by the app").
//
// Life of a question: ask() takes what the cache already knows, and hands the rest to an
// Exchange (one HTTP POST to the app), shared by every asker of the same cookie and
// channels. Exchanges wait in a FIFO for one of kMaxInFlight slots; a deadline covers the
// whole wait. The outcome is cached per (cookie hash, channel), and each asker's answer is
// delivered by the "pump", a zero-timeout event: callbacks never run inside ask() nor
// inside an evhttp callback, and connections are freed from the pump too, never from
// their own callback (libevent still uses them after it returns).

#include "auth/auth_url_client.h"

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "auth/json_limits.h"
#include "http/http_url.h"
#include "hub/message.h"
#include "util/clock.h"
#include "util/log.h"

namespace comet {
namespace {

constexpr size_t kMaxAnswerBytes = 64 * 1024;
constexpr size_t kMaxAnswerHeaderBytes = 16 * 1024;
constexpr int64_t kDefaultTtlMs = 60 * 1000;
constexpr int64_t kMaxTtlSeconds = 86400;
constexpr size_t kMaxUserBytes = 256;  // as for a token's sub
constexpr size_t kMaxCacheEntries = 10000;
constexpr int64_t kAddressTtlMs = 30 * 1000;  // a resolved auth-url host is reused this long
constexpr int64_t kWarningIntervalMs = 1000;  // an unreachable app must not flood the log

/** What the app said about one question (or why it said nothing), shared by its channels. */
struct Verdict {
  bool failed = false;
  std::string error;  // when failed
  std::string user;
  std::string info_json;
};
using VerdictPtr = std::shared_ptr<const Verdict>;

/** The verdict on one channel: the unit of the cache. */
struct Decision {
  VerdictPtr verdict;
  bool allowed = false;
  int64_t expires_ms = 0;  // wall clock
};

/** A parsed answer of the app, or a failure. */
struct AppAnswer {
  VerdictPtr verdict;
  std::unordered_set<std::string> allow;
  int64_t expires_ms = 0;
};

AppAnswer failure(std::string error) {
  auto verdict = std::make_shared<Verdict>();
  verdict->failed = true;
  verdict->error = std::move(error);
  AppAnswer answer;
  answer.verdict = std::move(verdict);
  answer.expires_ms = wall_clock_ms() + AuthUrlClient::kFailureCacheMs;
  return answer;
}

/** Reads {"allow":[...],"user":"7","info":{...},"ttl":60}; anything malformed is a failure. */
AppAnswer parse_app_answer(const char* body, size_t size) {
  rapidjson::Document doc;
  // Iterative: the app's JSON cannot make the parser recurse without bound. Valid UTF-8
  // only, since user and info travel on to browsers (WebSocket text frames).
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(body, size);
  if (doc.HasParseError()) return failure("auth-url answer is not valid JSON");
  if (!doc.IsObject()) return failure("auth-url answer is not a JSON object");
  // null counts as absent: apps often encode "no user" as "user":null.
  auto field = [&doc](const char* name) -> const rapidjson::Value* {
    auto it = doc.FindMember(name);
    return it == doc.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
  };

  AppAnswer answer;
  auto verdict = std::make_shared<Verdict>();
  if (const rapidjson::Value* allow = field("allow")) {
    if (!allow->IsArray()) return failure("auth-url answer: allow must be a list of channels");
    for (const auto& channel : allow->GetArray()) {
      if (!channel.IsString()) return failure("auth-url answer: allow must be a list of channels");
      answer.allow.emplace(channel.GetString(), channel.GetStringLength());
    }
  }
  if (const rapidjson::Value* user = field("user")) {
    if (user->IsString() && user->GetStringLength() <= kMaxUserBytes) {
      verdict->user.assign(user->GetString(), user->GetStringLength());
    } else if (user->IsInt64()) {
      verdict->user = std::to_string(user->GetInt64());
    } else if (user->IsUint64()) {
      verdict->user = std::to_string(user->GetUint64());
    } else {
      return failure("auth-url answer: user must be a string or an integer");
    }
  }
  if (const rapidjson::Value* info = field("info")) {
    if (!info->IsObject()) return failure("auth-url answer: info must be an object");
    if (!nests_at_most(*info, kMaxInfoDepth))
      return failure("auth-url answer: info nests too deep");
    rapidjson::StringBuffer compact;
    rapidjson::Writer<rapidjson::StringBuffer> writer(compact);
    info->Accept(writer);
    verdict->info_json.assign(compact.GetString(), compact.GetSize());
  }
  int64_t ttl_ms = kDefaultTtlMs;
  if (const rapidjson::Value* ttl = field("ttl")) {
    if (!ttl->IsInt64() || ttl->GetInt64() < 1 || ttl->GetInt64() > kMaxTtlSeconds)
      return failure("auth-url answer: ttl must be 1-86400 seconds");
    ttl_ms = ttl->GetInt64() * 1000;
  }
  answer.verdict = std::move(verdict);
  answer.expires_ms = wall_clock_ms() + ttl_ms;
  return answer;
}

/** The answer about `channels`, given one decision per channel (same order). */
AuthAnswer combine(const std::vector<std::string>& channels,
                   const std::vector<const Decision*>& decisions) {
  AuthAnswer answer;
  answer.outcome = AuthAnswer::Outcome::kAnswered;
  // A question about nothing holds as long as a default answer would.
  answer.expires_ms =
      channels.empty() ? wall_clock_ms() + kDefaultTtlMs : std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < channels.size(); ++i) {
    const Decision& decision = *decisions[i];
    const Verdict& verdict = *decision.verdict;
    answer.expires_ms = std::min(answer.expires_ms, decision.expires_ms);
    if (verdict.failed) {
      if (answer.outcome != AuthAnswer::Outcome::kFailed) answer.error = verdict.error;
      answer.outcome = AuthAnswer::Outcome::kFailed;
      continue;
    }
    if (decision.allowed) answer.allowed.push_back(channels[i]);
    // Every verdict came from the same cookie, so from the same user.
    if (answer.user.empty()) answer.user = verdict.user;
    if (answer.info_json.empty()) answer.info_json = verdict.info_json;
  }
  if (answer.outcome == AuthAnswer::Outcome::kFailed) {
    answer.allowed.clear();
    answer.user.clear();
    answer.info_json.clear();
  }
  return answer;
}

AuthAnswer failed_answer(AuthAnswer::Outcome outcome, std::string error) {
  AuthAnswer answer;
  answer.outcome = outcome;
  answer.error = std::move(error);
  answer.expires_ms = wall_clock_ms();
  return answer;
}

/** The channels without repeats, in the caller's order. */
std::vector<std::string> distinct(const std::vector<std::string>& channels) {
  std::vector<std::string> out;
  out.reserve(channels.size());
  std::unordered_set<std::string_view> seen;
  for (const std::string& channel : channels) {
    if (seen.insert(channel).second) out.push_back(channel);
  }
  return out;
}

/** SHA-256 of the Cookie header, raw: the cache never holds a session cookie. */
std::string cookie_hash(std::string_view cookie) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(cookie.data(), cookie.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

/** application/x-www-form-urlencoded value: everything but RFC 3986 unreserved escaped. */
std::string form_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

timeval to_timeval(int64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

/** errno after a failed connect, in words; nullptr for errors that are not about reaching. */
const char* connect_error(int error) {
  switch (error) {
    case ECONNREFUSED:
      return "connection refused";
    case EHOSTUNREACH:
      return "no route to host";
    case ENETUNREACH:
      return "network unreachable";
    case ETIMEDOUT:
      return "connect timed out";
    case ECONNRESET:
      return "connection reset";
    default:
      return nullptr;
  }
}

std::string unreachable(int error) {
  const char* why = connect_error(error);
  return why != nullptr ? std::string("auth-url unreachable (") + why + ")"
                        : std::string("auth-url unreachable");
}

}  // namespace

bool AuthAnswer::allows(std::string_view channel) const {
  return outcome == Outcome::kAnswered &&
         std::find(allowed.begin(), allowed.end(), channel) != allowed.end();
}

struct AuthUrlClient::Impl {
  struct Question;
  struct Exchange;
  /** A DNS lookup in progress; outlives the client when evdns calls back after it. */
  struct Lookup {
    Impl* owner = nullptr;
  };
  struct CacheEntry {
    Decision decision;
    std::list<std::string>::iterator age;  // in cache_age_
  };

  Impl(event_base* base, const Config& config);
  ~Impl();

  bool lookup(std::string_view cookie, const std::vector<std::string>& channels, AuthAnswer& out);
  std::unique_ptr<AuthQuestion> ask(std::string_view cookie, std::string_view origin,
                                    const std::vector<std::string>& channels,
                                    std::function<void(const AuthAnswer&)> done);

  void parse_url(const std::string& url);
  const Decision* fresh(const std::string& hash, const std::string& channel, int64_t now) const;
  void remember(const std::string& hash, const std::string& channel, Decision decision);
  void make_room();
  void make_ready(Question& question, AuthAnswer answer);
  void wake() { event_active(pump_, EV_TIMEOUT, 0); }
  void pump();
  void start_queued();
  bool address_ready() const { return !address_.empty() && monotonic_ms() < address_expires_ms_; }
  void resolve();
  void resolved(int result, evutil_addrinfo* addresses);
  void send(Exchange& exchange);
  AppAnswer read_answer(Exchange& exchange, evhttp_request* request, int saved_errno);
  void finish(Exchange& exchange, const AppAnswer& outcome);
  void retire(Exchange& exchange);
  void warn(const std::string& what);

  static void on_pump(evutil_socket_t, short, void* arg);
  static void on_deadline(evutil_socket_t, short, void* arg);
  static void on_resolved(int result, evutil_addrinfo* addresses, void* arg);
  static void on_response(evhttp_request* request, void* arg);
  static void on_request_error(evhttp_request_error error, void* arg);

  event_base* base_;
  int64_t timeout_ms_;
  std::string url_error_;  // set when --auth-url cannot be used: every question fails with it
  std::string host_;       // without the brackets of an IPv6 literal
  std::string host_header_;
  std::string target_;  // path and query
  uint16_t port_ = 80;

  // The address connections go to. A host name is resolved with evdns (never blocking the
  // loop) and the address reused for kAddressTtlMs; evhttp then only sees numeric
  // addresses, so it never resolves on its own.
  evdns_base* dns_ = nullptr;
  Lookup* lookup_ = nullptr;
  std::string address_;
  int64_t address_expires_ms_ = 0;  // monotonic

  std::unordered_map<std::string, CacheEntry> cache_;  // key: cookie hash + channel
  std::list<std::string> cache_age_;                   // cache keys, oldest written first

  std::unordered_map<std::string, std::unique_ptr<Exchange>> exchanges_;  // by dedupe key
  std::list<Exchange*> queue_;  // not sent yet, oldest first
  size_t in_flight_ = 0;
  std::vector<std::unique_ptr<Exchange>> finished_;  // freed by the pump

  std::unordered_map<uint64_t, Question*> questions_;  // asked, not answered yet
  std::deque<uint64_t> ready_;  // answered questions whose callback the pump calls
  uint64_t next_question_id_ = 1;

  event* pump_ = nullptr;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // a callback may destroy us
  uint64_t requests_sent_ = 0;
  int64_t last_warning_ms_ = 0;
};

struct AuthUrlClient::Impl::Question final : AuthQuestion {
  ~Question() override {
    if (owner != nullptr) owner->questions_.erase(id);
  }
  Impl* owner = nullptr;  // nullptr once answered or once the client is gone
  uint64_t id = 0;
  std::function<void(const AuthAnswer&)> done;
  std::vector<std::string> channels;                 // distinct, in the asker's order
  std::unordered_map<std::string, Decision> cached;  // fresh in the cache when asked
  AuthAnswer answer;                                 // once in ready_
};

/** One HTTP question to the app, shared by every asker of the same cookie and channels. */
struct AuthUrlClient::Impl::Exchange {
  enum class State : uint8_t { kQueued, kSending, kDone };
  ~Exchange() {
    // Frees a request still pending without calling its callback.
    if (connection != nullptr) evhttp_connection_free(connection);
    if (deadline != nullptr) event_free(deadline);
  }
  Impl* owner = nullptr;
  std::string key;
  std::string hash;  // of the cookie
  std::string cookie;
  std::string origin;
  std::vector<std::string> channels;  // sorted, distinct: what the app is asked
  std::vector<uint64_t> waiters;      // question ids
  State state = State::kQueued;
  std::list<Exchange*>::iterator queued_at;
  event* deadline = nullptr;
  evhttp_connection* connection = nullptr;
  int transport_error = -1;  // the evhttp_request_error reported before the callback
  int transport_errno = 0;
};

AuthUrlClient::Impl::Impl(event_base* base, const Config& config)
    : base_(base), timeout_ms_(std::max<int64_t>(1, config.auth_timeout_ms)) {
  pump_ = event_new(base_, -1, 0, on_pump, this);
  parse_url(config.auth_url);
  if (!url_error_.empty()) {
    LOG_ERROR("auth", "--auth-url %s: %s", config.auth_url.c_str(), url_error_.c_str());
    return;
  }
  unsigned char scratch[sizeof(in6_addr)];
  if (evutil_inet_pton(AF_INET, host_.c_str(), scratch) == 1 ||
      evutil_inet_pton(AF_INET6, host_.c_str(), scratch) == 1) {
    address_ = host_;
    address_expires_ms_ = std::numeric_limits<int64_t>::max();
    return;
  }
  dns_ = evdns_base_new(base_, EVDNS_BASE_INITIALIZE_NAMESERVERS);
  if (dns_ == nullptr) {
    // libevent refuses to start without /etc/resolv.conf; the hosts file still works.
    LOG_WARN("auth", "no DNS resolver configuration; --auth-url host from /etc/hosts only");
    dns_ = evdns_base_new(base_, 0);
    if (dns_ != nullptr) evdns_base_load_hosts(dns_, nullptr);
  }
  if (dns_ == nullptr) url_error_ = "auth-url host cannot be resolved";
}

AuthUrlClient::Impl::~Impl() {
  *alive_ = false;
  for (auto& [id, question] : questions_) question->owner = nullptr;
  questions_.clear();
  queue_.clear();
  exchanges_.clear();  // frees their connections: no callback after this
  finished_.clear();
  // evdns_base_free(dns_, 1) fails a pending lookup through its callback, later, without
  // touching the freed base: the orphaned Lookup then frees itself.
  if (lookup_ != nullptr) lookup_->owner = nullptr;
  if (dns_ != nullptr) evdns_base_free(dns_, 1);
  event_free(pump_);
}

void AuthUrlClient::Impl::parse_url(const std::string& url) {
  http::HttpUrl parsed;
  if (!http::parse_http_url(url, parsed)) {
    url_error_ = "auth-url is not a usable http:// URL";
    return;
  }
  host_ = std::move(parsed.host);
  host_header_ = std::move(parsed.host_header);
  target_ = std::move(parsed.target);
  port_ = parsed.port;
  url_error_.clear();
}

const Decision* AuthUrlClient::Impl::fresh(const std::string& hash, const std::string& channel,
                                           int64_t now) const {
  auto it = cache_.find(hash + channel);
  if (it == cache_.end() || it->second.decision.expires_ms <= now) return nullptr;
  return &it->second.decision;
}

void AuthUrlClient::Impl::remember(const std::string& hash, const std::string& channel,
                                   Decision decision) {
  std::string key = hash + channel;
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    it->second.decision = std::move(decision);
    cache_age_.splice(cache_age_.end(), cache_age_, it->second.age);
    return;
  }
  if (cache_.size() >= kMaxCacheEntries) make_room();
  cache_age_.push_back(key);
  cache_.emplace(std::move(key), CacheEntry{std::move(decision), std::prev(cache_age_.end())});
}

void AuthUrlClient::Impl::make_room() {
  const int64_t now = wall_clock_ms();
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (it->second.decision.expires_ms <= now) {
      cache_age_.erase(it->second.age);
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
  // Leave a tenth free, so that a cache full of fresh answers is not swept on every insert.
  while (cache_.size() > kMaxCacheEntries - kMaxCacheEntries / 10) {
    cache_.erase(cache_age_.front());
    cache_age_.pop_front();
  }
}

bool AuthUrlClient::Impl::lookup(std::string_view cookie, const std::vector<std::string>& channels,
                                 AuthAnswer& out) {
  const std::vector<std::string> asked = distinct(channels);
  const std::string hash = cookie_hash(cookie);
  const int64_t now = wall_clock_ms();
  std::vector<const Decision*> decisions;
  decisions.reserve(asked.size());
  for (const std::string& channel : asked) {
    const Decision* decision = fresh(hash, channel, now);
    if (decision == nullptr) return false;
    decisions.push_back(decision);
  }
  out = combine(asked, decisions);
  return true;
}

std::unique_ptr<AuthQuestion> AuthUrlClient::Impl::ask(
    std::string_view cookie, std::string_view origin, const std::vector<std::string>& channels,
    std::function<void(const AuthAnswer&)> done) {
  auto question = std::make_unique<Question>();
  question->owner = this;
  question->id = next_question_id_++;
  question->done = std::move(done);
  question->channels = distinct(channels);
  questions_.emplace(question->id, question.get());
  if (!url_error_.empty()) {
    make_ready(*question, failed_answer(AuthAnswer::Outcome::kFailed, url_error_));
    return question;
  }

  const std::string hash = cookie_hash(cookie);
  const int64_t now = wall_clock_ms();
  std::vector<std::string> missing;
  for (const std::string& channel : question->channels) {
    if (const Decision* decision = fresh(hash, channel, now)) {
      question->cached.emplace(channel, *decision);
    } else {
      missing.push_back(channel);
    }
  }
  if (missing.empty()) {
    std::vector<const Decision*> decisions;
    for (const std::string& channel : question->channels)
      decisions.push_back(&question->cached.at(channel));
    make_ready(*question, combine(question->channels, decisions));
    return question;
  }

  // The same cookie asking about the same channels joins the question already on its way.
  std::sort(missing.begin(), missing.end());
  std::string key = hash;
  for (const std::string& channel : missing) key += "," + channel;
  auto it = exchanges_.find(key);
  if (it != exchanges_.end()) {
    it->second->waiters.push_back(question->id);
    return question;
  }
  if (in_flight_ + queue_.size() >= kMaxInFlight + kMaxWaiting) {
    warn("auth-url: too many questions waiting, answering busy");
    make_ready(*question, failed_answer(AuthAnswer::Outcome::kBusy,
                                        "too many questions waiting for the auth-url"));
    return question;
  }

  auto exchange = std::make_unique<Exchange>();
  exchange->owner = this;
  exchange->key = key;
  exchange->hash = hash;
  exchange->cookie.assign(cookie);
  exchange->origin.assign(origin);
  exchange->channels = std::move(missing);
  exchange->waiters.push_back(question->id);
  // The deadline covers the wait in the queue too: --auth-timeout bounds what a browser waits.
  exchange->deadline = evtimer_new(base_, on_deadline, exchange.get());
  const timeval timeout = to_timeval(timeout_ms_);
  evtimer_add(exchange->deadline, &timeout);
  exchange->queued_at = queue_.insert(queue_.end(), exchange.get());
  exchanges_.emplace(std::move(key), std::move(exchange));
  wake();
  return question;
}

void AuthUrlClient::Impl::make_ready(Question& question, AuthAnswer answer) {
  question.answer = std::move(answer);
  ready_.push_back(question.id);
  wake();
}

void AuthUrlClient::Impl::on_pump(evutil_socket_t, short, void* arg) {
  static_cast<Impl*>(arg)->pump();
}

void AuthUrlClient::Impl::pump() {
  start_queued();
  finished_.clear();  // outside every evhttp callback here
  // Only the answers ready now: a callback that asks again is answered on the next turn.
  std::deque<uint64_t> ready;
  ready.swap(ready_);
  const std::shared_ptr<bool> alive = alive_;
  for (const uint64_t id : ready) {
    auto it = questions_.find(id);
    if (it == questions_.end()) continue;  // its asker went away
    Question& question = *it->second;
    questions_.erase(it);
    question.owner = nullptr;
    // Moved out first: the callback may destroy the question, and with it `done`.
    const auto done = std::move(question.done);
    const AuthAnswer answer = std::move(question.answer);
    done(answer);
    if (!*alive) return;
  }
}

void AuthUrlClient::Impl::start_queued() {
  while (!queue_.empty() && in_flight_ < kMaxInFlight) {
    Exchange& exchange = *queue_.front();
    const bool wanted = std::any_of(exchange.waiters.begin(), exchange.waiters.end(),
                                    [this](uint64_t id) { return questions_.count(id) != 0; });
    if (!wanted) {  // every asker went away before it was sent: not worth a request
      retire(exchange);
      continue;
    }
    if (!address_ready()) {
      resolve();  // may answer at once (hosts file), or fail every queued exchange
      if (!address_ready()) return;
      continue;
    }
    send(exchange);
  }
}

void AuthUrlClient::Impl::resolve() {
  if (lookup_ != nullptr) return;
  lookup_ = new Lookup{this};
  evutil_addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  evdns_getaddrinfo(dns_, host_.c_str(), nullptr, &hints, on_resolved, lookup_);
}

void AuthUrlClient::Impl::on_resolved(int result, evutil_addrinfo* addresses, void* arg) {
  std::unique_ptr<Lookup> lookup(static_cast<Lookup*>(arg));
  if (lookup->owner == nullptr) {  // the client is gone
    if (addresses != nullptr) evutil_freeaddrinfo(addresses);
    return;
  }
  lookup->owner->lookup_ = nullptr;
  lookup->owner->resolved(result, addresses);
}

void AuthUrlClient::Impl::resolved(int result, evutil_addrinfo* addresses) {
  // One address, IPv4 first: an app behind "localhost" usually listens on 127.0.0.1.
  const evutil_addrinfo* chosen = nullptr;
  if (result == 0) {
    for (const evutil_addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
      if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
      if (chosen == nullptr || (a->ai_family == AF_INET && chosen->ai_family != AF_INET))
        chosen = a;
    }
  }
  char text[INET6_ADDRSTRLEN] = "";
  if (chosen != nullptr) {
    const void* raw =
        chosen->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(chosen->ai_addr)->sin_addr)
            : static_cast<const void*>(
                  &reinterpret_cast<sockaddr_in6*>(chosen->ai_addr)->sin6_addr);
    if (evutil_inet_ntop(chosen->ai_family, raw, text, sizeof(text)) == nullptr) chosen = nullptr;
  }
  if (addresses != nullptr) evutil_freeaddrinfo(addresses);
  if (chosen != nullptr) {
    address_ = text;
    address_expires_ms_ = monotonic_ms() + kAddressTtlMs;
  } else {
    const char* why = result != 0 ? evutil_gai_strerror(result) : "no address";
    LOG_WARN("auth", "cannot resolve the --auth-url host %s: %s", host_.c_str(), why);
    const AppAnswer outcome = failure(std::string("auth-url host not resolved (") + why + ")");
    while (!queue_.empty()) finish(*queue_.front(), outcome);
  }
  wake();
}

void AuthUrlClient::Impl::send(Exchange& exchange) {
  queue_.erase(exchange.queued_at);
  exchange.state = Exchange::State::kSending;
  ++in_flight_;
  // Checked here, not left to evhttp: a header it refuses would be dropped silently.
  if (exchange.cookie.find_first_of(std::string_view("\0\r\n", 3)) != std::string::npos) {
    finish(exchange, failure("the Cookie header cannot be forwarded to the auth-url"));
    return;
  }
  exchange.connection = evhttp_connection_base_new(base_, nullptr, address_.c_str(), port_);
  if (exchange.connection == nullptr) {
    finish(exchange, failure("auth-url connection failed"));
    return;
  }
  // Our deadline ends the exchange first; this only bounds an idle socket if it did not.
  const timeval idle = to_timeval(timeout_ms_ + 1000);
  evhttp_connection_set_timeout_tv(exchange.connection, &idle);
  evhttp_connection_set_max_body_size(exchange.connection, kMaxAnswerBytes);
  evhttp_connection_set_max_headers_size(exchange.connection, kMaxAnswerHeaderBytes);

  evhttp_request* request = evhttp_request_new(on_response, &exchange);
  evhttp_request_set_error_cb(request, on_request_error);
  evkeyvalq* headers = evhttp_request_get_output_headers(request);
  evhttp_add_header(headers, "Host", host_header_.c_str());
  evhttp_add_header(headers, "Content-Type", "application/x-www-form-urlencoded");
  evhttp_add_header(headers, "Accept", "application/json");
  evhttp_add_header(headers, "User-Agent", "comet-sidecar");
  evhttp_add_header(headers, "Connection", "close");
  if (!exchange.cookie.empty()) evhttp_add_header(headers, "Cookie", exchange.cookie.c_str());
  // Only informative, unlike the cookie: a value evhttp refuses (CR/LF) is left out.
  if (!exchange.origin.empty())
    evhttp_add_header(headers, "X-Comet-Origin", exchange.origin.c_str());
  std::string names;
  for (const std::string& channel : exchange.channels) {
    if (!names.empty()) names += ',';
    names += channel;
  }
  const std::string body = "channels=" + form_encode(names);
  evbuffer_add(evhttp_request_get_output_buffer(request), body.data(), body.size());

  ++requests_sent_;
  // From here libevent owns the request. It may call on_response before returning (a
  // connect that fails at once); `exchange` then waits in finished_ for the pump.
  if (evhttp_make_request(exchange.connection, request, EVHTTP_REQ_POST, target_.c_str()) != 0 &&
      exchange.state == Exchange::State::kSending) {
    finish(exchange, failure("auth-url request could not be sent"));
  }
}

void AuthUrlClient::Impl::on_request_error(evhttp_request_error error, void* arg) {
  auto* exchange = static_cast<Exchange*>(arg);
  exchange->transport_errno = errno;  // libevent restored it for us; read it before anything
  exchange->transport_error = error;
}

void AuthUrlClient::Impl::on_response(evhttp_request* request, void* arg) {
  const int saved_errno = errno;
  auto* exchange = static_cast<Exchange*>(arg);
  if (exchange->state != Exchange::State::kSending) return;
  Impl& self = *exchange->owner;
  const AppAnswer outcome = self.read_answer(*exchange, request, saved_errno);
  if (outcome.verdict->failed) self.warn(outcome.verdict->error);
  self.finish(*exchange, outcome);
}

AppAnswer AuthUrlClient::Impl::read_answer(Exchange& exchange, evhttp_request* request,
                                           int saved_errno) {
  if (request == nullptr) {  // evhttp reported why through on_request_error
    const int error = exchange.transport_errno;
    switch (exchange.transport_error) {
      case EVREQ_HTTP_TIMEOUT:
        return failure("auth-url timed out after " + std::to_string(timeout_ms_) + " ms");
      case EVREQ_HTTP_DATA_TOO_LONG:  // the body over 64 KiB, or the headers over 16 KiB
        return failure("auth-url answer is too large");
      case EVREQ_HTTP_INVALID_HEADER:
        return failure("auth-url answer is not valid HTTP");
      case EVREQ_HTTP_EOF:
        if (connect_error(error) != nullptr) {
          if (dns_ != nullptr) address_expires_ms_ = 0;  // maybe the app moved: resolve again
          return failure(unreachable(error));
        }
        return failure("auth-url closed the connection without answering");
      default:
        return failure("auth-url connection failed");
    }
  }
  const int status = evhttp_request_get_response_code(request);
  if (status == 0) {  // the connect failed (evhttp calls back without an error code then)
    if (dns_ != nullptr) address_expires_ms_ = 0;
    return failure(unreachable(saved_errno));
  }
  if (status != 200) return failure("auth-url answered " + std::to_string(status));
  evbuffer* body = evhttp_request_get_input_buffer(request);
  const size_t size = evbuffer_get_length(body);
  if (size > kMaxAnswerBytes) return failure("auth-url answer is too large");
  const auto* data = reinterpret_cast<const char*>(evbuffer_pullup(body, -1));
  return parse_app_answer(data != nullptr ? data : "", size);
}

void AuthUrlClient::Impl::on_deadline(evutil_socket_t, short, void* arg) {
  auto* exchange = static_cast<Exchange*>(arg);
  Impl& self = *exchange->owner;
  if (exchange->connection != nullptr) {
    // Not inside an evhttp callback, so the connection can go now, with its request.
    evhttp_connection_free(exchange->connection);
    exchange->connection = nullptr;
  }
  const AppAnswer outcome =
      failure("auth-url timed out after " + std::to_string(self.timeout_ms_) + " ms");
  self.warn(outcome.verdict->error);
  self.finish(*exchange, outcome);
}

void AuthUrlClient::Impl::finish(Exchange& exchange, const AppAnswer& outcome) {
  std::unordered_map<std::string, Decision> decided;
  for (const std::string& channel : exchange.channels) {
    Decision decision{outcome.verdict, outcome.allow.count(channel) != 0, outcome.expires_ms};
    remember(exchange.hash, channel, decision);
    decided.emplace(channel, std::move(decision));
  }
  for (const uint64_t id : exchange.waiters) {
    auto it = questions_.find(id);
    if (it == questions_.end()) continue;
    Question& question = *it->second;
    std::vector<const Decision*> decisions;
    for (const std::string& channel : question.channels) {
      auto cached = question.cached.find(channel);
      decisions.push_back(cached != question.cached.end() ? &cached->second : &decided.at(channel));
    }
    make_ready(question, combine(question.channels, decisions));
  }
  retire(exchange);
}

void AuthUrlClient::Impl::retire(Exchange& exchange) {
  if (exchange.state == Exchange::State::kQueued) queue_.erase(exchange.queued_at);
  if (exchange.state == Exchange::State::kSending) --in_flight_;
  exchange.state = Exchange::State::kDone;
  event_del(exchange.deadline);
  auto it = exchanges_.find(exchange.key);
  finished_.push_back(std::move(it->second));
  exchanges_.erase(it);
  wake();  // frees it, and a slot may have opened for the next in the queue
}

void AuthUrlClient::Impl::warn(const std::string& what) {
  const int64_t now = monotonic_ms();
  if (now - last_warning_ms_ < kWarningIntervalMs) return;
  last_warning_ms_ = now;
  LOG_WARN("auth", "%s", what.c_str());
}

AuthUrlClient::AuthUrlClient(event_base* base, const Config& config)
    : impl_(std::make_unique<Impl>(base, config)) {}

AuthUrlClient::~AuthUrlClient() = default;

bool AuthUrlClient::lookup(std::string_view cookie, const std::vector<std::string>& channels,
                           AuthAnswer& out) {
  return impl_->lookup(cookie, channels, out);
}

std::unique_ptr<AuthQuestion> AuthUrlClient::ask(std::string_view cookie, std::string_view origin,
                                                 const std::vector<std::string>& channels,
                                                 std::function<void(const AuthAnswer&)> done) {
  return impl_->ask(cookie, origin, channels, std::move(done));
}

uint64_t AuthUrlClient::requests_sent() const { return impl_->requests_sent_; }

}  // namespace comet
