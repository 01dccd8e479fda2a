<?php

use Comet\Client;
use Comet\CometException;
use CometTest\CometTestCase;
use CometTest\Paths;
use CometTest\RedisServer;
use CometTest\Sidecar;

/**
 * Redis unreachable, gone or hung: the class API throws, the function API returns false
 * with the reason, and neither waits longer than the configured timeouts. Falls back to
 * the sidecar's HTTP publish only when nothing reached Redis.
 */
class RedisDownTest extends CometTestCase
{
    private function deadUrl()
    {
        return 'redis://127.0.0.1:' . Paths::freePort();
    }

    /** @dataProvider drivers */
    public function testClosedPortThrowsAtOnce($driver)
    {
        $this->requireDriver($driver);
        $c = new Client(array('redis_url' => $this->deadUrl(), 'redis_driver' => $driver,
            'connect_timeout' => 0.5, 'timeout' => 0.5));
        $start = microtime(true);
        try {
            $c->publish('news', 'x');
            $this->fail('published to a closed port');
        } catch (CometException $e) {
            $this->assertSame(CometException::CONNECT, $e->getCode());
            $this->assertStringContainsString('cannot connect to Redis', $e->getMessage());
        }
        $this->assertFasterThan(0.6, $start, 'publish to a closed port');
        $start = microtime(true);
        try {
            $c->publishMany(array(array('a', '1'), array('b', '2')));
            $this->fail('published a batch to a closed port');
        } catch (CometException $e) {
            $this->assertSame(CometException::CONNECT, $e->getCode());
        }
        $this->assertFasterThan(0.6, $start, 'batch to a closed port');
    }

    /** @dataProvider drivers */
    public function testFunctionApiReturnsFalseWithTheReason($driver)
    {
        $this->requireDriver($driver);
        $this->assertTrue(comet_configure(array('redis_url' => $this->deadUrl(), 'redis_driver' => $driver,
            'publish_url' => '', 'connect_timeout' => 0.3, 'timeout' => 0.3)));
        $start = microtime(true);
        $this->assertFalse(comet_publish('news', 'x'));
        $this->assertFasterThan(0.5, $start, 'comet_publish to a closed port');
        $this->assertStringContainsString('cannot connect to Redis', comet_last_error());
        $this->assertSame(CometException::CONNECT, comet_last_exception()->getCode());
        $this->assertFalse(comet_publish_many(array(array('a', 'b'))));
        $this->assertStringContainsString('cannot connect', comet_last_error());
        // Success clears the error.
        $this->assertTrue(comet_configure(array('redis_url' => static::$redis->url())));
        $this->assertIsInt(comet_publish(self::channel(), 'x'));
        $this->assertNull(comet_last_error());
        $this->assertNull(comet_last_exception());
    }

    /** @dataProvider drivers */
    public function testRedisStoppedUnderAnOpenConnection($driver)
    {
        $this->requireDriver($driver);
        $redis = new RedisServer();
        try {
            $c = new Client(array('redis_url' => $redis->url(), 'redis_driver' => $driver,
                'connect_timeout' => 0.5, 'timeout' => 0.5));
            $this->assertSame(1, $c->publish('ch', 'before'));
            $redis->stop();
            $start = microtime(true);
            try {
                $c->publish('ch', 'after');
                $this->fail('published to a stopped Redis');
            } catch (CometException $e) {
                $this->assertContains($e->getCode(), array(CometException::IO, CometException::CONNECT, CometException::TIMEOUT));
            }
            $this->assertFasterThan(1.1, $start, 'publish after Redis stopped');
            // The next call reconnects, and fails at once.
            $start = microtime(true);
            try {
                $c->publish('ch', 'again');
                $this->fail('published to a stopped Redis');
            } catch (CometException $e) {
                $this->assertSame(CometException::CONNECT, $e->getCode());
            }
            $this->assertFasterThan(0.6, $start, 'reconnect to a stopped Redis');
            // Redis back on the same port: publishing works again with the same client.
            $redis->start($redis->port);
            $this->assertSame(1, $c->publish('ch', 'back'));
        } finally {
            $redis->destroy();
        }
    }

