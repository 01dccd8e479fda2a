#include "bridge/redis_bridge.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

#include "bridge/redis_payload.h"
#include "bridge/redis_reply.h"
#include "util/log.h"

namespace comet {

struct RedisBridge::FetchRequest {
  RedisBridge* bridge;
  std::string channel;
  uint64_t generation;
  std::string after;
  std::string count;
  std::string epoch;
  size_t parked_at_send = 0;  // live messages parked before the read was sent
};

struct RedisBridge::FenceRequest {
  RedisBridge* bridge;
  std::string channel;
  uint64_t generation;
  std::string epoch;  // the one found contradicted
};

struct RedisBridge::WaitBatch {
  bool in_flight = false;
  std::vector<std::unique_ptr<PublishRequest>> covered;  // written before the WAIT in flight
  std::vector<std::unique_ptr<PublishRequest>> next;     // for the WAIT after it
};

struct RedisBridge::WaitTicket {
  RedisBridge* bridge;
  redisAsyncContext* ac;
};

struct RedisBridge::PublishRequest {
  RedisBridge* bridge;
  std::string channel;
  std::string event;
  std::string data;
  PublishCallback done;
  PublishResult result;  // kept while WAIT runs
};

namespace {

bool is_noscript(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR &&
         reply_or_error_text(r).substr(0, 8) == "NOSCRIPT";
}

std::string key_of(std::string_view channel, const char* suffix) {
  return redis_pubsub_name(channel) + suffix;
}

}  // namespace

std::string script_sha1(std::string_view script) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(script.data()), script.size(), digest);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

RedisBridge::RedisBridge(event_base* base, Hub& hub, const RedisBridgeConfig& config,
                         BridgeHealth& health, SharedSubscriptions& shared)
    : base_(base),
      hub_(hub),
      config_(config),
      health_(health),
      publish_sha_(script_sha1(kPublishScript)),
      history_sha_(script_sha1(kHistoryScript)),
      fence_sha_(script_sha1(kFenceScript)) {
  std::vector<const char*> scripts = {kPublishScript, kHistoryScript, kFenceScript};
  RedisBackend::Listener& listener = *this;
  redis_ = std::make_unique<FanoutBackend>(shared, base, config.address, scripts, health, listener);
  flush_event_ = event_new(base_, -1, 0, on_flush, this);
  fetch_retry_event_ = evtimer_new(base_, on_fetch_retry, this);
  sync_watch_event_ = event_new(base_, -1, EV_PERSIST, on_sync_watch, this);
  timeval second{1, 0};
  event_add(sync_watch_event_, &second);
  hub_.set_observer(this);
}

RedisBridge::~RedisBridge() {
  stop();
  hub_.set_observer(nullptr);
  event_free(flush_event_);
  event_free(fetch_retry_event_);
  event_free(sync_watch_event_);
}

void RedisBridge::start() { redis_->start(); }

void RedisBridge::stop() { redis_->stop(); }

size_t RedisBridge::redis_subscriptions() const {
  size_t n = 0;
  for (const auto& [name, link] : links_)
    if (link.redis == RedisState::kSubscribed) ++n;
  return n;
}

// ---- subscriptions -------------------------------------------------------------

void RedisBridge::on_first_subscriber(const std::string& channel) {
  Link& link = links_[channel];
  link.wanted = true;
  // Until the channel is subscribed in Redis and rebuilt from its stream, the hub
  // cannot judge cursors; subscriptions wait in the hub meanwhile.
  if (!link.synced) {
    hub_.begin_sync(channel);
    start_sync_wait(link);
  }
  schedule_flush();
}

// The bound on how long subscribers wait for a read (on_sync_watch) counts from here.
void RedisBridge::start_sync_wait(Link& link) {
  if (link.unsynced_since_ms == 0) link.unsynced_since_ms = monotonic_ms();
}

bool RedisBridge::reread(const std::string& channel) {
  auto it = links_.find(channel);
  if (it == links_.end() || !it->second.wanted) return false;
  Link& link = it->second;
  link.synced = false;  // live messages wait (parked) until the read is done
  start_sync_wait(link);
  if (link.redis == RedisState::kSubscribed) start_fetch(channel, link);
  return true;
}

