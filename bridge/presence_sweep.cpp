// PresenceRedis, sweeping by due time (docs/protocol.md, "Presence across sidecars
// (Redis)"): every kSweepMs this sidecar claims the due slots of comet:{presence}:slots,
// sweeps each (presence_sweep.lua), reports their next due times together, and audits
// the unlisted slots the claim named. Joins and refreshes touch the slots they use.

#include <cstdlib>

#include "bridge/presence_redis.h"
#include "bridge/presence_redis_call.h"
#include "util/log.h"

namespace comet {

using namespace presence_redis_detail;

namespace {

constexpr const char* kAuditCount = "64";           // slots audited per claim (16384 in 256 claims)
constexpr const char* kSweepEntryLimit = "10000";   // entries per channel per sweep (a second)
constexpr const char* kSweepChannelLimit = "1000";  // channels per slot per sweep
constexpr const char* kClaimLimit = "1000";         // slots per sidecar per sweep

}  // namespace

// The slots one claim gave this sidecar: each sweep's next due time, reported together
// (presence_slots.lua "done") once every slot answered. A slot whose sweep failed is
// left out: its lease runs out and a sidecar takes it again.
struct PresenceRedis::SweepRound {
  PresenceRedis* self;
  std::string lease;
  std::vector<std::string> done_args;  // slot, ms until due (-1: empty), ...
  ~SweepRound() {
    if (done_args.empty()) return;
    std::vector<std::string> argv{"done", lease};
    argv.insert(argv.end(), done_args.begin(), done_args.end());
    self->eval(kSlots, {kSlotsKey, kAuditKey}, std::move(argv), nullptr,
               std::make_unique<Call>(self, kSlots));
  }
};

void PresenceRedis::sweep_slot(int slot, const std::shared_ptr<SweepRound>& round) {
  auto call = std::make_unique<Call>(this, kSweep);
  call->slot = slot;
  call->round = round;
  eval(kSweep, {due_index_key(slot)}, {kSweepEntryLimit, kSweepChannelLimit, publish_},
       on_sweep_reply, std::move(call));
}

void PresenceRedis::touch_slots(const std::vector<int>& slots, std::function<void()> then,
                                int64_t due_in_ms) {
  if (slots.empty()) {
    if (then) then();
    return;
  }
  std::vector<std::string> argv{"touch", std::to_string(due_in_ms)};
  for (int slot : slots) argv.push_back(std::to_string(slot));
  auto call = std::make_unique<Call>(this, kSlots);
  call->then = std::move(then);
  eval(kSlots, {kSlotsKey, kAuditKey}, std::move(argv), nullptr, std::move(call));
}

void PresenceRedis::on_sweep_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Call> call(static_cast<Call*>(privdata));
  auto* r = static_cast<redisReply*>(reply);
  PresenceRedis& self = *call->self;
  if (self.failed(call, r, on_sweep_reply) || r->elements == 0) return;
  // {next, channel, vacated, n, user1, info1, ..., channel, ...} (presence_sweep.lua)
  size_t i = 1;
  while (i + 2 < r->elements) {
    const std::string channel = text_at(r, i);
    const bool vacated = integer_at(r, i + 1) == 1;
    const size_t left = static_cast<size_t>(integer_at(r, i + 2));
    i += 3;
    for (size_t n = 0; n < left && i + 1 < r->elements; ++n, i += 2)
      self.registry_.report_event(PresenceEvent::kMemberRemoved, channel, text_at(r, i),
                                  text_at(r, i + 1));
    if (vacated) self.registry_.report_event(PresenceEvent::kChannelVacated, channel, "", "");
  }
  call->round->done_args.push_back(std::to_string(call->slot));
  call->round->done_args.push_back(std::to_string(integer_at(r, 0)));
}

void PresenceRedis::on_claim_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Call> call(static_cast<Call*>(privdata));
  auto* r = static_cast<redisReply*>(reply);
  PresenceRedis& self = *call->self;
  if (self.failed(call, r, on_claim_reply) || r->elements < 2) return;
  // {lease, n, slot_1..slot_n, audit...}: the round reports every slot's next due time
  // when the last sweep answered (its destructor).
  const size_t claimed = static_cast<size_t>(integer_at(r, 1));
  auto round = std::make_shared<SweepRound>();
  round->self = &self;
  round->lease = text_at(r, 0);
  size_t i = 2;
  for (; i < r->elements && i < 2 + claimed; ++i)
    self.sweep_slot(std::atoi(text_at(r, i).c_str()), round);
  // Slots not listed: listed again (due now) when their due index has channels.
  for (; i < r->elements; ++i) {
    auto audit = std::make_unique<Call>(&self, kSlots);
    audit->slot = std::atoi(text_at(r, i).c_str());
    const std::string key = due_index_key(audit->slot);
    if (self.redis_->command(key, on_audit_reply, audit.get(), {"ZCARD", key})) audit.release();
  }
}

void PresenceRedis::on_audit_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Call> call(static_cast<Call*>(privdata));
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr || r->type != REDIS_REPLY_INTEGER || r->integer == 0) return;
  LOG_WARN("presence", "slot %d has presence channels but was not listed for sweeping: listed",
           call->slot);
  call->self->touch_slots({call->slot}, nullptr, 0);
}

void PresenceRedis::on_slots_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Call> call(static_cast<Call*>(privdata));
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr || r->type != REDIS_REPLY_INTEGER) {
    call->self->failed(call, r, on_slots_reply);
    if (call == nullptr) return;  // sent again with the script itself
  }
  if (call->then) call->then();
}

void PresenceRedis::on_sweep(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<PresenceRedis*>(arg);
  self->eval(kSlots, {kSlotsKey, kAuditKey},
             {"claim", kClaimLimit, std::to_string(kClaimLeaseMs), kAuditCount}, on_claim_reply,
             std::make_unique<Call>(self, kSlots));
}

}  // namespace comet
