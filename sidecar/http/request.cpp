#include "http/request.h"

#include "util/ascii.h"

namespace comet::http {

const std::string* Request::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    // Stored names are already lower case, but callers occasionally pass "Content-Type":
    // folding both sides costs nothing and removes a class of silent lookup misses.
    if (iequals(name, lower_name)) return &value;
  }
  return nullptr;
}

}  // namespace comet::http
