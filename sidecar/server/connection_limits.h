#pragma once
// Who may open another connection (docs/protocol.md, "Connection limits"): a process-wide
// cap (--max-connections, by default what the open-file limit allows after a reserve)
// and a per-address cap (--max-connections-per-ip; IPv6 by /64, since one host holds a
// whole /64). At a cap a small overflow band still gets in, to be answered 503 (and
// /healthz, /metrics answered as usual); beyond it the socket is closed at once.
// Shared by all workers; one mutex, taken once per accept and once per close.

#include <sys/socket.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"

namespace comet {

/** The verdict on one accepted socket. */
enum class Admission : uint8_t {
  kAdmitted,  // a normal connection
  kOverflow,  // over a cap: serve /healthz and /metrics, answer anything else 503
  kRefused,   // over the cap and the band: close at once
  kExempt,    // not counted (the internal publish listener)
};

class ConnectionLimits {
 public:
  /** Connections over a cap still admitted to be answered (health checks, a 503). */
  static constexpr uint32_t kOverflowBand = 32;

  explicit ConnectionLimits(const Config& config);

  /**
   * Judges a new connection from `peer`. `key` is what release() needs back (the
   * address's counting key; 0 = not counted per address).
   */
  Admission admit(const sockaddr* peer, uint32_t& key);
  /** The connection admitted with `admission` and `key` closed. */
  void release(Admission admission, uint32_t key);

  /** Open connections counted against --max-connections (for /metrics). */
  uint64_t open() const;
  /** Connections refused or answered 503 at a cap so far. */
  uint64_t refused() const;

 private:
  uint32_t key_of(const sockaddr* peer) const;
  bool exempt(const sockaddr* peer) const;

  const size_t max_total_;
  const size_t max_per_address_;
  std::vector<std::string> trusted_;  // raw address bytes of --trusted-proxies
  const uint32_t seed_;
  mutable std::mutex mutex_;
  size_t total_ = 0;
  size_t overflow_ = 0;
  uint64_t refused_ = 0;
  std::unordered_map<uint32_t, uint32_t> per_address_;
};

/**
 * The default --max-connections: the open-file limit minus a reserve for listeners,
 * Redis and --auth-url connections, event fds and the overflow band.
 */
size_t default_max_connections(size_t open_file_limit, int workers);

}  // namespace comet