void RedisBridge::on_last_subscriber(const std::string& channel) {
  auto it = links_.find(channel);
  if (it == links_.end()) return;
  it->second.wanted = false;
  schedule_flush();
}

void RedisBridge::schedule_flush() {
  // Subscribe/unsubscribe requests of one loop turn go out together, and a channel
  // that comes and goes within the turn costs Redis nothing.
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  event_active(flush_event_, 0, 0);
}

void RedisBridge::on_flush(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RedisBridge*>(arg);
  self->flush_scheduled_ = false;
  self->flush_subscriptions();
}

void RedisBridge::flush_subscriptions() {
  std::vector<std::string> subscribe, unsubscribe;
  for (auto it = links_.begin(); it != links_.end();) {
    Link& link = it->second;
    if (link.wanted && link.redis == RedisState::kUnsubscribed) {
      std::string name = redis_pubsub_name(it->first);
      if (redis_->can_subscribe(name)) {
        subscribe.push_back(std::move(name));
        link.redis = RedisState::kSubscribing;
      }
    } else if (!link.wanted && link.redis == RedisState::kSubscribed) {
      unsubscribe.push_back(redis_pubsub_name(it->first));
      link.redis = RedisState::kUnsubscribing;
      // Without live messages the hub's copy goes stale; the next subscriber re-syncs.
      link.synced = false;
      link.fetching = false;
      link.parked.clear();
      ++link.generation;
    }
    if (!link.wanted && link.redis == RedisState::kUnsubscribed) {
      it = links_.erase(it);
      continue;
    }
    if (link.wanted && link.redis == RedisState::kSubscribed && !link.synced && !link.fetching) {
      // Wanted again after the SUBSCRIBE was confirmed while nobody wanted it (so that
      // confirmation started no read): the subscription is live, read the stream now,
      // or the subscribers waiting in the hub would wait for ever.
      start_fetch(it->first, link);
    }
    ++it;
  }
  if (!subscribe.empty()) redis_->subscribe(subscribe);
  if (!unsubscribe.empty()) redis_->unsubscribe(unsubscribe);
}

void RedisBridge::on_pubsub(std::string_view kind, std::string_view name,
                            std::string_view payload) {
  const std::string channel = channel_from_pubsub_name(name);
  if (channel.empty()) return;
  if (kind == "message") {
    handle_live(channel, payload);
    return;
  }
  auto it = links_.find(channel);
  if (it == links_.end()) return;
  Link& link = it->second;
  if (kind == "subscribe") {
    link.redis = RedisState::kSubscribed;
    // Only now can the stream be read without missing what is published meanwhile:
    // anything newer than the read arrives live and waits in `parked`.
    if (link.wanted)
      start_fetch(channel, link);
    else
      schedule_flush();
  } else if (kind == "unsubscribe") {
    link.redis = RedisState::kUnsubscribed;
    schedule_flush();  // re-subscribe if wanted again, else forget
  }
}

void RedisBridge::on_subscriptions_lost(const std::vector<std::string>* names) {
  // Those Redis subscriptions are gone (the connection, or with a cluster one shard's
  // connection or a migrated slot): mark the channels stale; they are subscribed again
  // and re-read from their streams, backfilling what was missed.
  if (names == nullptr) {
    for (auto it = links_.begin(); it != links_.end();) {
      lose(it->first, it->second);
      if (!it->second.wanted)
        it = links_.erase(it);
      else
        ++it;
    }
  } else {
    for (const std::string& name : *names) {
      auto it = links_.find(channel_from_pubsub_name(name));
      if (it == links_.end()) continue;
      lose(it->first, it->second);
      if (!it->second.wanted) links_.erase(it);
    }
  }
  schedule_flush();
}

void RedisBridge::lose(const std::string& channel, Link& link) {
  link.redis = RedisState::kUnsubscribed;
  link.synced = false;
  link.fetching = false;
  link.refetch = false;
  link.parked.clear();
  ++link.generation;
  if (!link.wanted) return;
  hub_.begin_sync(channel);
  start_sync_wait(link);
}

