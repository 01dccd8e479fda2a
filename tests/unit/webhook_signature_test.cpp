// webhook_signature (webhooks/webhook_signature.cpp): HMAC-SHA256 over "timestamp.body".

#include "webhooks/webhook_signature.h"

#include <doctest/doctest.h>

namespace comet {

TEST_CASE("webhook signature: sha256= and the hex HMAC of timestamp.body") {
  // openssl dgst -sha256 -hmac s3cret <<< '1700000000.{"time_ms":1,"events":[]}' (no newline)
  CHECK(webhook_signature("s3cret", 1700000000, R"({"time_ms":1,"events":[]})") ==
        "sha256=08fbad17cc8f88f1ed1de58c0e1e45a840b71684b28af30a70ba3969582b0fe2");
}

TEST_CASE("webhook signature: the timestamp, the body and the secret all count") {
  const std::string base = webhook_signature("s3cret", 1700000000, "{}");
  CHECK(base.size() == 7 + 64);
  CHECK(webhook_signature("s3cret", 1700000001, "{}") != base);
  CHECK(webhook_signature("s3cret", 1700000000, "{ }") != base);
  CHECK(webhook_signature("s3cre7", 1700000000, "{}") != base);
  CHECK(webhook_signature("s3cret", 1700000000, "{}") == base);
}

}  // namespace comet
