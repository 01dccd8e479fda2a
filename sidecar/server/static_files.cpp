#include "server/static_files.h"

#include <openssl/sha.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace comet {
namespace {

constexpr uintmax_t kMaxStaticBytes = 8 * 1024 * 1024;

std::string content_type_for(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js") return "application/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".png") return "image/png";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

bool compressible(const std::string& content_type) {
  return content_type.rfind("text/", 0) == 0 ||
         content_type.rfind("application/javascript", 0) == 0 ||
         content_type == "application/json" || content_type == "image/svg+xml";
}

// Level 9, no timestamp in the header: the same bytes give the same gzip on every start.
std::string gzip(const std::string& in) {
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return "";
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : "";
}

}  // namespace

std::string load_static_file(const std::string& file, const std::string& request_path,
                             std::map<std::string, StaticFile>& out) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(file, ec);
  if (ec) return "cannot read " + file + ": " + ec.message();
  if (size > kMaxStaticBytes) return file + " is larger than 8 MiB; serve it from your web server";
  std::ifstream in(file, std::ios::binary);
  if (!in) return "cannot open " + file;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  out[request_path] = StaticFile{content_type_for(file), bytes.str(), ""};
  return "";
}

void set_etags(std::map<std::string, StaticFile>& files) {
  for (auto& [path, file] : files) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(file.bytes.data()), file.bytes.size(), digest);
    static const char* kHex = "0123456789abcdef";
    file.etag = "\"";
    for (int i = 0; i < 12; ++i) {
      file.etag += kHex[digest[i] >> 4];
      file.etag += kHex[digest[i] & 15];
    }
    file.etag += '"';
  }
}

void compress_static_files(std::map<std::string, StaticFile>& files) {
  // Below ~1 KB the header overhead eats the gain.
  constexpr size_t kMinBytes = 1024;
  for (auto& [path, file] : files) {
    if (file.bytes.size() < kMinBytes || !compressible(file.content_type)) continue;
    std::string packed = gzip(file.bytes);
    if (packed.empty() || packed.size() >= file.bytes.size()) continue;
    file.gzip_bytes = std::move(packed);
    file.gzip_etag = file.etag.empty() ? "" : file.etag.substr(0, file.etag.size() - 1) + "-gz\"";
  }
}

std::string load_static_dir(const std::string& dir, std::map<std::string, StaticFile>& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "static dir " + dir + " is not a directory";
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    // Dotfiles and dot-directories (.env, .git) are never served; nor are symlinks, which
    // could point anywhere (a link to /etc/passwd): only real files inside the directory.
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    // Lexical: fs::relative would resolve links.
    const std::string relative = it->path().lexically_relative(dir).generic_string();
    if (relative.empty() || relative.rfind("..", 0) == 0) continue;
    const std::string error = load_static_file(it->path().string(), "/" + relative, out);
    if (!error.empty()) return error;
  }
  return ec ? "cannot list " + dir + ": " + ec.message() : "";
}

}  // namespace comet
