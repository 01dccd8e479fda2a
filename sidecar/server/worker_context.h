#pragma once
// What sessions and transports use of their worker besides the connection: the shared
// configuration and counters, the worker's hub and its link to the bus. A Worker owns
// one; unit tests build one around a Hub and a test bus.

#include "auth/auth_url_client.h"
#include "bus/bus.h"
#include "hub/hub.h"
#include "server/shared_state.h"

namespace comet {

class PresenceLink;

struct WorkerContext {
  SharedState& shared;
  Hub& hub;
  Bus& bus;
  AuthUrlClient* auth_url = nullptr;  // set when --auth-url is configured
  PresenceLink* presence = nullptr;   // set when the process has a presence registry

  const Config& config() const { return shared.config; }
  Counters& counters() { return shared.counters; }
};

}  // namespace comet