// ---- live messages and gaps ----------------------------------------------------

void RedisBridge::handle_live(const std::string& channel, std::string_view payload) {
  auto it = links_.find(channel);
  if (it == links_.end() || !it->second.wanted) return;
  Link& link = it->second;
  std::string error;
  MessagePtr m = parse_pubsub_payload(channel, payload, wall_clock_ms(), monotonic_ms(), error);
  if (m == nullptr) {
    health_.payload_errors.fetch_add(1, std::memory_order_relaxed);
    LOG_WARN("bridge", "dropping a malformed message on %s: %s", channel.c_str(), error.c_str());
    return;
  }
  if (m->id == 0) {
    hub_.publish(m);  // bare PUBLISH: live only, nothing to order it against
    return;
  }
  link.parked.push_back(std::move(m));
  if (link.parked.size() > config_.max_parked) {
    // The stream holds them all; fetch again instead of growing without bound.
    link.parked.clear();
    link.refetch = true;
  }
  if (link.synced && !link.fetching) apply_parked(channel, link);
}

void RedisBridge::apply_parked(const std::string& channel, Link& link) {
  std::vector<MessagePtr> parked;
  parked.swap(link.parked);
  for (size_t i = 0; i < parked.size(); ++i) {
    const MessagePtr& m = parked[i];
    const Channel* ch = hub_.find(channel);
    const bool same_epoch = ch != nullptr && ch->epoch() == m->epoch;
    const uint64_t last = same_epoch ? ch->last_id() : 0;
    if (same_epoch && m->id <= last) {
      if (!hub_.conflicts(*m)) continue;  // already have it
      // Another message under an id already delivered: Redis lost writes (a promoted
      // replica). Never delivered; the stream is read again, and the fetch fences.
      LOG_WARN("bridge", "%s: a different message under delivered id %llu; checking the stream",
               channel.c_str(), static_cast<unsigned long long>(m->id));
      link.parked.assign(parked.begin() + static_cast<std::ptrdiff_t>(i) + 1, parked.end());
      start_fetch(channel, link);
      return;
    }
    if (m->prev_id != last) {
      // A predecessor is missing (lost pub/sub message, reconnect, new epoch we joined
      // late): read it from the stream, keep this one and the rest parked until then.
      health_.gaps_filled.fetch_add(1, std::memory_order_relaxed);
      LOG_INFO("bridge", "gap on %s: have %llu, got %llu (prev %llu); reading the stream",
               channel.c_str(), static_cast<unsigned long long>(last),
               static_cast<unsigned long long>(m->id), static_cast<unsigned long long>(m->prev_id));
      link.parked.assign(parked.begin() + static_cast<std::ptrdiff_t>(i), parked.end());
      start_fetch(channel, link);
      return;
    }
    hub_.publish(m);
  }
}

// ---- reading a channel's stream ----------------------------------------------------

void RedisBridge::start_fetch(const std::string& channel, Link& link) {
  if (link.fetching) {
    link.refetch = true;
    return;
  }
  const Channel* ch = hub_.find(channel);
  auto* request = new FetchRequest{
      this, channel, link.generation, "0", std::to_string(config_.history_size), ""};
  if (ch != nullptr && !ch->epoch().empty()) {
    // From the newest id this worker has, included: finish_fetch compares that entry
    // with its own to tell whether Redis still holds what was delivered.
    request->after = std::to_string(ch->last_id() > 0 ? ch->last_id() - 1 : 0);
    request->epoch = ch->epoch();
  }
  request->parked_at_send = link.parked.size();
  link.fetching = true;
  link.refetch = false;
  if (!send_fetch(request, false)) {
    delete request;
    link.fetching = false;
    timeval tv{0, 500 * 1000};
    evtimer_add(fetch_retry_event_, &tv);
  }
}

bool RedisBridge::send_fetch(FetchRequest* r, bool use_eval) {
  const std::string seq = key_of(r->channel, ":seq");
  const std::string epoch = key_of(r->channel, ":epoch");
  const std::string log = key_of(r->channel, ":log");
  return redis_->command(seq, on_fetch_reply, r,
                         {use_eval ? "EVAL" : "EVALSHA", use_eval ? kHistoryScript : history_sha_,
                          "3", seq, epoch, log, r->after, r->count, r->epoch});
}

