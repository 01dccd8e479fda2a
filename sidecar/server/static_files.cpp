#include "server/static_files.h"

#include <openssl/sha.h>

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
