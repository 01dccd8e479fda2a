#include "http/request.h"

namespace comet::http {

namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

// Stored names are already lower case, but callers occasionally pass "Content-Type";
// folding both sides costs nothing and removes a class of silent lookup misses.
bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

}  // namespace

const std::string* Request::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (equals_ignore_case(name, lower_name)) return &value;
  }
  return nullptr;
}

}  // namespace comet::http