void RedisBridge::on_fetch_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  auto* request = static_cast<FetchRequest*>(privdata);
  RedisBridge* self = request->bridge;
  if (is_noscript(r) && self->send_fetch(request, true)) return;  // the script cache was flushed
  std::unique_ptr<FetchRequest> owned(request);
  auto it = self->links_.find(request->channel);
  if (it == self->links_.end() || it->second.generation != request->generation) return;
  Link& link = it->second;
  if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
    if (r != nullptr)
      LOG_ERROR("bridge", "reading %s's stream failed: %s", request->channel.c_str(), r->str);
    link.fetching = false;
    timeval tv{0, 500 * 1000};
    evtimer_add(self->fetch_retry_event_, &tv);
    return;
  }
  self->finish_fetch(request->channel, link, r, request->parked_at_send);
}

void RedisBridge::finish_fetch(const std::string& channel, Link& link, const redisReply* reply,
                               size_t parked_at_send) {
  link.fetching = false;
  HistoryReply history;
  std::string error;
  if (!parse_history_reply(channel, reply, wall_clock_ms(), monotonic_ms(), history, error)) {
    LOG_ERROR("bridge", "unexpected history reply for %s: %s", channel.c_str(), error.c_str());
    timeval tv{1, 0};
    evtimer_add(fetch_retry_event_, &tv);
    return;
  }
  if (hub_.contradicted_by(channel, history.epoch, history.head, history.entries)) {
    fence(channel, link, history.epoch);
    return;
  }
  if (hub_.finish_sync(channel, history.epoch, history.head, history.entries)) {
    // A cursor ahead of Redis: once more, now that its message had time to arrive.
    start_fetch(channel, link);
    return;
  }
  link.synced = true;
  // Live messages parked before this read in another epoch than the one it found are
  // from an epoch Redis has left (a fence, lost keys): they can never be placed (every
  // read would find them "after a gap" again). Their epoch's subscribers were reset.
  const size_t stale_end = std::min(parked_at_send, link.parked.size());
  const auto stale = std::remove_if(
      link.parked.begin(), link.parked.begin() + static_cast<std::ptrdiff_t>(stale_end),
      [&](const MessagePtr& m) { return !history.epoch.empty() && m->epoch != history.epoch; });
  link.parked.erase(stale, link.parked.begin() + static_cast<std::ptrdiff_t>(stale_end));
  if (link.refetch) {
    start_fetch(channel, link);
    return;
  }
  apply_parked(channel, link);
}

// ---- fencing -----------------------------------------------------------------------

void RedisBridge::fence(const std::string& channel, Link& link, const std::string& epoch) {
  const Channel* ch = hub_.find(channel);
  LOG_WARN("bridge",
           "%s: Redis is behind what was delivered (epoch %s, delivered up to %llu): moving the "
           "channel to a new epoch so no id is reused",
           channel.c_str(), epoch.c_str(),
           static_cast<unsigned long long>(ch != nullptr ? ch->last_id() : 0));
  health_.fences.fetch_add(1, std::memory_order_relaxed);
  // Live messages stay parked until the channel is read again in its new epoch.
  link.fetching = true;
  auto* request = new FenceRequest{this, channel, link.generation, epoch};
  if (!send_fence(request, false)) {
    delete request;
    link.fetching = false;
    link.refetch = true;
    timeval tv{0, 500 * 1000};
    evtimer_add(fetch_retry_event_, &tv);
  }
}

bool RedisBridge::send_fence(FenceRequest* r, bool use_eval) {
  const std::string seq = key_of(r->channel, ":seq");
  return redis_->command(seq, on_fence_reply, r,
                         {use_eval ? "EVAL" : "EVALSHA", use_eval ? kFenceScript : fence_sha_, "3",
                          seq, key_of(r->channel, ":epoch"), key_of(r->channel, ":log"), r->epoch});
}

