// Percent-decoding and query-string helpers for request targets.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace comet::http {

// Decodes %XX escapes (hex digits in either case) from `in` into `out`, replacing its
// previous contents. With `plus_as_space` a '+' decodes to ' ' (form/query encoding);
// otherwise it is kept literally (paths). Returns false, leaving `out` empty, on a malformed
// escape ("%G1", a truncated "%4" or "%") or a NUL byte, raw or decoded, since NULs would
// truncate names silently once handed to C APIs.
bool percent_decode(std::string_view in, std::string& out, bool plus_as_space);

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
