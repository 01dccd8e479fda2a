// parse_http_url (http/http_url.cpp): the URLs the sidecar sends requests to.

#include "http/http_url.h"

#include <doctest/doctest.h>

namespace comet::http {

TEST_CASE("http url: host, Host header, port and target") {
  HttpUrl url;
  REQUIRE(parse_http_url("http://127.0.0.1:8000/hook.php?a=1", url));
  CHECK(url.host == "127.0.0.1");
  CHECK(url.host_header == "127.0.0.1:8000");
  CHECK(url.port == 8000);
  CHECK(url.target == "/hook.php?a=1");
  REQUIRE(parse_http_url("HTTP://app.example", url));
  CHECK(url.host_header == "app.example");
  CHECK(url.port == 80);
  CHECK(url.target == "/");
  REQUIRE(parse_http_url("http://[::1]:81/x", url));
  CHECK(url.host == "::1");
  CHECK(url.host_header == "[::1]:81");
}

TEST_CASE("http url: refused") {
  HttpUrl url;
  CHECK_FALSE(parse_http_url("https://app.example/", url));
  CHECK_FALSE(parse_http_url("http://", url));
  CHECK_FALSE(parse_http_url("http://host:0/", url));
  CHECK_FALSE(parse_http_url("http://host:70000/", url));
  CHECK_FALSE(parse_http_url("/relative", url));
}

}  // namespace comet::http
