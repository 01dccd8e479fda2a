#pragma once
// Prometheus text exposition, shared by /metrics and the buses' own metrics.

#include <string>

namespace comet {

/** Appends a metric's HELP and TYPE lines (its samples follow: labelled ones too). */
inline void append_metric_header(std::string& out, const char* name, const char* type,
                                 const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

/** Appends one metric: its HELP and TYPE lines and "name value". */
inline void append_metric(std::string& out, const char* name, const char* type, const char* help,
                          const std::string& value) {
  append_metric_header(out, name, type, help);
  out += std::string(name) + " " + value + "\n";
}

}  // namespace comet
