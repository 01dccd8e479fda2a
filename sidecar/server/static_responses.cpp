#include "server/static_responses.h"

#include <cctype>
#include <cstdlib>
#include <string>

#include "http/query.h"
#include "http/response.h"
#include "transports/request_context.h"
#include "util/ascii.h"

namespace comet {
namespace {

constexpr std::string_view kClientPrefix = "/comet-";
constexpr std::string_view kClientSuffix = ".min.js";
// The versioned URL never changes content, so browsers and CDNs may keep it for a year;
// everything else is revalidated (a 304 when unchanged).
constexpr std::string_view kForever = "public, max-age=31536000, immutable";
constexpr std::string_view kRevalidate = "no-cache";

bool etag_matches(const std::string* if_none_match, const std::string& etag) {
  if (etag.empty() || if_none_match == nullptr) return false;
  return *if_none_match == "*" || if_none_match->find(etag) != std::string::npos;
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) {
  for (std::string_view item : http::split_list(accept_encoding, ',')) {
    const size_t semicolon = item.find(';');
    std::string coding = lowered_ascii(item.substr(0, semicolon));
    while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) coding.pop_back();
    if (coding != "gzip" && coding != "x-gzip" && coding != "*") continue;
    if (semicolon == std::string_view::npos) return true;
    // "gzip;q=0" refuses it (RFC 9110, 12.5.3); any other weight accepts.
    std::string params = lowered_ascii(item.substr(semicolon + 1));
    const size_t q = params.find("q=");
    if (q == std::string::npos) return true;
    return std::strtod(params.c_str() + q + 2, nullptr) > 0;
  }
  return false;
}

std::string_view versioned_client_version(std::string_view path) {
  if (path.size() <= kClientPrefix.size() + kClientSuffix.size()) return {};
  if (path.substr(0, kClientPrefix.size()) != kClientPrefix) return {};
  if (path.substr(path.size() - kClientSuffix.size()) != kClientSuffix) return {};
  const std::string_view version =
      path.substr(kClientPrefix.size(), path.size() - kClientPrefix.size() - kClientSuffix.size());
  for (char c : version) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '+') return {};
  }
  return version;
}

bool serve_static(ClientPort& port, const SharedState& shared, const http::Request& request) {
  const bool keep_alive = may_keep_alive(request);
  std::string path = request.path;
  if (!path.empty() && path.back() == '/') path += "index.html";
  std::string_view cache = kRevalidate;
  if (shared.static_files.count(path) == 0) {
    const std::string_view version = versioned_client_version(path);
    if (!version.empty()) {
      // Another version than the built-in one (a page not yet updated after an upgrade,
      // or --js-client): the current client, revalidated, so the page keeps working.
      if (version == shared.comet_js_version) cache = kForever;
      path = "/comet.js";
    }
  }
  auto it = shared.static_files.find(path);
  if (it == shared.static_files.end()) {
    port.write(http::error_response(404, "no such endpoint or file", keep_alive));
    return keep_alive;
  }
  const StaticFile& file = it->second;
  const bool has_gzip = !file.gzip_bytes.empty();
  const std::string* accept_encoding = request.header("accept-encoding");
  const bool gzip = has_gzip && accept_encoding != nullptr && accepts_gzip(*accept_encoding);
  const std::string& body = gzip ? file.gzip_bytes : file.bytes;
  const std::string& etag = gzip ? file.gzip_etag : file.etag;

  const bool not_modified = etag_matches(request.header("if-none-match"), etag);
  http::ResponseHead head(not_modified ? 304 : 200);
  if (!not_modified) head.header("Content-Type", file.content_type);
  head.header("Cache-Control", cache);
  if (!etag.empty()) head.header("ETag", etag);
  // Caches keep one copy per Accept-Encoding when there are two encodings.
  if (has_gzip) head.header("Vary", "Accept-Encoding");
  if (gzip) head.header("Content-Encoding", "gzip");
  if (not_modified) {
    // A 304 has no body and no Content-Length (it would describe the file's own).
    port.write(head.without_body(keep_alive));
    return keep_alive;
  }
  // HEAD gets the headers of GET with no body.
  std::string out = head.with_body(body, keep_alive);
  if (request.method == "HEAD") out.resize(out.size() - body.size());
  port.write(out);
  return keep_alive;
}

}  // namespace comet
