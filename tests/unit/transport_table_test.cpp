// The transport table (transports/transport_table.cpp): which row serves a path, what
// each row says, --transports names, session kind names.

#include "transports/transport_table.h"

#include <doctest/doctest.h>

#include <string>

namespace comet {
namespace {

TEST_CASE("transport table: session_kind_name gives each kind its counter label") {
  CHECK(std::string(session_kind_name(SessionKind::kWebSocket)) == "ws");
  CHECK(std::string(session_kind_name(SessionKind::kSse)) == "sse");
  CHECK(std::string(session_kind_name(SessionKind::kStream)) == "stream");
  CHECK(std::string(session_kind_name(SessionKind::kPoll)) == "poll");
  CHECK(std::string(session_kind_name(SessionKind::kEcho)) == "echo");
  CHECK(std::string(session_kind_name(SessionKind::kPublish)) == "publish");
}

TEST_CASE("transport table: exact paths, the /pub/ prefix, and the echo path when set") {
  Config config;
  struct Case {
    const char* path;
    const char* name;  // nullptr: no row
  };
  const Case cases[] = {
      {"/ws", "ws"},          {"/sse", "sse"},         {"/stream", "stream"}, {"/poll", "poll"},
      {"/pub/a", "publish"},  {"/pub/a/b", "publish"}, {"/pub/", "publish"},  {"/pub", nullptr},
      {"/ws/", nullptr},      {"/wss", nullptr},       {"/sse/", nullptr},    {"/SSE", nullptr},
      {"/polls", nullptr},    {"", nullptr},           {"/", nullptr},        {"/echo", nullptr},
      {"/stream?x", nullptr},
  };
  for (const Case& c : cases) {
    CAPTURE(c.path);
    const TransportRow* row = find_transport(c.path, config);
    if (c.name == nullptr) {
      CHECK(row == nullptr);
    } else {
      REQUIRE(row != nullptr);
      CHECK(std::string(row->name) == c.name);
    }
  }
  config.ws_echo_path = "/echo";
  const TransportRow* echo = find_transport("/echo", config);
  REQUIRE(echo != nullptr);
  CHECK(std::string(echo->name) == "echo");
  CHECK(find_transport("/echo/", config) == nullptr);
  CHECK(find_transport("", config) == nullptr);
}

TEST_CASE("transport table: what each row says") {
  Config config;
  config.ws_echo_path = "/echo";
  struct Expect {
    const char* path;
    SessionKind kind;
    bool switchable, is_publish;
    ChannelParse channels;
    bool last_event_id, close_after_error, has_check;
  };
  const Expect rows[] = {
      {"/ws", SessionKind::kWebSocket, true, false, ChannelParse::kOptional, false, true, true},
      {"/sse", SessionKind::kSse, true, false, ChannelParse::kRequired, true, false, true},
      {"/stream", SessionKind::kStream, true, false, ChannelParse::kRequired, false, false, true},
      {"/poll", SessionKind::kPoll, true, false, ChannelParse::kRequired, false, false, true},
      {"/echo", SessionKind::kEcho, false, false, ChannelParse::kNone, false, true, true},
      {"/pub/x", SessionKind::kPublish, false, true, ChannelParse::kNone, false, false, false},
  };
  for (const Expect& e : rows) {
    CAPTURE(e.path);
    const TransportRow* row = find_transport(e.path, config);
    REQUIRE(row != nullptr);
    CHECK(row->kind == e.kind);
    CHECK(std::string(row->name) == session_kind_name(e.kind));
    CHECK(row->switchable == e.switchable);
    CHECK(row->is_publish == e.is_publish);
    CHECK(row->channels == e.channels);
    CHECK(row->last_event_id == e.last_event_id);
    CHECK(row->close_after_error == e.close_after_error);
    CHECK((row->check != nullptr) == e.has_check);
    CHECK((row->start != nullptr));
  }
}

TEST_CASE("transport table: --transports switches only the switchable rows") {
  Config config;
  config.ws_echo_path = "/echo";
  for (const char* path : {"/ws", "/sse", "/stream", "/poll", "/echo", "/pub/a"})
    CHECK(transport_enabled(*find_transport(path, config), config));  // the default: all on
  config.transports = {"sse"};
  CHECK_FALSE(transport_enabled(*find_transport("/ws", config), config));
  CHECK(transport_enabled(*find_transport("/sse", config), config));
  CHECK_FALSE(transport_enabled(*find_transport("/stream", config), config));
  CHECK_FALSE(transport_enabled(*find_transport("/poll", config), config));
  CHECK(transport_enabled(*find_transport("/echo", config), config));
  CHECK(transport_enabled(*find_transport("/pub/a", config), config));
}

TEST_CASE("transport table: check_transport_names accepts the switchable names only") {
  CHECK(check_transport_names({}) == "");
  CHECK(check_transport_names({"ws", "sse", "stream", "poll"}) == "");
  CHECK(check_transport_names({"poll"}) == "");
  const std::string valid = "(expected a comma-separated list of ws, sse, stream, poll)";
  CHECK(check_transport_names({"ws", "websocket"}) ==
        "--transports: unknown transport 'websocket' " + valid);
  CHECK(check_transport_names({"echo"}) == "--transports: unknown transport 'echo' " + valid);
  CHECK(check_transport_names({"publish"}) == "--transports: unknown transport 'publish' " + valid);
  CHECK(check_transport_names({std::string(40, 'x')}) ==
        "--transports: unknown transport '" + std::string(32, 'x') + "' " + valid);
}

}  // namespace
}  // namespace comet