void RedisBridge::on_fence_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  auto* request = static_cast<FenceRequest*>(privdata);
  RedisBridge* self = request->bridge;
  if (is_noscript(r) && self->send_fence(request, true)) return;
  std::unique_ptr<FenceRequest> owned(request);
  auto it = self->links_.find(request->channel);
  if (it == self->links_.end() || it->second.generation != request->generation) return;
  Link& link = it->second;
  link.fetching = false;
  if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
    if (r != nullptr) {
      LOG_ERROR("bridge", "fencing %s failed: %s", request->channel.c_str(), r->str);
      self->redis_->command_failed(r->str);
    }
    link.refetch = true;
    timeval tv{0, 500 * 1000};
    evtimer_add(self->fetch_retry_event_, &tv);
    return;
  }
  // Read the channel in its new epoch: the hub resets its subscribers (epoch-changed).
  self->start_fetch(request->channel, link);
}

// Subscriptions never wait silently for Redis: a channel that could not be read for
// kSyncWaitLimitMs (Redis unreachable, the read failing) answers its waiting
// subscribers "unavailable", again every limit while it lasts.
void RedisBridge::on_sync_watch(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RedisBridge*>(arg);
  const int64_t now = monotonic_ms();
  std::vector<std::string> overdue;
  for (auto& [channel, link] : self->links_) {
    if (link.synced || !link.wanted) {
      link.unsynced_since_ms = 0;
    } else if (link.unsynced_since_ms == 0) {
      link.unsynced_since_ms = now;
    } else if (now - link.unsynced_since_ms >= kSyncWaitLimitMs) {
      link.unsynced_since_ms = now;
      overdue.push_back(channel);
    }
  }
  for (const std::string& channel : overdue) self->hub_.fail_pending(channel);
}

void RedisBridge::on_fetch_retry(evutil_socket_t, short, void* arg) {
  static_cast<RedisBridge*>(arg)->resume_reads();
}

void RedisBridge::resume_reads() {
  for (auto& [channel, link] : links_) {
    if (!link.wanted || link.redis != RedisState::kSubscribed || link.fetching) continue;
    if (!link.synced || !link.parked.empty() || link.refetch) start_fetch(channel, link);
  }
}

// ---- publishing ------------------------------------------------------------------

void RedisBridge::publish(std::string_view channel, std::string_view event, std::string_view data,
                          PublishCallback done) {
  auto* request = new PublishRequest{
      this,           std::string(channel), std::string(event), std::string(data), std::move(done),
      PublishResult{}};
  if (!send_publish(request, false)) {
    std::unique_ptr<PublishRequest> owned(request);
    PublishResult result;
    result.channel = request->channel;
    result.error = "redis unavailable";
    owned->done(result);
  }
}

bool RedisBridge::send_publish(PublishRequest* r, bool use_eval) {
  const std::string seq = key_of(r->channel, ":seq");
  const std::string epoch = key_of(r->channel, ":epoch");
  const std::string log = key_of(r->channel, ":log");
  const std::string name = redis_pubsub_name(r->channel);
  const std::string maxlen = std::to_string(config_.history_size);
  const std::string ttl = std::to_string(config_.key_ttl_seconds);
  const std::string_view script =
      use_eval ? std::string_view(kPublishScript) : std::string_view(publish_sha_);
  std::vector<std::string_view> args = {use_eval ? "EVAL" : "EVALSHA",
                                        script,
                                        "3",
                                        seq,
                                        epoch,
                                        log,
                                        name,
                                        r->data,
                                        r->event,
                                        maxlen,
                                        ttl};
  if (redis_->sharded()) args.push_back("s");  // SPUBLISH: only the channel's shard carries it
  return redis_->command(seq, on_publish_reply, r, args);
}

