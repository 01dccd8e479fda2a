// comet-sidecar: parses configuration, loads static files, starts one worker per core
// on a shared SO_REUSEPORT port and waits for SIGINT/SIGTERM.

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "bridge/presence_redis.h"
#include "bridge/redis_bus.h"
#include "bridge/redis_url.h"
#include "bus/embedded_bus.h"
#include "config/config.h"
#include "hub/message.h"
#include "server/shared_state.h"
#include "server/static_files.h"
#include "server/worker.h"
#include "transports/transport_table.h"
#include "util/log.h"
#include "webhooks/webhook_sender.h"

extern char** environ;

// js-client/comet.js, built in (sidecar/embed_file.cmake).
extern const unsigned char kEmbeddedCometJs[];
extern const std::size_t kEmbeddedCometJs_size;

namespace {

comet::LogLevel log_level_from(const std::string& name) {
  if (name == "debug") return comet::LogLevel::kDebug;
  if (name == "warn") return comet::LogLevel::kWarn;
  if (name == "error") return comet::LogLevel::kError;
  return comet::LogLevel::kInfo;
}

}  // namespace

int main(int argc, char** argv) {
  comet::ConfigResult parsed = comet::parse_config(argc, argv, environ);
  if (!parsed.ok) {
    fprintf(stderr, "comet-sidecar: %s\n(run comet-sidecar --help for the options)\n",
            parsed.error.c_str());
    return 2;
  }
  for (const std::string& warning : parsed.warnings)
    fprintf(stderr, "comet-sidecar: %s\n", warning.c_str());
  if (parsed.show_help) {
    fputs(comet::config_help().c_str(), stdout);
    return 0;
  }
  auto shared = std::make_unique<comet::SharedState>();
  shared->config = parsed.config;
  comet::Config& config = shared->config;
  comet::set_log_level(log_level_from(config.log_level));
  if (config.workers == 0)
    config.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // As many connections as the hard open-file limit allows (nginx's
  // worker_rlimit_nofile); --max-connections defaults to that minus a reserve.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  getrlimit(RLIMIT_NOFILE, &files);
  if (config.max_connections == 0)
    config.max_connections =
        comet::default_max_connections(static_cast<size_t>(files.rlim_cur), config.workers);
  shared->limits = std::make_unique<comet::ConnectionLimits>(config);
  shared->presence = std::make_unique<comet::PresenceRegistry>(config.presence_grace_ms);
  if (config.max_output_total_bytes == 0) {
    // A quarter of the machine's memory, at most 1 GiB, for output clients have not read.
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    const size_t ram = pages > 0 && page > 0 ? static_cast<size_t>(pages) * page : 0;
    config.max_output_total_bytes =
        std::min<size_t>(ram / 4 != 0 ? ram / 4 : 1ull << 30, 1ull << 30);
  }
  if (config.max_output_soft_bytes > config.max_output_bytes)
    config.max_output_soft_bytes = config.max_output_bytes;
  if (const std::string error = comet::check_transport_names(config.transports); !error.empty()) {
    fprintf(stderr, "comet-sidecar: %s\n(run comet-sidecar --help for the options)\n",
            error.c_str());
    return 2;
  }
  if (const std::string error = comet::WebhookSender::check_config(config); !error.empty()) {
    fprintf(stderr, "comet-sidecar: %s\n", error.c_str());
    return 2;
  }
  // The composition root: the only place that knows which bus runs.
  std::unique_ptr<comet::PresenceRedis> presence_redis;
  if (!config.redis_url.empty()) {
    comet::RedisBridgeConfig redis;
    const std::string error = comet::parse_redis_url(config.redis_url, redis.address);
    if (!error.empty()) {
      fprintf(stderr, "comet-sidecar: --redis %s: %s\n", config.redis_url.c_str(), error.c_str());
      return 2;
    }
    redis.history_size = config.history_size;
    redis.key_ttl_seconds = (config.redis_key_ttl_ms + 999) / 1000;
    redis.wait_replicas = config.redis_wait_replicas;
    redis.wait_timeout_ms = config.redis_wait_timeout_ms;
    shared->bus = std::make_unique<comet::RedisBus>(redis);
    // Presence across sidecars (docs/protocol.md, "Presence across sidecars (Redis)").
    presence_redis = std::make_unique<comet::PresenceRedis>(*shared->presence, redis.address);
  } else {
    shared->bus = std::make_unique<comet::EmbeddedBus>();
  }

  if (!config.static_dir.empty()) {
    const std::string error = comet::load_static_dir(config.static_dir, shared->static_files);
    if (!error.empty()) {
      fprintf(stderr, "comet-sidecar: %s\n", error.c_str());
      return 2;
    }
  }
  if (!config.js_client_path.empty()) {
    const std::string error =
        comet::load_static_file(config.js_client_path, "/comet.js", shared->static_files);
    if (!error.empty()) {
      fprintf(stderr, "comet-sidecar: %s\n", error.c_str());
      return 2;
    }
  } else if (shared->static_files.count("/comet.js") == 0) {
    shared->static_files["/comet.js"] = comet::StaticFile{
        "application/javascript; charset=utf-8",
        std::string(reinterpret_cast<const char*>(kEmbeddedCometJs), kEmbeddedCometJs_size)};
    shared->comet_js_version = COMET_JS_VERSION;
  }

  if (!config.tls_cert.empty() || !config.tls_key.empty()) {
    if (config.tls_cert.empty() || config.tls_key.empty()) {
      fprintf(stderr, "comet-sidecar: TLS needs both --tls-cert and --tls-key\n");
      return 2;
    }
    std::string error;
    shared->tls = comet::TlsContext::load(config.tls_cert, config.tls_key, error);
    if (shared->tls == nullptr) {
      fprintf(stderr, "comet-sidecar: TLS: %s\n", error.c_str());
      return 2;
    }
  }

  comet::set_etags(shared->static_files);
  comet::compress_static_files(shared->static_files);

  // Writes to a vanished peer must fail with EPIPE, not kill the process. Workers
  // inherit a mask without SIGINT/SIGTERM so only the main thread's sigwait sees them.
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // reloads the TLS certificate and key
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::vector<std::unique_ptr<comet::Worker>> workers;
  uint16_t port = config.listen_port;
  for (int i = 0; i < config.workers; ++i) {
    workers.push_back(std::make_unique<comet::Worker>(i, *shared));
    std::string error;
    // Port 0: the first worker picks a free port and the others join it.
    port = workers.back()->listen(config.listen_host, port, error);
    if (port == 0) {
      fprintf(stderr, "comet-sidecar: %s\n", error.c_str());
      return 1;
    }
  }
  if (config.publish_listen_enabled) {
    // SO_REUSEPORT would let both listeners share one port and mix their connections.
    if (config.publish_listen_port != 0 && config.publish_listen_port == port) {
      fprintf(stderr, "comet-sidecar: --publish-listen must use another port than --listen (%u)\n",
              port);
      return 1;
    }
    uint16_t publish_port = config.publish_listen_port;
    for (auto& worker : workers) {
      std::string error;
      publish_port = worker->listen_publish(config.publish_listen_host, publish_port, error);
      if (publish_port == 0) {
        fprintf(stderr, "comet-sidecar: --publish-listen: %s\n", error.c_str());
        return 1;
      }
    }
    const bool pv6 = config.publish_listen_host.find(':') != std::string::npos;
    printf("comet-sidecar publish listener on %s%s%s:%u\n", pv6 ? "[" : "",
           config.publish_listen_host.c_str(), pv6 ? "]" : "", publish_port);
  }
  const bool v6 = config.listen_host.find(':') != std::string::npos;
  printf("comet-sidecar listening on %s%s%s:%u (%d workers, %s bus)\n", v6 ? "[" : "",
         config.listen_host.c_str(), v6 ? "]" : "", port, config.workers, shared->bus->name());
  if (shared->tls != nullptr)
    printf("comet-sidecar TLS on %s:%u (https, wss): %s\n", config.listen_host.c_str(), port,
           shared->tls->subject().c_str());
  fflush(stdout);

  // Registered before the workers run, unregistered after they stop: the sink is read
  // without a lock.
  std::unique_ptr<comet::WebhookSender> webhooks;
  if (!config.webhook_url.empty()) {
    webhooks = std::make_unique<comet::WebhookSender>(config, shared->counters.webhooks);
    comet::set_presence_event_sink(webhooks.get());
  }

  if (presence_redis != nullptr) presence_redis->start();  // its thread has the signals blocked
  std::vector<std::thread> threads;
  for (auto& worker : workers) threads.emplace_back([w = worker.get()] { w->run(); });

  int signal_number = 0;
  for (;;) {
    sigwait(&stop_signals, &signal_number);
    if (signal_number != SIGHUP) break;
    if (shared->tls == nullptr) {
      LOG_INFO("main", "SIGHUP: nothing to reload (no TLS)");
      continue;
    }
    // New connections get the new certificate; open ones keep theirs.
    std::string error;
    if (shared->tls->reload(error))
      LOG_INFO("main", "SIGHUP: TLS certificate reloaded: %s", shared->tls->subject().c_str());
    else
      LOG_ERROR("main", "SIGHUP: TLS reload failed, keeping the current certificate: %s",
                error.c_str());
  }
  LOG_INFO("main", "received %s, closing connections",
           signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  shared->draining.store(true);
  for (auto& worker : workers) worker->stop();
  for (auto& thread : threads) thread.join();
  workers.clear();
  // The closed connections' members are in their grace. Without Redis nobody else could
  // ever report them, so they leave now; with it their entries expire and another
  // sidecar sweeps them, or a reconnect elsewhere keeps them (docs/protocol.md,
  // "Webhooks", "Stopping"): leave_all does nothing while the store is set, so it goes
  // before the store is gone.
  shared->presence->leave_all(comet::monotonic_ms());
  presence_redis.reset();  // after the workers: they leave the registry as they close
  comet::set_presence_event_sink(nullptr);
  // What is queued (those leaves included) goes out before the exit, within a bound.
  if (webhooks != nullptr) webhooks->flush(comet::WebhookSender::kStopTimeoutMs);
  webhooks.reset();
  LOG_INFO("main", "stopped");
  return 0;
}
