<?php

use Comet\Client;
use Comet\CometException;
use CometTest\CometTestCase;

/**
 * Publishing without Redis: POST /pub/<channel> to a sidecar that requires a publish key
 * (so delivery proves the key was sent). With the key, the public listener publishes.
 */
class HttpFallbackTest extends CometTestCase
{
    const KEY = 'k3y-for/tests+1';
    protected static $sidecarFlags = array('--publish-key', self::KEY);

    private function http(array $options = array())
    {
        return new Client(array_merge(array('publish_url' => static::$sidecar->url(), 'publish_key' => self::KEY,
            'timeout' => 5.0), $options));
    }

    public function testStringArrayUnicodeAndEvent()
    {
        $ch = self::channel('http');
        $sse = $this->subscribe($ch);
        $c = $this->http();
        $this->assertSame('http', $c->getTransport());
        $text = "grüße — 日本 🎉";
        $this->assertSame(1, $c->publish($ch, 'plain', array('event' => 'note')));
        $this->assertSame(2, $c->publish($ch, array('a' => 'b/c', 'u' => $text)));
        $this->assertSame(3, $c->publish($ch, $text));
        $last = $c->getLastResults();
        $this->assertSame(3, $last[0]['id']);
        $this->assertSame(2, $last[0]['prev']);
        $expected = array(array(1, 'plain', 'note'), array(2, '{"a":"b/c","u":"' . $text . '"}', null),
            array(3, $text, null));
        $this->assertReceived($sse, $expected);
        $this->assertPolled($ch, $expected, $last[0]['epoch']);
    }

    public function testChannelNamesWithEveryAllowedCharacter()
    {
        $ch = 'Az09_.:/=+-' . bin2hex(random_bytes(4));
        $sse = $this->subscribe($ch);
        $this->assertSame(1, $this->http()->publish($ch, 'x'));
        $this->assertReceived($sse, array(array(1, 'x', null)));
    }

    public function test64KiBPayload()
    {
        $ch = self::channel('big');
        $sse = $this->subscribe($ch);
        $data = str_repeat('€', 100) . str_repeat('y', 65536 - 300);
        $this->assertSame(65536, strlen($data));
        $this->assertSame(1, $this->http()->publish($ch, $data));
        $this->assertReceived($sse, array(array(1, $data, null)));
    }

    public function testBatchOf1000WithTheFunctionApi()
    {
        $ch = self::channel('batch');
        $sse = $this->subscribe($ch);
        $this->assertTrue(comet_configure(array('redis_url' => '', 'publish_url' => static::$sidecar->url(),
            'publish_key' => self::KEY, 'timeout' => 5.0)));
        $batch = array();
        $expected = array();
        for ($i = 1; $i <= 1000; $i++) {
            $batch[] = $i % 100 === 0 ? array($ch, str_repeat('L', 20000) . $i) : array($ch, "m$i", $i % 7 === 0 ? 'seven' : null);
            $expected[] = array($i, $batch[$i - 1][1], $i % 100 !== 0 && $i % 7 === 0 ? 'seven' : null);
        }
        $ids = comet_publish_many($batch);
        $this->assertNull(comet_last_error());
        $this->assertSame(range(1, 1000), $ids);
        $this->assertReceived($sse, $expected, 30);
        $this->assertPolled($ch, $expected);
    }

    public function testWrongOrMissingKeyIsRefused()
    {
        foreach (array('wrong' => 'nope', 'missing' => '') as $what => $key) {
            $c = $this->http(array('publish_key' => $key));
            try {
                $c->publish('ch', 'x');
                $this->fail("published with a $what key");
            } catch (CometException $e) {
                $this->assertSame(CometException::HTTP, $e->getCode());
                $this->assertSame(401, $e->getHttpStatus());
                $this->assertStringContainsString('401', $e->getMessage());
            }
            try {
                $c->publishMany(array(array('a', '1'), array('b', '2'), array('c', '3')));
                $this->fail("published a batch with a $what key");
            } catch (CometException $e) {
                $this->assertSame(401, $e->getHttpStatus());
                $this->assertSame(array(null, null, null), $e->getResults());
            }
        }
        $this->assertTrue(comet_configure(array('redis_url' => '', 'publish_url' => static::$sidecar->url(), 'publish_key' => 'bad')));
        $this->assertFalse(comet_publish('ch', 'x'));
        $this->assertStringContainsString('HTTP 401', comet_last_error());
    }

    public function testTheKeyIsNeededOnThePublishListenerToo()
    {
        $ch = self::channel('listener');
        $sse = $this->subscribe($ch);
        $c = $this->http(array('publish_url' => static::$sidecar->publishUrl()));
        $this->assertSame(1, $c->publish($ch, 'with the key'));
        $this->assertReceived($sse, array(array(1, 'with the key', null)));
        // Once the sidecar has a key, a keyless publish is refused on either listener.
        try {
            $this->http(array('publish_url' => static::$sidecar->publishUrl(), 'publish_key' => ''))->publish($ch, 'x');
            $this->fail('published without the key on the publish listener');
        } catch (CometException $e) {
            $this->assertSame(401, $e->getHttpStatus());
        }
    }

    public function testUrlPrefixAndTrailingSlash()
    {
        $ch = self::channel('slash');
        $sse = $this->subscribe($ch);
        $c = new Client(array('publish_url' => static::$sidecar->url() . '/', 'publish_key' => self::KEY));
        $this->assertSame(1, $c->publish($ch, 'x'));
        $this->assertReceived($sse, array(array(1, 'x', null)));
        // A prefix is kept in front of /pub (for a sidecar behind a reverse proxy path).
        $c = new Client(array('publish_url' => static::$sidecar->url() . '/comet', 'publish_key' => self::KEY));
        try {
            $c->publish($ch, 'y');
            $this->fail('published to /comet/pub');
        } catch (CometException $e) {
            $this->assertSame(404, $e->getHttpStatus());
        }
    }

    public function testSilentServerTimesOut()
    {
        // Accepts connections (kernel backlog) but never answers.
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        $c = new Client(array('publish_url' => 'http://' . stream_socket_get_name($server, false),
            'connect_timeout' => 0.3, 'timeout' => 0.3));
        $start = microtime(true);
        try {
            $c->publish('ch', 'x');
            $this->fail('no answer, yet published');
        } catch (CometException $e) {
            $this->assertSame(CometException::TIMEOUT, $e->getCode());
        }
        $elapsed = $this->assertFasterThan(0.65, $start, 'publish to a silent server');
        $this->assertGreaterThan(0.25, $elapsed);
        fclose($server);
    }

    public function testNobodyListening()
    {
        $c = new Client(array('publish_url' => 'http://127.0.0.1:' . CometTest\Paths::freePort()));
        $start = microtime(true);
        try {
            $c->publish('ch', 'x');
            $this->fail('published to nobody');
        } catch (CometException $e) {
            $this->assertSame(CometException::CONNECT, $e->getCode());
            $this->assertStringContainsString('cannot connect to the sidecar', $e->getMessage());
        }
        $this->assertFasterThan(0.6, $start, 'publish to a closed port');
    }
}
