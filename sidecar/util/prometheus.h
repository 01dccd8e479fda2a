#pragma once
// Prometheus text exposition, shared by /metrics and the buses' own metrics.

#include <string>

namespace comet {

/** Appends one metric: its HELP and TYPE lines and "name value". */
inline void append_metric(std::string& out, const char* name, const char* type, const char* help,
                          const std::string& value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  out += std::string(name) + " " + value + "\n";
}

}  // namespace comet
