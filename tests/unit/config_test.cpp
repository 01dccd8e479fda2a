#include "config/config.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace comet {
namespace {

// Runs parse_config on flags and NAME=value environment strings, as main() would.
ConfigResult parse(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  std::vector<const char*> argv = {"comet-sidecar"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  std::vector<const char*> envp;
  for (const std::string& e : env) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  return parse_config(static_cast<int>(argv.size() - 1), argv.data(), envp.data());
}

Config parse_ok(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  ConfigResult r = parse(args, env);
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK_FALSE(r.show_help);
  CHECK(r.error.empty());
  return r.config;
}

std::string parse_error(const std::vector<std::string>& args,
                        const std::vector<std::string>& env = {}) {
  ConfigResult r = parse(args, env);
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.error.empty());
  return r.error;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_CASE("parse_duration_ms: plain numbers are seconds, units ms s m h") {
  int64_t ms = -1;
  CHECK(parse_duration_ms("30", ms));
  CHECK(ms == 30000);
  CHECK(parse_duration_ms("30s", ms));
  CHECK(ms == 30000);
  CHECK(parse_duration_ms("250ms", ms));
  CHECK(ms == 250);
  CHECK(parse_duration_ms("5m", ms));
  CHECK(ms == 300000);
  CHECK(parse_duration_ms("1h", ms));
  CHECK(ms == 3600000);
  CHECK(parse_duration_ms("0", ms));
  CHECK(ms == 0);
  CHECK(parse_duration_ms("007ms", ms));
  CHECK(ms == 7);
  // The longest accepted number with the largest unit still fits.
  CHECK(parse_duration_ms("999999999999h", ms));
  CHECK(ms == 999999999999LL * 3600 * 1000);
}

TEST_CASE("parse_duration_ms rejects malformed durations") {
  for (const char* bad : {"", "s", "ms", "-1", "+1", " 1", "1 s", "1.5s", "1sec", "1d", "1S", "10x",
                          "1ms5", "1000000000000", "abc"}) {
    CAPTURE(bad);
    int64_t ms = 77;
    CHECK_FALSE(parse_duration_ms(bad, ms));
    CHECK(ms == 77);
  }
}

TEST_CASE("parse_size: bytes and powers of 1024, units in any case") {
  size_t n = 0;
  CHECK(parse_size("1024", n));
  CHECK(n == 1024);
  CHECK(parse_size("0", n));
  CHECK(n == 0);
  CHECK(parse_size("10b", n));
  CHECK(n == 10);
  CHECK(parse_size("64k", n));
  CHECK(n == 64 * 1024);
  CHECK(parse_size("64K", n));
  CHECK(n == 64 * 1024);
  CHECK(parse_size("2kb", n));
  CHECK(n == 2048);
  CHECK(parse_size("2KiB", n));
  CHECK(n == 2048);
  CHECK(parse_size("1m", n));
  CHECK(n == 1024 * 1024);
  CHECK(parse_size("3MB", n));
  CHECK(n == 3 * 1024 * 1024);
  CHECK(parse_size("1g", n));
  CHECK(n == size_t{1} << 30);
  CHECK(parse_size("2GiB", n));
  CHECK(n == size_t{2} << 30);
}

TEST_CASE("parse_size rejects malformed sizes") {
  for (const char* bad :
       {"", "k", "-1", "+1", " 1", "1 k", "1.5k", "1t", "1kk", "1ki", "0x10", "1000000000000"}) {
    CAPTURE(bad);
    size_t n = 77;
    CHECK_FALSE(parse_size(bad, n));
    CHECK(n == 77);
  }
}

TEST_CASE("parse_size rejects sizes that overflow instead of wrapping") {
  // 17179869184g is 2^34 GiB = 2^64 bytes: it must not come back as 0 (or any wrapped value).
  size_t n = 77;
  CHECK_FALSE(parse_size("17179869184g", n));
  CHECK_FALSE(parse_size("17179869185g", n));  // would wrap to exactly 1 GiB
  CHECK_FALSE(parse_size("999999999999g", n));
  // The largest value that fits is still accepted.
  CHECK(parse_size("17179869183g", n));
  CHECK(n == 17179869183ull << 30);
}

TEST_CASE("defaults without flags or environment") {
  const Config c = parse_ok({});
  const Config d;
  CHECK(c.listen_host == "127.0.0.1");
  CHECK(c.listen_port == 8080);
  CHECK(c.workers == 0);
  CHECK(c.redis_url.empty());
  CHECK(c.redis_key_ttl_ms == 0);
  CHECK(c.history_size == 1000);
  CHECK(c.history_age_ms == 3600 * 1000);
  CHECK(c.max_header_bytes == 8192);
  CHECK(c.max_url_bytes == 4096);
  CHECK(c.max_message_bytes == 64 * 1024);
  CHECK(c.max_channels == 32);
  CHECK(c.max_output_bytes == 1024 * 1024);
  CHECK(c.max_connections == 0);
  CHECK(c.request_timeout_ms == 10000);
  CHECK(c.poll_timeout_ms == 30000);
  CHECK(c.heartbeat_ms == 15000);
  CHECK(c.sse_retry_ms == 2000);
  CHECK(c.allowed_origins == std::vector<std::string>{"*"});
  CHECK(c.publish_key.empty());
  CHECK_FALSE(c.publish_from_any);
  CHECK(c.ws_echo_path.empty());
  CHECK(c.static_dir.empty());
  CHECK(c.js_client_path.empty());
  CHECK(c.log_level == "info");
  CHECK(d.listen_port == c.listen_port);

  // A null environment is allowed too.
  const char* argv[] = {"comet-sidecar", nullptr};
  ConfigResult r = parse_config(1, argv, nullptr);
  CHECK(r.ok);
}

TEST_CASE("every flag sets its field, with a separate or an inline value") {
  const Config c = parse_ok({"--listen",
                             "0.0.0.0:9000",
                             "--workers=4",
                             "--redis",
                             "redis://:pw@localhost:6379/2",
                             "--redis-key-ttl",
                             "2h",
                             "--history-size",
                             "50",
                             "--history-age=2m",
                             "--max-header-bytes",
                             "16k",
                             "--max-url-bytes",
                             "2k",
                             "--max-message-bytes",
                             "1m",
                             "--max-channels",
                             "8",
                             "--max-output-bytes",
                             "4096",
                             "--max-connections",
                             "100",
                             "--request-timeout",
                             "500ms",
                             "--poll-timeout",
                             "45",
                             "--heartbeat",
                             "1s",
                             "--sse-retry",
                             "0",
                             "--allowed-origins",
                             "https://a.example, https://b.example",
                             "--publish-key=s3cr=t",
                             "--publish-from-any",
                             "--ws-echo-path",
                             "/echo",
                             "--static-dir",
                             "/srv/www",
                             "--js-client",
                             "/srv/comet.js",
                             "--log-level",
                             "debug"});
  CHECK(c.listen_host == "0.0.0.0");
  CHECK(c.listen_port == 9000);
  CHECK(c.workers == 4);
  CHECK(c.redis_url == "redis://:pw@localhost:6379/2");
  CHECK(c.redis_key_ttl_ms == 2 * 3600 * 1000);
  CHECK(c.history_size == 50);
  CHECK(c.history_age_ms == 120000);
  CHECK(c.max_header_bytes == 16384);
  CHECK(c.max_url_bytes == 2048);
  CHECK(c.max_message_bytes == 1048576);
  CHECK(c.max_channels == 8);
  CHECK(c.max_output_bytes == 4096);
  CHECK(c.max_connections == 100);
  CHECK(c.request_timeout_ms == 500);
  CHECK(c.poll_timeout_ms == 45000);
  CHECK(c.heartbeat_ms == 1000);
  CHECK(c.sse_retry_ms == 0);
  CHECK(c.allowed_origins == std::vector<std::string>{"https://a.example", "https://b.example"});
  CHECK(c.publish_key == "s3cr=t");  // only the first '=' separates an inline value
  CHECK(c.publish_from_any);
  CHECK(c.ws_echo_path == "/echo");
  CHECK(c.static_dir == "/srv/www");
  CHECK(c.js_client_path == "/srv/comet.js");
  CHECK(c.log_level == "debug");
}

TEST_CASE("--listen forms") {
  Config c = parse_ok({"--listen", ":8081"});
  CHECK(c.listen_host == "0.0.0.0");
  CHECK(c.listen_port == 8081);
  c = parse_ok({"--listen", "[::1]:443"});
  CHECK(c.listen_host == "::1");
  CHECK(c.listen_port == 443);
  c = parse_ok({"--listen", "localhost:0"});  // port 0 picks a free port
  CHECK(c.listen_host == "localhost");
  CHECK(c.listen_port == 0);
  c = parse_ok({"--listen", "127.0.0.1:65535"});
  CHECK(c.listen_port == 65535);
  for (const char* bad :
       {"8080", "localhost", "host:", "host:65536", "host:-1", "host:http", "host:80x"}) {
    CAPTURE(bad);
    CHECK(contains(parse_error({"--listen", bad}), "HOST:PORT"));
  }
}

TEST_CASE("environment variables set fields") {
  const Config c =
      parse_ok({}, {"PATH=/usr/bin", "COMET_LISTEN=0.0.0.0:7000", "COMET_WORKERS=2",
                    "COMET_REDIS_URL=unix:///tmp/redis.sock", "COMET_HISTORY_SIZE=10",
                    "COMET_HISTORY_AGE=5m", "COMET_MAX_MESSAGE_BYTES=128k", "COMET_PUBLISH_KEY=k",
                    "COMET_PUBLISH_FROM_ANY=1", "COMET_ALLOWED_ORIGINS=*", "COMET_LOG_LEVEL=warn",
                    "COMET_HEARTBEAT=250ms"});
  CHECK(c.listen_host == "0.0.0.0");
  CHECK(c.listen_port == 7000);
  CHECK(c.workers == 2);
  CHECK(c.redis_url == "unix:///tmp/redis.sock");
  CHECK(c.history_size == 10);
  CHECK(c.history_age_ms == 300000);
  CHECK(c.max_message_bytes == 128 * 1024);
  CHECK(c.publish_key == "k");
  CHECK(c.publish_from_any);
  CHECK(c.allowed_origins == std::vector<std::string>{"*"});
  CHECK(c.log_level == "warn");
  CHECK(c.heartbeat_ms == 250);
}

TEST_CASE("flags override environment variables") {
  const Config c = parse_ok({"--workers", "3", "--log-level=error", "--listen", "127.0.0.1:1"},
                            {"COMET_WORKERS=8", "COMET_LOG_LEVEL=debug", "COMET_LISTEN=0.0.0.0:2",
                             "COMET_HISTORY_SIZE=7"});
  CHECK(c.workers == 3);
  CHECK(c.log_level == "error");
  CHECK(c.listen_host == "127.0.0.1");
  CHECK(c.listen_port == 1);
  CHECK(c.history_size == 7);  // not given as a flag: the environment stands
}

TEST_CASE("the last of a repeated flag wins") {
  const Config c = parse_ok({"--workers", "1", "--workers", "5"});
  CHECK(c.workers == 5);
}

TEST_CASE("boolean environment variables take 1/true and 0/false") {
  CHECK(parse_ok({}, {"COMET_PUBLISH_FROM_ANY=true"}).publish_from_any);
  CHECK_FALSE(parse_ok({}, {"COMET_PUBLISH_FROM_ANY=0"}).publish_from_any);
  CHECK_FALSE(parse_ok({}, {"COMET_PUBLISH_FROM_ANY=false"}).publish_from_any);
  CHECK_FALSE(parse_ok({}, {"COMET_PUBLISH_FROM_ANY="}).publish_from_any);
  const std::string err = parse_error({}, {"COMET_PUBLISH_FROM_ANY=yes"});
  CHECK(contains(err, "COMET_PUBLISH_FROM_ANY=yes"));
  CHECK(contains(err, "1/true or 0/false"));
}

TEST_CASE("a boolean flag given an inline value honours it") {
  // "--publish-from-any=false" must not open /pub to every peer.
  CHECK_FALSE(parse_ok({"--publish-from-any=false"}).publish_from_any);
  CHECK_FALSE(parse_ok({"--publish-from-any=0"}).publish_from_any);
  CHECK(parse_ok({"--publish-from-any=true"}).publish_from_any);
  CHECK(parse_ok({"--publish-from-any=1"}).publish_from_any);
  // Flags override the environment, and the last of a repeated flag wins: an explicit
  // "false" must switch off what came before.
  CHECK_FALSE(
      parse_ok({"--publish-from-any=false"}, {"COMET_PUBLISH_FROM_ANY=1"}).publish_from_any);
  CHECK_FALSE(parse_ok({"--publish-from-any", "--publish-from-any=0"}).publish_from_any);
  for (const char* bad :
       {"--publish-from-any=yes", "--publish-from-any=", "--publish-from-any=2"}) {
    CAPTURE(bad);
    const std::string err = parse_error({bad});
    CHECK(contains(err, "1/true or 0/false"));
  }
}

TEST_CASE("a boolean flag takes no separate value") {
  // The next word is a new argument, not the switch's value.
  CHECK(contains(parse_error({"--publish-from-any", "false"}), "false"));
  const Config c = parse_ok({"--publish-from-any", "--workers", "2"});
  CHECK(c.publish_from_any);
  CHECK(c.workers == 2);
}

TEST_CASE("environment errors name the variable") {
  std::string err = parse_error({}, {"COMET_WORKERS=many"});
  CHECK(contains(err, "COMET_WORKERS=many"));
  CHECK(contains(err, "0 (one per core) to 256"));
  // COMET_* variables of the PHP client or the tests share the environment: a warning
  // that names them, not a refusal to start.
  const ConfigResult unknown = parse({}, {"COMET_NOPE=1", "COMET_PUBLISH_URL=http://x"});
  CHECK(unknown.ok);
  REQUIRE(unknown.warnings.size() == 2);
  CHECK(contains(unknown.warnings[0], "COMET_NOPE"));
  CHECK(contains(unknown.warnings[0], "not a sidecar setting"));
  // Other variables and entries without '=' are ignored.
  parse_ok({}, {"HOME=/root", "COMET_LISTEN", "comet_workers=x", "XCOMET_WORKERS=x"});
}

TEST_CASE("flag errors name the flag and the value") {
  std::string err = parse_error({"--nope"});
  CHECK(contains(err, "--nope"));
  CHECK(contains(err, "unknown option"));
  err = parse_error({"--workers"});
  CHECK(contains(err, "--workers"));
  CHECK(contains(err, "needs a value: N"));
  err = parse_error({"--workers", "257"});
  CHECK(contains(err, "--workers 257"));
  CHECK(contains(parse_error({"-w", "1"}), "unknown option"));
  CHECK(contains(parse_error({"workers=1"}), "unknown option"));
  CHECK(contains(parse_error({"--Workers=1"}), "unknown option"));
  // An error in a later flag fails the whole parse.
  parse_error({"--workers", "2", "--history-size", "0"});
}

TEST_CASE("numeric flags enforce their minimums") {
  CHECK(contains(parse_error({"--history-size", "0"}), "at least 1"));
  CHECK(contains(parse_error({"--max-channels", "0"}), "at least 1"));
  CHECK(contains(parse_error({"--history-size", "1k"}), "whole number"));
  CHECK(contains(parse_error({"--history-age", "999ms"}), "at least 1000ms"));
  CHECK(parse_ok({"--history-age", "1s"}).history_age_ms == 1000);
  CHECK(contains(parse_error({"--request-timeout", "99ms"}), "at least 100ms"));
  CHECK(contains(parse_error({"--heartbeat", "0"}), "at least 100ms"));
  CHECK(contains(parse_error({"--poll-timeout", "fast"}), "duration"));
  CHECK(contains(parse_error({"--max-header-bytes", "255"}), "at least 256"));
  CHECK(parse_ok({"--max-header-bytes", "256"}).max_header_bytes == 256);
  CHECK(contains(parse_error({"--max-url-bytes", "63"}), "at least 64"));
  CHECK(contains(parse_error({"--max-message-bytes", "15"}), "at least 16"));
  CHECK(contains(parse_error({"--max-output-bytes", "4095"}), "at least 4096"));
  CHECK(contains(parse_error({"--max-output-bytes", "lots"}), "size"));
  CHECK(parse_ok({"--max-connections", "0"}).max_connections == 0);
  CHECK(parse_ok({"--redis-key-ttl", "0"}).redis_key_ttl_ms == 0);  // 0 = keys never expire
  CHECK(parse_ok({}, {"COMET_REDIS_KEY_TTL=90m"}).redis_key_ttl_ms == 5400000);
  CHECK(parse_ok({"--workers", "256"}).workers == 256);
  CHECK(parse_error({"--workers", "-1"}).size() > 0);
  CHECK(parse_error({"--history-size", "99999999999999999999"}).size() > 0);
}

TEST_CASE("string flags are validated where the format matters") {
  CHECK(contains(parse_error({"--redis", "http://localhost"}), "redis://"));
  CHECK(parse_ok({"--redis", "redis://localhost:6379"}).redis_url == "redis://localhost:6379");
  CHECK(parse_ok({"--redis", ""}).redis_url.empty());  // explicitly the embedded bus
  CHECK(contains(parse_error({"--log-level", "trace"}), "debug, info, warn or error"));
  CHECK(contains(parse_error({"--ws-echo-path", "echo"}), "starting with '/'"));
  CHECK(parse_ok({"--ws-echo-path", ""}).ws_echo_path.empty());
  CHECK(contains(parse_error({"--allowed-origins", " , "}), "origins"));
  CHECK(contains(parse_error({"--allowed-origins", ""}), "origins"));
  CHECK(parse_ok({"--allowed-origins", "https://x.example,,"}).allowed_origins ==
        std::vector<std::string>{"https://x.example"});
}

TEST_CASE("--help and -h ask for the help text") {
  for (const char* flag : {"--help", "-h"}) {
    CAPTURE(flag);
    ConfigResult r = parse({flag});
    CHECK(r.ok);
    CHECK(r.show_help);
  }
  // Help wins even after other flags, and stops before a later bad one.
  ConfigResult r = parse({"--workers", "2", "--help", "--nope"});
  CHECK(r.ok);
  CHECK(r.show_help);
}

TEST_CASE("the help text lists every flag with its environment name") {
  const std::string help = config_help();
  for (const char* flag : {"--listen HOST:PORT",
                           "--workers N",
                           "--redis URL",
                           "--redis-key-ttl DURATION",
                           "--history-size N",
                           "--history-age DURATION",
                           "--max-header-bytes SIZE",
                           "--max-url-bytes SIZE",
                           "--max-message-bytes SIZE",
                           "--max-channels N",
                           "--max-output-bytes SIZE",
                           "--max-connections N",
                           "--request-timeout DURATION",
                           "--poll-timeout DURATION",
                           "--heartbeat DURATION",
                           "--sse-retry DURATION",
                           "--allowed-origins LIST",
                           "--publish-key KEY",
                           "--publish-from-any",
                           "--ws-echo-path PATH",
                           "--static-dir DIR",
                           "--js-client FILE",
                           "--log-level LEVEL",
                           "-h, --help"}) {
    CAPTURE(flag);
    CHECK(contains(help, flag));
  }
  for (const char* env :
       {"[COMET_LISTEN]",           "[COMET_WORKERS]",          "[COMET_REDIS_URL]",
        "[COMET_REDIS_KEY_TTL]",    "[COMET_HISTORY_SIZE]",     "[COMET_HISTORY_AGE]",
        "[COMET_MAX_HEADER_BYTES]", "[COMET_MAX_URL_BYTES]",    "[COMET_MAX_MESSAGE_BYTES]",
        "[COMET_MAX_CHANNELS]",     "[COMET_MAX_OUTPUT_BYTES]", "[COMET_MAX_CONNECTIONS]",
        "[COMET_REQUEST_TIMEOUT]",  "[COMET_POLL_TIMEOUT]",     "[COMET_HEARTBEAT]",
        "[COMET_SSE_RETRY]",        "[COMET_ALLOWED_ORIGINS]",  "[COMET_PUBLISH_KEY]",
        "[COMET_PUBLISH_FROM_ANY]", "[COMET_WS_ECHO_PATH]",     "[COMET_STATIC_DIR]",
        "[COMET_JS_CLIENT]",        "[COMET_LOG_LEVEL]"}) {
    CAPTURE(env);
    CHECK(contains(help, env));
  }
  CHECK(contains(help, "usage: comet-sidecar"));
  CHECK(contains(help, "flags win"));
  CHECK(help.back() == '\n');
}

TEST_CASE("every environment name in the help text is accepted") {
  // Help, environment and flags come from one table; check they agree.
  const std::string help = config_help();
  size_t at = 0;
  int seen = 0;
  while ((at = help.find("[COMET_", at)) != std::string::npos) {
    const size_t end = help.find(']', at);
    REQUIRE(end != std::string::npos);
    const std::string name = help.substr(at + 1, end - at - 1);
    at = end;
    ++seen;
    CAPTURE(name);
    ConfigResult r = parse({}, {name + "=x"});
    // "x" may be a bad value, but the variable itself must be known.
    CHECK(r.warnings.empty());
  }
  // One environment name per flag (every flag line starts with "  --").
  int flags = 0;
  for (size_t i = help.find("\n  --"); i != std::string::npos; i = help.find("\n  --", i + 1))
    ++flags;
  CHECK(seen == flags);
  CHECK(seen >= 23);
}

}  // namespace
}  // namespace comet
