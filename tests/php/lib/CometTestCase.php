<?php

namespace CometTest;

use Comet\Client;
use PHPUnit\Framework\TestCase;

/**
 * Base for the tests that need servers: one redis-server and one sidecar per test class
 * (static::$withSidecar), stopped in tearDownAfterClass; helpers to subscribe and check
 * what a subscriber received.
 */
abstract class CometTestCase extends TestCase
{
    /** @var RedisServer|null */
    protected static $redis = null;
    /** @var Sidecar|null */
    protected static $sidecar = null;
    protected static $withRedis = true;
    protected static $withSidecar = true;
    protected static $sidecarFlags = array();
    private $readers = array();

    public static function setUpBeforeClass(): void
    {
        if (static::$withRedis) {
            static::$redis = new RedisServer();
            if (static::$withSidecar) {
                static::$sidecar = new Sidecar(static::$redis->url(), static::$sidecarFlags);
            }
        }
    }

    public static function tearDownAfterClass(): void
    {
        $problem = '';
        if (static::$sidecar) {
            $problem = static::$sidecar->destroy();
            static::$sidecar = null;
        }
        if (static::$redis) {
            static::$redis->destroy();
            static::$redis = null;
        }
        if ($problem !== '') {
            throw new \RuntimeException("the sidecar reported a sanitizer problem:\n" . substr($problem, 0, 4000));
        }
    }

    protected function tearDown(): void
    {
        foreach ($this->readers as $r) {
            $r->close();
        }
        $this->readers = array();
    }

    public static function drivers()
    {
        return array('socket' => array('socket'), 'phpredis' => array('phpredis'), 'predis' => array('predis'));
    }

    protected function requireDriver($driver)
    {
        if ($driver === 'phpredis' && !extension_loaded('redis')) {
            $this->markTestSkipped('phpredis not installed (Debian: php-redis)');
        }
        if ($driver === 'predis' && !class_exists('Predis\Client')) {
            $this->markTestSkipped('Predis not installed (Debian: php-predis)');
        }
    }

    protected static function channel($name = 'c')
    {
        return 't' . bin2hex(random_bytes(5)) . ':' . $name;
    }

    /** A client on this class's Redis (no HTTP fallback unless given). */
    protected function client(array $options = array())
    {
        return new Client(array_merge(array('redis_url' => static::$redis->url(), 'timeout' => 2.0), $options));
    }

    /** An SSE subscriber from the channel's first message, ready before it returns. */
    protected function subscribe($channel, $sidecar = null)
    {
        $sidecar = $sidecar ? $sidecar : static::$sidecar;
        $r = new SseReader($sidecar->port, $channel);
        $r->waitReady();
        $this->assertSame(200, $r->status);
        $this->readers[] = $r;
        return $r;
    }

    /**
     * The subscriber gets exactly these messages (list of array(id, data, event|null)),
     * in order, each once.
     */
    protected function assertReceived(SseReader $reader, array $expected, $timeout = 15.0)
    {
        $events = $reader->collect(count($expected), $timeout);
        $events = $reader->linger(0.2);
        $got = array();
        foreach ($events as $e) {
            $got[] = array($e['id'], $e['data'], $e['event']);
        }
        $this->assertSame(count($expected), count($got), 'number of SSE events received');
        foreach ($expected as $i => $want) {
            if ($want !== $got[$i]) {
                $this->assertSame($want, $got[$i], "SSE event #$i");
            }
        }
        $this->assertTrue(true);
    }

    /** The same through long-poll envelopes (id, prev, epoch, event, data). */
    protected function assertPolled($channel, array $expected, $epoch = null, $sidecar = null)
    {
        $sidecar = $sidecar ? $sidecar : static::$sidecar;
        $envelopes = Http::pollAll($sidecar->port, $channel, count($expected));
        $this->assertSame(count($expected), count($envelopes), 'number of polled messages');
        foreach ($expected as $i => $want) {
            $e = $envelopes[$i];
            $got = array($e['id'], $e['data'], isset($e['event']) ? $e['event'] : null);
            if ($got !== $want) {
                $this->assertSame($want, $got, "polled message #$i");
            }
            $this->assertSame($channel, $e['ch']);
            $this->assertSame($e['id'] - 1, $e['prev']);
            if ($epoch !== null) {
                $this->assertSame($epoch, $e['epoch']);
            }
        }
    }

    protected function assertFasterThan($seconds, $start, $what)
    {
        $elapsed = microtime(true) - $start;
        $this->assertLessThan($seconds, $elapsed, sprintf('%s took %.3f s', $what, $elapsed));
        return $elapsed;
    }
}