    /** @dataProvider drivers */
    public function testHungRedisTimesOut($driver)
    {
        $this->requireDriver($driver);
        $redis = new RedisServer();
        try {
            $connected = new Client(array('redis_url' => $redis->url(), 'redis_driver' => $driver,
                'connect_timeout' => 0.3, 'timeout' => 0.3));
            $this->assertSame(1, $connected->publish('ch', 'x'));
            $redis->process->signal(SIGSTOP);
            // A fresh client: the kernel still accepts the connection; the answer never comes.
            $fresh = new Client(array('redis_url' => $redis->url(), 'redis_driver' => $driver,
                'connect_timeout' => 0.3, 'timeout' => 0.3));
            foreach (array('connected' => $connected, 'fresh' => $fresh) as $which => $c) {
                $start = microtime(true);
                try {
                    $c->publish('ch', 'y');
                    $this->fail("$which: published to a stopped Redis");
                } catch (CometException $e) {
                    $this->assertSame(CometException::TIMEOUT, $e->getCode(), "$which: " . $e->getMessage());
                }
                $elapsed = $this->assertFasterThan(0.3 + 0.35, $start, "$which: publish to a hung Redis");
                $this->assertGreaterThan(0.25, $elapsed, "$which: gave up before the timeout");
            }
            // A big batch (more than the socket buffers take) is bounded too.
            $batch = array();
            for ($i = 0; $i < 1000; $i++) {
                $batch[] = array('ch', str_repeat('z', 2000));
            }
            $start = microtime(true);
            try {
                $fresh->publishMany($batch);
                $this->fail('published a batch to a stopped Redis');
            } catch (CometException $e) {
                $this->assertSame(CometException::TIMEOUT, $e->getCode(), $e->getMessage());
                $this->assertCount(1000, $e->getResults());
            }
            $this->assertFasterThan(0.3 + 0.35, $start, 'batch to a hung Redis');
        } finally {
            $redis->destroy();
        }
    }

    public function testConnectTimeout()
    {
        // A listener whose accept queue is full drops further SYNs: connect() hangs.
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr, STREAM_SERVER_BIND | STREAM_SERVER_LISTEN,
            stream_context_create(array('socket' => array('backlog' => 0))));
        $name = stream_socket_get_name($server, false);
        $fillers = array();
        for ($i = 0; $i < 4; $i++) {
            $f = @stream_socket_client("tcp://$name", $e1, $e2, 0.2, STREAM_CLIENT_CONNECT | STREAM_CLIENT_ASYNC_CONNECT);
            if ($f) {
                $fillers[] = $f;
            }
        }
        usleep(100000);
        $c = new Client(array('redis_url' => "redis://$name", 'redis_driver' => 'socket',
            'connect_timeout' => 0.3, 'timeout' => 0.3));
        $start = microtime(true);
        try {
            $c->publish('ch', 'x');
            $this->fail('published to a listener that never answers');
        } catch (CometException $e) {
            // CONNECT when the SYN was dropped; TIMEOUT if the kernel still took the connection.
            $this->assertContains($e->getCode(), array(CometException::CONNECT, CometException::TIMEOUT), $e->getMessage());
        }
        $this->assertFasterThan(0.3 + 0.3 + 0.3, $start, 'publish to a stuck listener');
        foreach ($fillers as $f) {
            fclose($f);
        }
        fclose($server);
    }

    public function testFallsBackToHttpWhenRedisIsUnreachable()
    {
        $ch = self::channel('fallback');
        $sse = $this->subscribe($ch);
        $c = new Client(array('redis_url' => $this->deadUrl(), 'publish_url' => static::$sidecar->publishUrl(),
            'redis_driver' => 'socket'));
        $this->assertSame('redis+http', $c->getTransport());
        $this->assertSame(1, $c->publish($ch, 'via http', 'ev'));
        $this->assertSame(array(2, 3), $c->publishMany(array(array($ch, 'b'), array($ch, array('c' => 1)))));
        $results = $c->getLastResults();
        $this->assertSame(3, $results[1]['id']);
        $this->assertNotSame('', $results[1]['epoch']);
        $this->assertReceived($sse, array(array(1, 'via http', 'ev'), array(2, 'b', null), array(3, '{"c":1}', null)));
    }

    public function testNoFallbackWhenRedisMayHaveTheMessage()
    {
        $ch = self::channel('nodup');
        $sse = $this->subscribe($ch);
        $hung = new RedisServer();
        try {
            $hung->process->signal(SIGSTOP);
            $c = new Client(array('redis_url' => $hung->url(), 'publish_url' => static::$sidecar->publishUrl(),
                'redis_driver' => 'socket', 'connect_timeout' => 0.3, 'timeout' => 0.3));
            try {
                $c->publish($ch, 'maybe');
                $this->fail('published to a hung Redis');
            } catch (CometException $e) {
                $this->assertSame(CometException::TIMEOUT, $e->getCode());
            }
            $this->assertSame(array(), $sse->linger(0.5), 'the HTTP fallback must not publish after a timeout');
        } finally {
            $hung->destroy();
        }
    }

    public function testSidecarWithoutRedisAnswers503()
    {
        $redis = new RedisServer();
        $sidecar = new Sidecar($redis->url());
        try {
            $redis->stop();
            usleep(200000);
            $c = new Client(array('publish_url' => $sidecar->publishUrl(), 'timeout' => 2.0));
            $start = microtime(true);
            try {
                $c->publish('ch', 'x');
                $this->fail('the sidecar published without Redis');
            } catch (CometException $e) {
                $this->assertSame(CometException::HTTP, $e->getCode(), $e->getMessage());
                $this->assertSame(503, $e->getHttpStatus());
            }
            $this->assertFasterThan(2.0, $start, 'publish to a degraded sidecar');
        } finally {
            $problem = $sidecar->destroy();
            $redis->destroy();
        }
        $this->assertSame('', $problem, 'sidecar sanitizer output');
    }
}
