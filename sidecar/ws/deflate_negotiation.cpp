#include "ws/deflate_negotiation.h"

#include <optional>

#include "util/ascii.h"

namespace comet::ws {

namespace {

constexpr std::string_view kExtension = "permessage-deflate";

// RFC 7230 3.2.6 tchar.
bool is_tchar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

struct Param {
  std::string_view name;
  std::optional<std::string> value;  // unescaped when it was a quoted-string
};

struct Offer {
  std::string_view name;
  std::vector<Param> params;
};

// A recursive-descent reader of RFC 6455 9.1's extension-list (with RFC 7230's list
// rules: optional whitespace, empty elements between commas tolerated).
class ListReader {
 public:
  explicit ListReader(std::string_view s) : s_(s) {}

  // Appends every extension of the list to `out`; false on a syntax error.
  bool read(std::vector<Offer>& out) {
    while (true) {
      skip_ows();
      if (at_end()) return true;
      if (peek() == ',') {
        ++i_;
        continue;
      }
      Offer offer;
      offer.name = token();
      if (offer.name.empty()) return false;
      skip_ows();
      while (!at_end() && peek() == ';') {
        ++i_;
        skip_ows();
        Param param;
        param.name = token();
        if (param.name.empty()) return false;
        skip_ows();
        if (!at_end() && peek() == '=') {
          ++i_;
          skip_ows();
          std::string value;
          if (!at_end() && peek() == '"') {
            if (!quoted(value)) return false;
          } else {
            const std::string_view t = token();
            if (t.empty()) return false;
            value.assign(t);
          }
          param.value = std::move(value);
          skip_ows();
        }
        offer.params.push_back(std::move(param));
      }
      if (!at_end() && peek() != ',') return false;
      out.push_back(std::move(offer));
    }
  }

 private:
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }
  void skip_ows() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++i_;
  }
  std::string_view token() {
    const size_t start = i_;
    while (!at_end() && is_tchar(peek())) ++i_;
    return s_.substr(start, i_ - start);
  }
  // RFC 7230 quoted-string; RFC 6455 9.1 then requires the unescaped value to be a token.
  bool quoted(std::string& value) {
    ++i_;  // opening quote
    while (!at_end()) {
      char c = peek();
      ++i_;
      if (c == '"') {
        if (value.empty()) return false;
        for (char v : value)
          if (!is_tchar(v)) return false;
        return true;
      }
      if (c == '\\') {
        if (at_end()) return false;
        c = peek();
        ++i_;
      }
      value.push_back(c);
    }
    return false;  // unterminated
  }

  std::string_view s_;
  size_t i_ = 0;
};

// "8".."15", no sign, no leading zero (RFC 7692 7.1.2.1).
std::optional<uint8_t> window_bits(std::string_view v) {
  if (v.empty() || v.size() > 2 || v[0] == '0') return std::nullopt;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n < 8 || n > 15) return std::nullopt;
  return static_cast<uint8_t>(n);
}

// The agreement for one permessage-deflate offer, or nullopt when the offer must be
// declined (RFC 7692 5: a server declines an offer whose parameters it cannot accept).
std::optional<DeflateAgreement> accept_offer(const Offer& offer) {
  DeflateAgreement a;
  a.server_window_bits = 15;
  bool server_nct = false, client_nct = false, server_bits = false, client_bits = false;
  for (const Param& p : offer.params) {
    if (iequals(p.name, "server_no_context_takeover") ||
        iequals(p.name, "client_no_context_takeover")) {
      bool& seen = iequals(p.name, "server_no_context_takeover") ? server_nct : client_nct;
      if (seen || p.value) return std::nullopt;
      seen = true;
    } else if (iequals(p.name, "server_max_window_bits")) {
      if (server_bits || !p.value) return std::nullopt;
      const auto bits = window_bits(*p.value);
      if (!bits) return std::nullopt;
      server_bits = true;
      a.server_window_bits = *bits;
      a.echo_server_window = true;
    } else if (iequals(p.name, "client_max_window_bits")) {
      // Any window the client picks is fine: the server inflates with the largest.
      if (client_bits || (p.value && !window_bits(*p.value))) return std::nullopt;
      client_bits = true;
    } else {
      return std::nullopt;
    }
  }
  return a;
}

}  // namespace

DeflateAgreement negotiate_deflate(const std::vector<std::string_view>& values) {
  std::vector<Offer> offers;
  for (std::string_view v : values) {
    if (!ListReader(v).read(offers)) return {};
  }
  for (const Offer& offer : offers) {
    if (!iequals(offer.name, kExtension)) continue;
    if (auto a = accept_offer(offer)) return *a;
  }
  return {};
}

std::string deflate_response_header(const DeflateAgreement& agreement) {
  if (!agreement.enabled()) return {};
  std::string out =
      "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
      "client_no_context_takeover";
  if (agreement.echo_server_window)
    out += "; server_max_window_bits=" + std::to_string(agreement.server_window_bits);
  out += "\r\n";
  return out;
}

}  // namespace comet::ws
