#pragma once
// The message bus interface: how a publish reaches every worker. The embedded bus does
// it in-process; the Redis bridge (bridge/) does it across sidecar instances.

#include <cstdint>
#include <string>
#include <string_view>

#include "hub/cursor.h"

namespace comet {

/** What a publish returns to the publisher. */
struct PublishResult {
  bool ok = false;
  std::string channel;
  std::string epoch;
  uint64_t id = 0;
  std::string error;  // when !ok
};

}  // namespace comet
