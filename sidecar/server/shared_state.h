#pragma once
// What all workers share: read-only configuration and files, the bus, and counters.

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "bus/bus.h"
#include "config/config.h"
#include "presence/presence_registry.h"
#include "server/connection_limits.h"
#include "server/counters.h"
#include "tls/tls_context.h"

namespace comet {

/** A file served from memory (loaded at start-up so serving never blocks the loop). */
struct StaticFile {
  std::string content_type;
  std::string bytes;
  std::string etag{};  // "\"<hash of bytes>\"": revalidations are answered 304
  // gzip of `bytes`, made once at start-up ("" when it would not save bytes), and its
  // own ETag: a cache must not answer one encoding's revalidation with the other's.
  std::string gzip_bytes{};
  std::string gzip_etag{};
};

struct SharedState {
  Config config;
  std::unique_ptr<BusProvider> bus;  // the embedded bus or Redis (main.cpp chooses)
  Counters counters;
  // Presence members of this process (main.cpp sets it; null = no presence, unit tests).
  std::unique_ptr<PresenceRegistry> presence;
  std::unique_ptr<ConnectionLimits> limits;        // main.cpp sets it; null = no limits (tests)
  std::unique_ptr<TlsContext> tls;                 // TLS on --listen (null = plain HTTP)
  std::atomic<bool> draining{false};               // stopping: /healthz says so (503)
  std::map<std::string, StaticFile> static_files;  // by request path ("/", "/comet.js", ...)
  // The built-in comet.js's version ("" when --js-client replaces it): /comet-<it>.min.js
  // is that file and may be cached for a year.
  std::string comet_js_version;
};

}  // namespace comet
