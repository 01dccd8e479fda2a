#include "util/percent_decode.h"

namespace comet {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out, bool plus_as_space) {
  out.clear();
  // Decoded text is never longer than the input, so one reservation avoids regrowth.
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    // Runs without an escape are copied at once: most names, values and paths have none.
    size_t plain = i;
    while (plain < in.size() && in[plain] != '%' && in[plain] != '\0' &&
           !(plus_as_space && in[plain] == '+'))
      ++plain;
    out.append(in.data() + i, plain - i);
    if (plain == in.size()) break;
    i = plain;
    char c = in[i];
    if (c == '%') {
      // Both digits must be present: a truncated "%4" at the end is malformed, not literal.
      if (in.size() - i < 3) {
        out.clear();
        return false;
      }
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) {
        out.clear();
        return false;
      }
      c = static_cast<char>((hi << 4) | lo);
      i += 3;
    } else if (c == '+') {
      c = ' ';
      ++i;
    } else {
      ++i;  // a NUL
    }
    if (c == '\0') {
      out.clear();
      return false;
    }
    out.push_back(c);
  }
  return true;
}

}  // namespace comet
