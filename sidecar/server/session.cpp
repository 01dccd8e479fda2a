#include "server/session.h"

namespace comet {

Session::Session(ClientPort& port, SessionKind kind) : port_(port), kind_(kind) {
  worker().counters().sessions[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  worker().counters().sessions[static_cast<int>(kind_)].fetch_sub(1, std::memory_order_relaxed);
}

void Session::on_timeout() { port_.close_now("idle timeout"); }

bool Session::can_take_more() {
  if (!port_.output_congested()) return true;
  port_.watch_drain();
  return false;
}

}  // namespace comet
