// WebhookOutbox (webhooks/webhook_outbox.cpp) and webhook_backoff_ms: batching, one
// batch in flight, retries of the same batch, the queue bound. Times are given, not read.

#include "webhooks/webhook_outbox.h"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <vector>

#include "webhooks/webhook_backoff.h"

namespace comet {
namespace {

PresenceEvent member(int n) {
  return {PresenceEvent::kMemberAdded, "presence:room", std::to_string(n), "", n};
}

/** The user ids in a batch's body, in order. */
std::vector<std::string> users(const WebhookBatch& batch) {
  rapidjson::Document doc;
  doc.Parse(batch.body.c_str());
  std::vector<std::string> out;
  for (const auto& event : doc["events"].GetArray()) out.emplace_back(event["user_id"].GetString());
  return out;
}

}  // namespace

TEST_CASE("webhook backoff: 1 s doubling to 60 s, then 60 s") {
  const std::vector<int64_t> expected = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
  for (size_t i = 0; i < expected.size(); ++i)
    CHECK(webhook_backoff_ms(static_cast<int>(i + 1)) == expected[i]);
  CHECK(webhook_backoff_ms(1000) == 60000);
}

TEST_CASE("webhook outbox: a batch waits 250 ms for company, at once when full") {
  WebhookOutbox outbox(10000);
  CHECK_FALSE(outbox.due_ms());
  outbox.push(member(1), 1000);
  outbox.push(member(2), 1100);
  CHECK(*outbox.due_ms() == 1250);
  CHECK(outbox.take_due(1249) == nullptr);
  const WebhookBatch* batch = outbox.take_due(1250);
  REQUIRE(batch != nullptr);
  CHECK(batch->events == 2);
  CHECK(users(*batch) == std::vector<std::string>{"1", "2"});
  CHECK(outbox.delivered() == 2);
  CHECK(outbox.size() == 0);

  for (int i = 0; i < 250; ++i) outbox.push(member(i), 2000);
  CHECK(*outbox.due_ms() == 2000);  // a full batch goes at once
  batch = outbox.take_due(2000);
  REQUIRE(batch != nullptr);
  CHECK(batch->events == WebhookOutbox::kMaxBatchEvents);
  CHECK(users(*batch).front() == "0");
  CHECK(users(*batch).back() == "99");
}

TEST_CASE("webhook outbox: stopping sends what is queued at once; a retry keeps its backoff") {
  WebhookOutbox outbox(10000);
  outbox.push(member(1), 1000);
  outbox.push(member(2), 1100);
  outbox.send_at_once();
  CHECK(*outbox.due_ms() == 1000);  // not 1250: nobody else will join the batch
  const WebhookBatch* batch = outbox.take_due(1000);
  REQUIRE(batch != nullptr);
  CHECK(batch->events == 2);
  outbox.failed(1000);
  CHECK(*outbox.due_ms() == 1000 + webhook_backoff_ms(1));
  CHECK(outbox.take_due(1999) == nullptr);
}

TEST_CASE("webhook outbox: one batch in flight; order kept across batches") {
  WebhookOutbox outbox(10000);
  for (int i = 0; i < 230; ++i) outbox.push(member(i), 0);
  const WebhookBatch* first = outbox.take_due(0);
  REQUIRE(first != nullptr);
  CHECK(outbox.sending());
  CHECK_FALSE(outbox.due_ms());  // waits for the answer
  CHECK(outbox.take_due(100000) == nullptr);
  CHECK(outbox.size() == 230);
  CHECK(outbox.delivered() == 100);
  const WebhookBatch* second = outbox.take_due(0);
  REQUIRE(second != nullptr);
  CHECK(users(*second).front() == "100");
  CHECK(outbox.delivered() == 100);
  CHECK(*outbox.due_ms() == 250);  // the last 30 wait for company
  const WebhookBatch* third = outbox.take_due(250);
  REQUIRE(third != nullptr);
  CHECK(third->events == 30);
  CHECK(users(*third).back() == "229");
}

TEST_CASE("webhook outbox: a failed batch is retried with its id and body after the backoff") {
  WebhookOutbox outbox(10000);
  outbox.push(member(1), 0);
  const WebhookBatch* batch = outbox.take_due(250);
  REQUIRE(batch != nullptr);
  const std::string id = batch->id, body = batch->body;
  outbox.push(member(2), 300);  // behind it, not in it

  int64_t now = 1000;
  for (int failures = 1; failures <= 8; ++failures) {
    outbox.failed(now);
    CHECK(*outbox.due_ms() == now + webhook_backoff_ms(failures));
    CHECK(outbox.take_due(now + webhook_backoff_ms(failures) - 1) == nullptr);
    now += webhook_backoff_ms(failures);
    batch = outbox.take_due(now);
    REQUIRE(batch != nullptr);
    CHECK(batch->id == id);
    CHECK(batch->body == body);
    CHECK(batch->failures == failures);
  }
  CHECK(outbox.delivered() == 1);
  batch = outbox.take_due(now);
  REQUIRE(batch != nullptr);
  CHECK(batch->id != id);
  CHECK(users(*batch) == std::vector<std::string>{"2"});
  CHECK(batch->failures == 0);
}

TEST_CASE("webhook outbox: beyond the bound the oldest queued events are dropped") {
  WebhookOutbox outbox(150);
  size_t dropped = 0;
  for (int i = 0; i < 100; ++i) dropped += outbox.push(member(i), 0);
  const WebhookBatch* batch = outbox.take_due(0);  // 0..99 in flight, kept whole
  REQUIRE(batch != nullptr);
  outbox.failed(0);
  for (int i = 100; i < 400; ++i) dropped += outbox.push(member(i), 1);
  CHECK(dropped == 150);  // 100..249 pushed out by 250..399
  CHECK(outbox.size() == 100 + 150);
  batch = outbox.take_due(1000);
  REQUIRE(batch != nullptr);
  CHECK(users(*batch).front() == "0");
  CHECK(outbox.delivered() == 100);
  batch = outbox.take_due(1000);
  REQUIRE(batch != nullptr);
  CHECK(users(*batch).front() == "250");
  CHECK(outbox.drop_all() == 150);
  CHECK(outbox.size() == 0);
  CHECK_FALSE(outbox.due_ms());
}

}  // namespace comet
