#pragma once
// ASCII case folding for protocol tokens (header names, codings, units, host names):
// byte-wise and locale-free, so a request is read the same under any locale.

#include <string>
#include <string_view>

namespace comet {

inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

/** Equal but for ASCII case. */
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

/** Lower-cases the ASCII letters of `s` in place. */
inline void lower_ascii(std::string& s) {
  for (char& c : s) c = ascii_lower(c);
}

/** A lower-cased copy of `s`. */
inline std::string lowered_ascii(std::string_view s) {
  std::string out(s);
  lower_ascii(out);
  return out;
}

}  // namespace comet
