#include "transports/request_context.h"

#include <string>

#include "http/response.h"

namespace comet {

bool RequestContext::refuse(int status, std::string_view why,
                            std::string_view extra_headers) const {
  std::string headers = origin.cors_headers;
  headers.append(extra_headers);
  port.write(http::error_response(status, why, keep_alive, headers));
  return keep_alive;
}

bool RequestContext::refuse_channel(int status, std::string_view why,
                                    std::string_view channel) const {
  port.write(http::error_response(status, why, keep_alive, origin.cors_headers, channel));
  return keep_alive;
}

}  // namespace comet
