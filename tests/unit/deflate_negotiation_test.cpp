// permessage-deflate negotiation (ws/deflate_negotiation.h): which offers are accepted,
// which are skipped, and the answer.

#include "ws/deflate_negotiation.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using comet::ws::deflate_response_header;
using comet::ws::DeflateAgreement;
using comet::ws::negotiate_deflate;

namespace {

DeflateAgreement negotiate(std::vector<std::string_view> values) {
  return negotiate_deflate(values);
}

// The answer's parameters, or "declined".
std::string answer(std::vector<std::string_view> values) {
  const DeflateAgreement a = negotiate(std::move(values));
  if (!a.enabled()) return "declined";
  std::string h = deflate_response_header(a);
  const std::string prefix =
      "Sec-WebSocket-Extensions: permessage-deflate; "
      "server_no_context_takeover; client_no_context_takeover";
  REQUIRE(h.substr(0, prefix.size()) == prefix);
  REQUIRE(h.substr(h.size() - 2) == "\r\n");
  return "ok" + h.substr(prefix.size(), h.size() - prefix.size() - 2);
}

}  // namespace

TEST_CASE("deflate_negotiation: what browsers and libraries offer is accepted") {
  // Chromium, the ws package (client_max_window_bits without a value), Firefox.
  CHECK(answer({"permessage-deflate; client_max_window_bits"}) == "ok");
  CHECK(answer({"permessage-deflate"}) == "ok");
  CHECK(answer({"permessage-deflate; client_max_window_bits=15"}) == "ok");
  CHECK(answer({"permessage-deflate;client_no_context_takeover;server_no_context_takeover"}) ==
        "ok");
  CHECK(answer({"  Permessage-Deflate ;\tclient_max_window_bits  "}) == "ok");
  const DeflateAgreement a = negotiate({"permessage-deflate"});
  CHECK(a.server_window_bits == 15);
  CHECK_FALSE(a.echo_server_window);
}

TEST_CASE("deflate_negotiation: server_max_window_bits is honoured and echoed") {
  for (int bits = 8; bits <= 15; ++bits) {
    CAPTURE(bits);
    const std::string offer = "permessage-deflate; server_max_window_bits=" + std::to_string(bits);
    const DeflateAgreement a = negotiate({offer});
    CHECK(a.server_window_bits == bits);
    CHECK(a.echo_server_window);
    CHECK(answer({offer}) == "ok; server_max_window_bits=" + std::to_string(bits));
  }
  // A quoted value is unescaped first (RFC 6455 9.1), even with a quoted-pair.
  CHECK(answer({"permessage-deflate; server_max_window_bits=\"10\""}) ==
        "ok; server_max_window_bits=10");
  CHECK(answer({"permessage-deflate; server_max_window_bits=\"1\\1\""}) ==
        "ok; server_max_window_bits=11");
  CHECK(answer({"permessage-deflate; client_max_window_bits=\"9\""}) == "ok");
}

TEST_CASE("deflate_negotiation: offers with unknown or invalid parameters are skipped") {
  const char* refused[] = {
      "permessage-deflate; foo",
      "permessage-deflate; foo=1",
      "permessage-deflate; server_max_window_bits",    // a value is required
      "permessage-deflate; server_max_window_bits=7",  // out of range
      "permessage-deflate; server_max_window_bits=16",
      "permessage-deflate; server_max_window_bits=010",  // leading zero
      "permessage-deflate; server_max_window_bits=09",
      "permessage-deflate; server_max_window_bits=+9",
      "permessage-deflate; client_max_window_bits=0",
      "permessage-deflate; client_max_window_bits=100",
      "permessage-deflate; server_no_context_takeover=1",  // takes no value
      "permessage-deflate; client_no_context_takeover=\"x\"",
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
      "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
  };
  for (const char* offer : refused) {
    CAPTURE(offer);
    CHECK(answer({offer}) == "declined");
  }
}

TEST_CASE("deflate_negotiation: the first acceptable offer of several wins") {
  // The client's preferences first: a refused one falls back to the next.
  CHECK(answer({"permessage-deflate; server_max_window_bits=7, permessage-deflate; "
                "server_max_window_bits=12, permessage-deflate"}) ==
        "ok; server_max_window_bits=12");
  CHECK(answer({"permessage-deflate; x=1, permessage-deflate"}) == "ok");
  // Other extensions are ignored, before or after.
  CHECK(answer({"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=9"}) ==
        "ok; server_max_window_bits=9");
  CHECK(answer({"foo; bar=\"baz\" , permessage-deflate"}) == "ok");
  // Several header lines form one list.
  CHECK(answer({"foo", "permessage-deflate; bogus",
                "permessage-deflate; server_max_window_bits=11"}) ==
        "ok; server_max_window_bits=11");
  // Empty list elements are tolerated (RFC 7230 7).
  CHECK(answer({", ,permessage-deflate,"}) == "ok");
}

TEST_CASE("deflate_negotiation: nothing acceptable or unparsable declines, never fails") {
  CHECK(answer({}) == "declined");
  CHECK(answer({""}) == "declined");
  CHECK(answer({"x-webkit-deflate-frame"}) == "declined");
  CHECK(answer({"permessage-deflate-x"}) == "declined");
  CHECK(answer({"permessage-deflate; server_max_window_bits=7"}) == "declined");
  // Syntax errors: the whole header is declined.
  const char* broken[] = {
      "permessage-deflate;",
      "permessage-deflate; =10",
      "permessage-deflate; server_max_window_bits=",
      "permessage-deflate; server_max_window_bits=\"10",     // unterminated
      "permessage-deflate; server_max_window_bits=\"\"",     // empty
      "permessage-deflate; server_max_window_bits=\"1 0\"",  // not a token once unquoted
      "permessage-deflate server_max_window_bits=10",
      "permessage-deflate; a b",
      "@, permessage-deflate",
      "foo; bar=\"a,b\", permessage-deflate",  // RFC 6455 9.1: quoted values are tokens
  };
  for (const char* header : broken) {
    CAPTURE(header);
    CHECK(answer({header}) == "declined");
  }
  CHECK(deflate_response_header(DeflateAgreement{}) == "");
}
