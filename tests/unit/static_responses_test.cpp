// Static files: the gzip copy made once at start-up, Accept-Encoding, and the versioned
// URL of the built-in browser client.
#include "server/static_responses.h"

#include <doctest/doctest.h>
#include <zlib.h>

#include <string>

#include "fake_port.h"
#include "server/static_files.h"

namespace comet {
namespace {

using test::get;
using test::parse_response;
using test::TestWorld;

std::string gunzip(const std::string& in) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
  std::string out(1 << 22, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

std::string script(size_t n) {
  std::string s;
  while (s.size() < n) s += "function f" + std::to_string(s.size() % 97) + "(a){return a+1;}\n";
  return s;
}

TEST_CASE("accepts_gzip: codings, weights, case") {
  CHECK(accepts_gzip("gzip"));
  CHECK(accepts_gzip("gzip, deflate, br"));
  CHECK(accepts_gzip("br;q=1.0, GZip;q=0.5"));
  CHECK(accepts_gzip("x-gzip"));
  CHECK(accepts_gzip("*"));
  CHECK(accepts_gzip("deflate, gzip ; q=0.001"));
  CHECK_FALSE(accepts_gzip(""));
  CHECK_FALSE(accepts_gzip("identity"));
  CHECK_FALSE(accepts_gzip("br, deflate"));
  CHECK_FALSE(accepts_gzip("gzip;q=0"));
  CHECK_FALSE(accepts_gzip("gzip;q=0.000"));
  CHECK_FALSE(accepts_gzip("gzipx"));
}

TEST_CASE("versioned_client_version: /comet-<version>.min.js only") {
  CHECK(versioned_client_version("/comet-0.1.0.min.js") == "0.1.0");
  CHECK(versioned_client_version("/comet-1.2.3-rc.1+g1.min.js") == "1.2.3-rc.1+g1");
  CHECK(versioned_client_version("/comet-.min.js").empty());
  CHECK(versioned_client_version("/comet.js").empty());
  CHECK(versioned_client_version("/comet-0.1.0.js").empty());
  CHECK(versioned_client_version("/x/comet-0.1.0.min.js").empty());
  CHECK(versioned_client_version("/comet-../x.min.js").empty());
  CHECK(versioned_client_version("/comet-a%2fb.min.js").empty());
}

TEST_CASE("compress_static_files: text over 1 KB gets a gzip copy and its own ETag") {
  std::map<std::string, StaticFile> files;
  files["/comet.js"] = StaticFile{"application/javascript; charset=utf-8", script(20000)};
  files["/small.js"] = StaticFile{"application/javascript; charset=utf-8", "var a;"};
  files["/logo.png"] = StaticFile{"image/png", std::string(5000, 'x')};
  set_etags(files);
  compress_static_files(files);
  const StaticFile& js = files["/comet.js"];
  REQUIRE_FALSE(js.gzip_bytes.empty());
  CHECK(js.gzip_bytes.size() < js.bytes.size() / 4);
  CHECK(gunzip(js.gzip_bytes) == js.bytes);
  CHECK(js.gzip_etag == js.etag.substr(0, js.etag.size() - 1) + "-gz\"");
  CHECK(files["/small.js"].gzip_bytes.empty());  // too small to gain
  CHECK(files["/logo.png"].gzip_bytes.empty());  // not text
  // The same bytes give the same gzip (and so the same ETag) on every start.
  std::map<std::string, StaticFile> again;
  again["/comet.js"] = StaticFile{"application/javascript; charset=utf-8", script(20000)};
  set_etags(again);
  compress_static_files(again);
  CHECK(again["/comet.js"].gzip_bytes == js.gzip_bytes);
}

TEST_CASE("serving: gzip when accepted, Vary always, each encoding revalidates with its ETag") {
  TestWorld w;
  w.shared.static_files["/comet.js"] = StaticFile{"application/javascript", script(20000)};
  set_etags(w.shared.static_files);
  compress_static_files(w.shared.static_files);
  const StaticFile& file = w.shared.static_files["/comet.js"];

  w.route(get("/comet.js", {{"Accept-Encoding", "gzip, deflate"}}));
  const test::HttpResponse packed = parse_response(w.port.take());
  CHECK(packed.status == 200);
  REQUIRE(packed.header("Content-Encoding") != nullptr);
  CHECK(*packed.header("Content-Encoding") == "gzip");
  CHECK(*packed.header("Vary") == "Accept-Encoding");
  CHECK(*packed.header("ETag") == file.gzip_etag);
  CHECK(gunzip(packed.body) == file.bytes);

  w.route(get("/comet.js", {{"Accept-Encoding", "gzip;q=0"}}));
  const test::HttpResponse plain = parse_response(w.port.take());
  CHECK(plain.header("Content-Encoding") == nullptr);
  CHECK(*plain.header("Vary") == "Accept-Encoding");
  CHECK(*plain.header("ETag") == file.etag);
  CHECK(plain.body == file.bytes);

  // The gzip ETag revalidates the gzip copy only; the plain one the plain copy only.
  w.route(get("/comet.js", {{"Accept-Encoding", "gzip"}, {"If-None-Match", file.gzip_etag}}));
  CHECK(parse_response(w.port.take()).status == 304);
  w.route(get("/comet.js", {{"If-None-Match", file.gzip_etag}}));
  CHECK(parse_response(w.port.take()).status == 200);
  w.route(get("/comet.js", {{"If-None-Match", file.etag}}));
  CHECK(parse_response(w.port.take()).status == 304);
}

TEST_CASE("serving: the versioned client URL is cached for a year, other versions revalidate") {
  TestWorld w;
  w.shared.static_files["/comet.js"] = StaticFile{"application/javascript", "var c;"};
  w.shared.comet_js_version = "0.1.0";
  set_etags(w.shared.static_files);

  w.route(get("/comet-0.1.0.min.js"));
  const test::HttpResponse current = parse_response(w.port.take());
  CHECK(current.status == 200);
  CHECK(current.body == "var c;");
  CHECK(*current.header("Cache-Control") == "public, max-age=31536000, immutable");

  // A page still naming the previous version gets today's client, not cached for long.
  w.route(get("/comet-0.0.9.min.js"));
  const test::HttpResponse older = parse_response(w.port.take());
  CHECK(older.status == 200);
  CHECK(older.body == "var c;");
  CHECK(*older.header("Cache-Control") == "no-cache");

  // --js-client replaced the built-in client: no version is cached for long.
  w.shared.comet_js_version.clear();
  w.route(get("/comet-0.1.0.min.js"));
  CHECK(*parse_response(w.port.take()).header("Cache-Control") == "no-cache");

  w.route(get("/comet.js"));
  CHECK(*parse_response(w.port.take()).header("Cache-Control") == "no-cache");
  w.route(get("/comet-x.js"));
  CHECK(parse_response(w.port.take()).status == 404);
}

}  // namespace
}  // namespace comet
