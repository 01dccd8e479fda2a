<?php

use Comet\Client;
use PHPUnit\Framework\TestCase;

/**
 * comet_webhook_events() / comet_webhook_batch(): the app's side of --webhook-url
 * (docs/protocol.md, "Webhooks"). Requests are signed here as the sidecar signs them;
 * the known vector is the one the sidecar's unit test pins (webhook_signature_test.cpp).
 */
class WebhookTest extends TestCase
{
    const SECRET = 'webhook-secret-0123456789';

    private static function headers($body, $timestamp, $secret = self::SECRET, $id = 'abc123')
    {
        return array(
            'X-Comet-Webhook-Id' => $id,
            'X-Comet-Timestamp' => (string) $timestamp,
            'X-Comet-Signature' => 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret),
        );
    }

    private static function body()
    {
        return '{"time_ms":1764790000123,"events":[{"name":"channel_occupied","channel":"presence:room","time_ms":1},'
            . '{"name":"member_added","channel":"presence:room","user_id":"7","info":{"name":"Zoë"},"time_ms":2}]}';
    }

    protected function tearDown(): void
    {
        comet_configure(array('webhook_secret' => ''));
    }

    public function testTheSidecarsKnownVector()
    {
        $body = '{"time_ms":1,"events":[]}';
        $headers = array(
            'X-Comet-Timestamp' => '1700000000',
            'X-Comet-Signature' => 'sha256=08fbad17cc8f88f1ed1de58c0e1e45a840b71684b28af30a70ba3969582b0fe2',
        );
        $batch = Client::verifyWebhookWith('s3cret', $body, $headers, 1700000000);
        $this->assertSame(array(), $batch['events']);
        $this->assertSame(1, $batch['time_ms']);
    }

    public function testEventsOfAValidRequest()
    {
        $body = self::body();
        $events = comet_webhook_events(self::SECRET, $body, self::headers($body, time()));
        $this->assertNull(comet_last_error());
        $this->assertCount(2, $events);
        $this->assertSame('channel_occupied', $events[0]['name']);
        $this->assertSame('member_added', $events[1]['name']);
        $this->assertSame('7', $events[1]['user_id']);
        $this->assertSame(array('name' => 'Zoë'), $events[1]['info']);

        $batch = comet_webhook_batch(self::SECRET, $body, self::headers($body, time(), self::SECRET, 'batch-1'));
        $this->assertSame('batch-1', $batch['id']);
        $this->assertSame(1764790000123, $batch['time_ms']);
        $this->assertSame($events, $batch['events']);
    }

    public function testHeadersInAnyCaseOrAsServerVariables()
    {
        $body = self::body();
        $lower = array_change_key_case(self::headers($body, time()), CASE_LOWER);
        $this->assertCount(2, comet_webhook_events(self::SECRET, $body, $lower));
        $server = array();
        foreach (self::headers($body, time()) as $name => $value) {
            $server['HTTP_' . strtoupper(str_replace('-', '_', $name))] = $value;
        }
        $this->assertCount(2, comet_webhook_events(self::SECRET, $body, $server));
    }

    public function testTheSecretFromTheOptions()
    {
        $body = self::body();
        $this->assertFalse(comet_webhook_events(null, $body, self::headers($body, time())));
        $this->assertStringContainsString('no webhook secret', comet_last_error());
        $this->assertTrue(comet_configure(array('webhook_secret' => self::SECRET)));
        $this->assertCount(2, comet_webhook_events(null, $body, self::headers($body, time())));
    }

    public function testATamperedBodyIsRefused()
    {
        $body = self::body();
        $headers = self::headers($body, time());
        $this->assertFalse(comet_webhook_events(self::SECRET, str_replace('"7"', '"8"', $body), $headers));
        $this->assertStringContainsString('signature', comet_last_error());
        $this->assertFalse(comet_webhook_events(self::SECRET, $body . ' ', $headers));
    }

    public function testAnotherSecretOrNoSignatureIsRefused()
    {
        $body = self::body();
        $this->assertFalse(comet_webhook_events(self::SECRET, $body, self::headers($body, time(), 'other-secret')));
        $this->assertStringContainsString('signature', comet_last_error());
        $headers = self::headers($body, time());
        unset($headers['X-Comet-Signature']);
        $this->assertFalse(comet_webhook_events(self::SECRET, $body, $headers));
        $this->assertStringContainsString('X-Comet-Signature', comet_last_error());
        $headers = self::headers($body, time());
        $headers['X-Comet-Signature'] = substr($headers['X-Comet-Signature'], 0, -1);
        $this->assertFalse(comet_webhook_events(self::SECRET, $body, $headers));
    }

    public function testTimestampsMoreThan300SecondsAwayAreRefused()
    {
        $body = self::body();
        $now = 1764790000;
        foreach (array(-300, 0, 300) as $skew) {
            $batch = Client::verifyWebhookWith(self::SECRET, $body, self::headers($body, $now + $skew), $now);
            $this->assertCount(2, $batch['events'], "skew $skew");
        }
        foreach (array(-301, 301) as $skew) {
            try {
                Client::verifyWebhookWith(self::SECRET, $body, self::headers($body, $now + $skew), $now);
                $this->fail("skew $skew accepted");
            } catch (Comet\CometException $e) {
                $this->assertStringContainsString('timestamp', $e->getMessage());
                $this->assertSame(Comet\CometException::INVALID_ARGUMENT, $e->getCode());
            }
        }
        // The timestamp is signed: changing it breaks the signature.
        $headers = self::headers($body, $now);
        $headers['X-Comet-Timestamp'] = (string) ($now + 1);
        $this->assertFalse(comet_webhook_events(self::SECRET, $body, $headers));
    }

    public function testASignedBodyThatIsNotABatchIsRefused()
    {
        foreach (array('', 'null', '[]', '{"events":"x"}', '{not json') as $body) {
            $this->assertFalse(comet_webhook_events(self::SECRET, $body, self::headers($body, time())), $body);
        }
    }
}
