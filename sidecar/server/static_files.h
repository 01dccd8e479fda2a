#pragma once
#include <map>
#include <string>

#include "server/shared_state.h"

namespace comet {

/**
 * Loads every regular file under `dir` (recursively, no symlinks followed out of it)
 * into `out`, keyed by request path ("/index.html"). Files are read once at start-up
 * so serving never touches the disk from an event loop. Returns "" or an error.
 */
std::string load_static_dir(const std::string& dir, std::map<std::string, StaticFile>& out);

/** Gives every file its ETag (a hash of its bytes), once they are all loaded. */
void set_etags(std::map<std::string, StaticFile>& files);

/**
 * Compresses every text file (scripts, pages, styles, JSON, SVG) once with gzip, so a
 * browser that accepts it gets the smaller copy without any per-request work. Call after
 * set_etags (the gzip ETag derives from the file's).
 */
void compress_static_files(std::map<std::string, StaticFile>& files);

/** Loads one file as `request_path`; returns "" or an error. */
std::string load_static_file(const std::string& file, const std::string& request_path,
                             std::map<std::string, StaticFile>& out);

}  // namespace comet
