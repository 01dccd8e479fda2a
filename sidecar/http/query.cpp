#include "http/query.h"

namespace comet::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool QueryParams::parse(std::string_view raw_query, QueryParams& out) {
  out.params_.clear();
  while (!raw_query.empty()) {
    size_t amp = raw_query.find('&');
    std::string_view piece = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    // "a=1&&b" and a trailing '&' are common from naive URL builders; they carry nothing.
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    std::string_view raw_name = piece.substr(0, eq);
    std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1);
    std::string name;
    std::string value;
    if (!percent_decode(raw_name, name, true) || !percent_decode(raw_value, value, true)) {
      // A half-filled result could be mistaken for a valid one, so drop everything.
      out.params_.clear();
      return false;
    }
    out.params_.emplace_back(std::move(name), std::move(value));
  }
  return true;
}

const std::string* QueryParams::get(std::string_view name) const {
  for (const auto& [key, value] : params_) {
    if (key == name) return &value;
  }
  return nullptr;
}

bool QueryParams::has(std::string_view name) const { return get(name) != nullptr; }

std::vector<std::string_view> split_list(std::string_view s, char sep) {
  std::vector<std::string_view> items;
  while (true) {
    size_t pos = s.find(sep);
    std::string_view item = trim(s.substr(0, pos));
    if (!item.empty()) items.push_back(item);
    if (pos == std::string_view::npos) break;
    s.remove_prefix(pos + 1);
  }
  return items;
}

}  // namespace comet::http
