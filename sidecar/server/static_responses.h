#pragma once
// GET/HEAD of the files served from memory (--static-dir, /comet.js): caching
// (ETag/304, the versioned comet.js URL) and the gzip copy for browsers that accept it.

#include <string_view>

#include "http/request.h"
#include "server/client_port.h"
#include "server/shared_state.h"

namespace comet {

/** Answers a GET or HEAD of a static file (404 when there is none); returns keep-alive. */
bool serve_static(ClientPort& port, const SharedState& shared, const http::Request& request);

/** Whether an Accept-Encoding value admits gzip (gzip, x-gzip or *, with q > 0). */
bool accepts_gzip(std::string_view accept_encoding);

/**
 * "/comet-<version>.min.js" -> "<version>" (letters, digits, '.', '-', '+'), else "":
 * the versioned URL of the browser client.
 */
std::string_view versioned_client_version(std::string_view path);

}  // namespace comet
