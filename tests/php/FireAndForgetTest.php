<?php

use Comet\Client;
use Comet\CometException;
use CometTest\CometTestCase;
use CometTest\RedisServer;

/**
 * Fire-and-forget: publish returns true without waiting for Redis or the sidecar to
 * answer, the messages still arrive, and the connection stays usable.
 */
class FireAndForgetTest extends CometTestCase
{
    public function testRedisSingleAndBatch()
    {
        $ch = self::channel('ff');
        $sse = $this->subscribe($ch);
        $c = $this->client(array('fire_and_forget' => true));
        $this->assertTrue($c->publish($ch, 'one'));
        $this->assertSame(array('a' => true, 'b' => true), $c->publishMany(array('a' => array($ch, 'two'), 'b' => array($ch, 'three', 'ev'))));
        // The same client, waiting this time: the connection is in step.
        $this->assertSame(4, $c->publish($ch, 'four', array('fire_and_forget' => false)));
        $this->assertSame(array(5, 6), $c->publishMany(array(array($ch, 'five'), array($ch, 'six')), false));
        $this->assertTrue($c->publish($ch, 'seven'));
        $this->assertSame(8, $c->publish($ch, 'eight', array('fire_and_forget' => false)));
        $expected = array(array(1, 'one', null), array(2, 'two', null), array(3, 'three', 'ev'), array(4, 'four', null),
            array(5, 'five', null), array(6, 'six', null), array(7, 'seven', null), array(8, 'eight', null));
        $this->assertReceived($sse, $expected);
    }

    public function testFunctionApiAndAuth()
    {
        $redis = new RedisServer(array('--requirepass', 'pw'));
        try {
            $this->assertTrue(comet_configure(array('redis_url' => $redis->url() . '/2', 'publish_url' => '',
                'fire_and_forget' => true)));
            $this->assertTrue(comet_publish('ch', 'x'));
            $this->assertSame(array(true, true), comet_publish_many(array(array('ch', 'y'), array('ch', 'z'))));
            comet_configure(array('fire_and_forget' => false));
            $this->assertSame(4, comet_publish('ch', 'w'));
        } finally {
            $redis->destroy();
        }
    }

    public function testDoesNotWaitForAHungRedis()
    {
        $redis = new RedisServer();
        try {
            $redis->process->signal(SIGSTOP);
            $c = new Client(array('redis_url' => $redis->url(), 'redis_driver' => 'socket', 'fire_and_forget' => true,
                'timeout' => 2.0));
            $start = microtime(true);
            $this->assertTrue($c->publish('ch', 'queued'));
            $this->assertFasterThan(0.2, $start, 'fire-and-forget publish to a hung Redis');
            $c->close();
            $redis->process->signal(SIGCONT);
            $until = microtime(true) + 5;
            while ($redis->command(array('GET', 'comet:{ch}:seq')) !== '1' && microtime(true) < $until) {
                usleep(20000);
            }
            $this->assertSame('1', $redis->command(array('GET', 'comet:{ch}:seq')), 'the message was published');
        } finally {
            $redis->destroy();
        }
    }

    public function testConnectFailureIsStillReported()
    {
        $c = new Client(array('redis_url' => 'redis://127.0.0.1:' . CometTest\Paths::freePort(), 'fire_and_forget' => true));
        $this->expectException(CometException::class);
        $this->expectExceptionCode(CometException::CONNECT);
        $c->publish('ch', 'x');
    }

    public function testHttp()
    {
        $ch = self::channel('ff-http');
        $sse = $this->subscribe($ch);
        $c = new Client(array('publish_url' => static::$sidecar->publishUrl(), 'fire_and_forget' => true));
        $start = microtime(true);
        $this->assertTrue($c->publish($ch, 'one'));
        $this->assertFasterThan(0.2, $start, 'fire-and-forget POST');
        $batch = array();
        $expected = array(array(1, 'one', null));
        for ($i = 2; $i <= 51; $i++) {
            $batch[] = array($ch, "m$i");
            $expected[] = array($i, "m$i", null);
        }
        $this->assertSame(array_fill(0, 50, true), $c->publishMany($batch));
        $this->assertReceived($sse, $expected);
    }
}