void RedisBridge::on_publish_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  auto* request = static_cast<PublishRequest*>(privdata);
  if (is_noscript(r) && request->bridge->send_publish(request, true)) return;
  std::unique_ptr<PublishRequest> owned(request);
  PublishResult result;
  result.channel = request->channel;
  if (r == nullptr) {
    result.error = "redis connection lost";
  } else if (r->type == REDIS_REPLY_ERROR) {
    result.error = std::string(reply_or_error_text(r));
    request->bridge->redis_->command_failed(result.error);
  } else if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
             r->element[0]->type != REDIS_REPLY_INTEGER) {
    result.error = "unexpected reply from the publish script";
  } else {
    result.ok = true;
    result.id = static_cast<uint64_t>(r->element[0]->integer);
    result.epoch = std::string(reply_or_error_text(r->element[1]));
  }
  if (!result.ok)
    LOG_ERROR("bridge", "publish to %s failed: %s", request->channel.c_str(), result.error.c_str());
  RedisBridge* self = request->bridge;
  if (result.ok && self->config_.wait_replicas > 0 && ac != nullptr) {
    owned->result = result;
    self->wait_for_replicas(ac, std::move(owned));
    return;
  }
  request->done(result);
}

// WAIT counts the replicas that have every earlier write of its connection, so it goes on
// the connection that ran the script (after an ASK, the importing node's), and one WAIT
// answers every publish written before it. WAIT blocks its connection until it returns:
// one at a time per connection, never one per publish.
void RedisBridge::wait_for_replicas(redisAsyncContext* ac,
                                    std::unique_ptr<PublishRequest> request) {
  std::unique_ptr<WaitBatch>& batch = waits_[ac];
  if (batch == nullptr) batch = std::make_unique<WaitBatch>();
  if (batch->in_flight) {
    batch->next.push_back(std::move(request));
    return;
  }
  batch->covered.push_back(std::move(request));
  send_wait(ac, *batch);
}

void RedisBridge::send_wait(redisAsyncContext* ac, WaitBatch& batch) {
  const std::string replicas = std::to_string(config_.wait_replicas);
  const std::string timeout = std::to_string(config_.wait_timeout_ms);
  auto* ticket = new WaitTicket{this, ac};
  if (redisAsyncCommand(ac, on_wait_reply, ticket, "WAIT %s %s", replicas.c_str(),
                        timeout.c_str()) == REDIS_OK) {
    batch.in_flight = true;
    return;
  }
  delete ticket;  // the connection is closing: published, but not known to be replicated
  std::vector<std::unique_ptr<PublishRequest>> all;
  all.swap(batch.covered);
  for (auto& r : batch.next) all.push_back(std::move(r));
  waits_.erase(ac);
  for (auto& r : all) answer_waited(std::move(r), 0);
}

void RedisBridge::on_wait_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  std::unique_ptr<WaitTicket> ticket(static_cast<WaitTicket*>(privdata));
  RedisBridge* self = ticket->bridge;
  auto it = self->waits_.find(ticket->ac);
  if (it == self->waits_.end()) return;
  WaitBatch& batch = *it->second;
  const int replicas =
      r != nullptr && r->type == REDIS_REPLY_INTEGER ? static_cast<int>(r->integer) : 0;
  std::vector<std::unique_ptr<PublishRequest>> answered;
  answered.swap(batch.covered);
  batch.in_flight = false;
  if (r == nullptr) {
    // The connection is gone: nothing more can be learned about the later ones either.
    for (auto& next : batch.next) answered.push_back(std::move(next));
    self->waits_.erase(it);
  } else if (!batch.next.empty()) {
    batch.covered.swap(batch.next);
    self->send_wait(ticket->ac, batch);
  } else {
    self->waits_.erase(it);
  }
  for (auto& request : answered) self->answer_waited(std::move(request), replicas);
}

void RedisBridge::answer_waited(std::unique_ptr<PublishRequest> request, int replicas) {
  PublishResult& result = request->result;
  result.replicas = replicas;
  result.durable = static_cast<size_t>(replicas) >= config_.wait_replicas;
  if (!result.durable) {
    health_.publishes_not_durable.fetch_add(1, std::memory_order_relaxed);
    LOG_WARN("bridge", "publish %s/%llu: %d of %zu replicas within the wait",
             result.channel.c_str(), static_cast<unsigned long long>(result.id), replicas,
             config_.wait_replicas);
  }
  request->done(result);
}

}  // namespace comet
