#include "bridge/standalone_redis.h"

#include <hiredis/hiredis.h>

#include "bridge/cluster_slots.h"
#include "bridge/redis_reply.h"

namespace comet {
namespace {

std::string health_name(const RedisAddress& a) {
  if (a.uses_sentinel()) return "sentinel:" + a.master_name;
  if (a.unix_socket) return "unix:" + a.path;
  return node_name(a.host, a.port);
}

}  // namespace

std::string_view pubsub_kind(std::string_view k) {
  if (k == "message" || k == "smessage") return "message";
  if (k == "subscribe" || k == "ssubscribe") return "subscribe";
  if (k == "unsubscribe" || k == "sunsubscribe") return "unsubscribe";
  return {};
}

StandaloneRedis::StandaloneRedis(event_base* base, const RedisAddress& address,
                                 std::vector<const char*> scripts, BridgeHealth& health,
                                 Listener& listener, bool with_subscriber)
    : address_(address),
      scripts_(std::move(scripts)),
      listener_(listener),
      sub_(base, address, "sub", /*subscriber=*/true),
      cmd_(base, address, "cmd"),
      cmd_health_(health, health_name(address)) {
  if (with_subscriber)
    sub_health_ = std::make_unique<BridgeHealth::Tracker>(health, health_name(address));
  sub_.set_handlers(
      [this] {
        sub_health_->up(true);
        listener_.on_subscriber_ready();
      },
      [this] {
        sub_health_->up(false);
        listener_.on_subscriptions_lost(nullptr);
      });
  cmd_.set_handlers(
      [this] {
        cmd_health_.up(true);
        // EVALSHA must find the scripts (a restarted Redis has an empty cache).
        for (const char* script : scripts_)
          cmd_.command(nullptr, nullptr, {"SCRIPT", "LOAD", script});
        listener_.on_commands_ready();
      },
      [this] {
        cmd_health_.up(false);
        // With Sentinel the command connection is the one that notices a lost or demoted
        // master (the subscriber connection cannot ask ROLE): move both.
        if (address_.uses_sentinel() && sub_health_) sub_.reconnect();
      });
}

StandaloneRedis::~StandaloneRedis() { stop(); }

void StandaloneRedis::start() {
  if (sub_health_) sub_.start();
  cmd_.start();
}

void StandaloneRedis::stop() {
  sub_.stop();
  cmd_.stop();
  if (sub_health_) sub_health_->up(false);
  cmd_health_.up(false);
}

void StandaloneRedis::subscribe(const std::vector<std::string>& names) {
  send_chunks("SUBSCRIBE", names);
}

void StandaloneRedis::unsubscribe(const std::vector<std::string>& names) {
  send_chunks("UNSUBSCRIBE", names);
}

void StandaloneRedis::send_chunks(const char* verb, const std::vector<std::string>& names) {
  for (size_t start = 0; start < names.size(); start += kChannelsPerCommand) {
    std::vector<std::string_view> args = {verb};
    for (size_t i = start; i < names.size() && i < start + kChannelsPerCommand; ++i)
      args.push_back(names[i]);
    sub_.command(on_pubsub_reply, this, args);
  }
}

void StandaloneRedis::on_pubsub_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  auto* self = static_cast<StandaloneRedis*>(privdata);
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  const std::string_view kind = pubsub_kind(reply_text(r->element[0]));
  if (kind.empty()) return;
  self->listener_.on_pubsub(kind, reply_text(r->element[1]),
                            kind == "message" ? reply_text(r->element[2]) : std::string_view());
}

bool StandaloneRedis::command(std::string_view, redisCallbackFn* callback, void* privdata,
                              const std::vector<std::string_view>& args) {
  return cmd_.command(callback, privdata, args);
}

// READONLY: the node was demoted (a failover); LOADING: it is not ready. Either way the
// commands belong elsewhere: reconnect (with Sentinel, asking where the master is now).
void StandaloneRedis::command_failed(std::string_view error) {
  if (error.rfind("READONLY", 0) == 0 || error.rfind("LOADING", 0) == 0) cmd_.reconnect();
}

}  // namespace comet
