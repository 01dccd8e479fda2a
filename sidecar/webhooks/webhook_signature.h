#pragma once
// The signature of a webhook request (docs/protocol.md, "Webhooks"): the endpoint
// recomputes it with the shared secret to know the batch came from a sidecar, unchanged,
// recently.

#include <cstdint>
#include <string>
#include <string_view>

namespace comet {

/**
 * "sha256=" + lowercase hex of HMAC-SHA256(secret, "<timestamp_s>.<body>"): the value of
 * X-Comet-Signature for a request whose X-Comet-Timestamp is `timestamp_s`.
 */
std::string webhook_signature(std::string_view secret, int64_t timestamp_s, std::string_view body);

}  // namespace comet
