// Percent-decoding and query-string helpers for request targets.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/percent_decode.h"

namespace comet::http {

// Percent-decoding lives in util/ (the Redis bridge decodes URL credentials with it).
using comet::percent_decode;

// Decoded name/value pairs of a query string such as "a=1&b&c=x%20y+z".
class QueryParams {
 public:
  // Parses `raw_query` (without the leading '?') into `out`, replacing its contents.
  // Pieces are separated by '&'; empty pieces are ignored; a piece without '=' is a name
  // with an empty value; names and values are percent-decoded with '+' as space; repeated
  // names are all kept in order. Returns false (with `out` emptied) on any malformed escape.
  static bool parse(std::string_view raw_query, QueryParams& out);

  // Returns the decoded value of the first parameter called `name` (exact, case-sensitive
  // match), or nullptr. The pointer is valid until this object is modified or destroyed.
  const std::string* get(std::string_view name) const;

  // True if at least one parameter is called `name`, even with an empty value.
  bool has(std::string_view name) const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

// Splits `s` on `sep`, trims spaces and tabs from each item and drops empty items, e.g.
// split_list(" a, ,b ,", ',') == {"a", "b"}. The views point into `s`.
std::vector<std::string_view> split_list(std::string_view s, char sep);

}  // namespace comet::http
