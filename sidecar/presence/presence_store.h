#pragma once
// Where a PresenceRegistry keeps members beyond its own process (docs/protocol.md,
// "Presence across sidecars (Redis)"). Without a store the registry is the whole truth
// (one sidecar); with one (the Redis store, bridge/presence_redis.h), the registry's
// local members become this sidecar's entries in the store, the store decides joins and
// leaves across sidecars and feeds them back (PresenceRegistry::apply_remote).

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace comet {

class PresenceStore {
 public:
  virtual ~PresenceStore() = default;
  /**
   * This sidecar has a member `user` in `channel` now (its first local connection, or
   * back after the grace ran out). Called under the registry's lock, from any worker
   * thread: queue the work and return; never call the registry from inside.
   */
  virtual void add_entry(const std::string& channel, const std::string& user,
                         const std::string& info_json) = 0;
  /** This sidecar's member left (grace over). Same rules as add_entry. */
  virtual void remove_entry(const std::string& channel, const std::string& user) = 0;

  /** One channel's members as read from the store: (user, info JSON or ""). */
  using Members = std::vector<std::pair<std::string, std::string>>;
  using ReadDone = std::function<void(bool ok, std::vector<Members> members)>;
  /**
   * Reads every sidecar's members of `channels` (for /presence and /occupancy). `done`
   * is called exactly once, on the store's own thread, with one list per channel in
   * order; ok = false when the store could not be read. Callable from any thread (not
   * under the registry's lock).
   */
  virtual void read(std::vector<std::string> channels, ReadDone done) = 0;
};

}  // namespace comet
