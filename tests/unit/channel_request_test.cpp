#include "transports/channel_request.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace comet {
namespace {

// Parses `raw_query` (and an optional Last-Event-ID header) the way a transport does.
struct Parsed {
  std::string error;
  ChannelRequest out;
};

Parsed run(const std::string& raw_query, const char* last_event_id = nullptr,
           bool honour_last_event_id = true, const Config& config = Config{}) {
  http::Request request;
  request.method = "GET";
  request.path = "/sse";
  request.query = raw_query;
  request.target = "/sse?" + raw_query;
  if (last_event_id != nullptr) request.headers.emplace_back("last-event-id", last_event_id);
  http::QueryParams query;
  REQUIRE(http::QueryParams::parse(raw_query, query));
  Parsed p;
  p.error = parse_channel_request(request, query, config, honour_last_event_id, p.out);
  return p;
}

Parsed run_ok(const std::string& raw_query, const char* last_event_id = nullptr,
              bool honour_last_event_id = true, const Config& config = Config{}) {
  Parsed p = run(raw_query, last_event_id, honour_last_event_id, config);
  INFO(p.error);
  REQUIRE(p.error.empty());
  REQUIRE(p.out.from.size() == p.out.channels.size());
  return p;
}

std::string pos(const std::optional<Position>& p) {
  if (!p) return "head";
  return p->epoch + "." + std::to_string(p->id);
}

std::vector<std::string> positions(const ChannelRequest& r) {
  std::vector<std::string> out;
  for (const auto& p : r.from) out.push_back(pos(p));
  return out;
}

using Strings = std::vector<std::string>;

TEST_CASE("ch alone subscribes every channel at its head") {
  Parsed p = run_ok("ch=chat:42,news");
  CHECK(p.out.channels == Strings{"chat:42", "news"});
  CHECK(positions(p.out) == Strings{"head", "head"});
}

TEST_CASE("ch is percent-decoded, trimmed, de-duplicated and skips empty items") {
  Parsed p = run_ok("ch=chat%3A42%2C+news+,,chat:42,%20x");
  CHECK(p.out.channels == Strings{"chat:42", "news", "x"});
}

TEST_CASE("the cursor gives positions to the channels it names") {
  Parsed p = run_ok("ch=a,b,c&cursor=a@E.5,c@.0");
  CHECK(p.out.channels == Strings{"a", "b", "c"});
  CHECK(positions(p.out) == Strings{"E.5", "head", ".0"});
}

TEST_CASE("cursor entries for channels not in ch are ignored") {
  Parsed p = run_ok("ch=b&cursor=a@E.5,b@F.2");
  CHECK(p.out.channels == Strings{"b"});
  CHECK(positions(p.out) == Strings{"F.2"});
}

TEST_CASE("without ch the cursor's channels are used, in cursor order") {
  Parsed p = run_ok("cursor=chat%3A42%40k3j9q2m1x0aa.17%2Cnews%40.0");
  CHECK(p.out.channels == Strings{"chat:42", "news"});
  CHECK(positions(p.out) == Strings{"k3j9q2m1x0aa.17", ".0"});
}

TEST_CASE("a channel repeated in the cursor is subscribed once; the last position wins") {
  Parsed p = run_ok("cursor=a@E.1,a@E.3");
  CHECK(p.out.channels == Strings{"a"});
  CHECK(positions(p.out) == Strings{"E.3"});
}

TEST_CASE("an empty cursor parameter means no cursor") {
  Parsed p = run_ok("ch=a&cursor=");
  CHECK(positions(p.out) == Strings{"head"});
}

TEST_CASE("Last-Event-ID wins over the cursor parameter when honoured") {
  // EventSource re-sends the original URL (with its old cursor) on reconnect.
  Parsed p = run_ok("ch=a,b&cursor=a@E.1,b@E.1", "a@E.7,b@F.3");
  CHECK(positions(p.out) == Strings{"E.7", "F.3"});

  // Without ch, its channels are the ones used.
  p = run_ok("cursor=a@E.1", "b@E.9");
  CHECK(p.out.channels == Strings{"b"});
  CHECK(positions(p.out) == Strings{"E.9"});
}

TEST_CASE("Last-Event-ID is ignored when not honoured or empty") {
  Parsed p = run_ok("ch=a&cursor=a@E.1", "a@E.7", false);
  CHECK(positions(p.out) == Strings{"E.1"});
  p = run_ok("ch=a&cursor=a@E.1", "");
  CHECK(positions(p.out) == Strings{"E.1"});
  p = run_ok("ch=a", "a@E.2");
  CHECK(positions(p.out) == Strings{"E.2"});
}

TEST_CASE("a malformed cursor is an error, from the header too") {
  for (const char* q : {"ch=a&cursor=a", "ch=a&cursor=a@E", "ch=a&cursor=a@E.x", "cursor=@E.1",
                        "ch=a&cursor=a@E.1,,b@E.1", "ch=a&cursor=a%20b@E.1"}) {
    CAPTURE(q);
    CHECK(run(q).error.find("malformed cursor") == 0);
  }
  CHECK(run("ch=a&cursor=a@E.1", "garbage").error.find("malformed cursor") == 0);
  // A bad header is not an error when the header is not honoured.
  CHECK(run("ch=a&cursor=a@E.1", "garbage", false).error.empty());
}

TEST_CASE("a bad channel name is an error naming it") {
  std::string err = run("ch=ok,bad%20name").error;
  CHECK(err.find("invalid channel name 'bad name'") == 0);
  err = run("ch=a@b").error;
  CHECK(err.find("invalid channel name 'a@b'") == 0);
  err = run("ch=" + std::string(129, 'x')).error;
  CHECK(err.find("invalid channel name") == 0);
  CHECK(err.find(std::string(128, 'x') + "'") != std::string::npos);  // quoted, cut to 128
  CHECK(err.find(std::string(129, 'x')) == std::string::npos);
  CHECK(run_ok("ch=" + std::string(128, 'x')).out.channels.size() == 1);
}

TEST_CASE("no channel at all is an error") {
  for (const char* q : {"", "ch=", "ch=,,", "ch=%20", "cursor=", "other=1"}) {
    CAPTURE(q);
    CHECK(run(q).error.find("no channel given") == 0);
  }
}

TEST_CASE("more channels than max-channels is an error; duplicates do not count") {
  Config config;
  config.max_channels = 2;
  CHECK(run_ok("ch=a,b", nullptr, true, config).out.channels.size() == 2);
  CHECK(run_ok("ch=a,b,a,b", nullptr, true, config).out.channels.size() == 2);
  const std::string err = run("ch=a,b,c", nullptr, true, config).error;
  CHECK(err.find("too many channels: 3") == 0);
  CHECK(err.find("max-channels is 2") != std::string::npos);
  CHECK(run("cursor=a@.0,b@.0,c@.0", nullptr, true, config).error.find("too many channels") == 0);

  // The default is 32.
  std::string q = "ch=c0";
  for (int i = 1; i < 32; ++i) q += ",c" + std::to_string(i);
  CHECK(run_ok(q).out.channels.size() == 32);
  CHECK(run(q + ",c32").error.find("too many channels: 33") == 0);
}

TEST_CASE("the output is replaced, not appended to") {
  http::Request request;
  http::QueryParams query;
  REQUIRE(http::QueryParams::parse("ch=a", query));
  ChannelRequest out;
  out.channels = {"stale"};
  out.from = {Position{"E", 1}};
  CHECK(parse_channel_request(request, query, Config{}, true, out).empty());
  CHECK(out.channels == Strings{"a"});
  CHECK(positions(out) == Strings{"head"});
}

TEST_CASE("callback names are dotted JavaScript identifiers of at most 64 bytes") {
  for (const char* good :
       {"cb", "_", "$", "a1", "jQuery123_456", "$.fn.x", "window.app.onMsg", "A.B.C", "_$._$"}) {
    CAPTURE(good);
    CHECK(is_valid_callback_name(good));
  }
  for (const char* bad : {"", ".", "1a", "a.", ".a", "a..b", "a.1b", "a-b", "a b", "a(b)", "a;b",
                          "a[0]", "alert(1)//", "\xC3\xA9", "a\nb", "a/b"}) {
    CAPTURE(bad);
    CHECK_FALSE(is_valid_callback_name(bad));
  }
  CHECK(is_valid_callback_name(std::string(64, 'a')));
  CHECK_FALSE(is_valid_callback_name(std::string(65, 'a')));
  CHECK(is_valid_callback_name("a." + std::string(62, 'b')));
  CHECK_FALSE(is_valid_callback_name(std::string_view("cb\0x", 4)));
}

}  // namespace
}  // namespace comet
