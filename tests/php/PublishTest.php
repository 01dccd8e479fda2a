<?php

use Comet\Client;
use CometTest\CometTestCase;

/**
 * comet_publish / Comet\Client over Redis with each driver: what a browser-side subscriber
 * (SSE, and long-poll) receives is exactly what was published, once, with the returned ids.
 */
class PublishTest extends CometTestCase
{
    /** @dataProvider drivers */
    public function testString($driver)
    {
        $this->requireDriver($driver);
        $ch = self::channel('string');
        $sse = $this->subscribe($ch);
        $c = $this->client(array('redis_driver' => $driver));
        $this->assertSame(1, $c->publish($ch, 'hello', array('event' => 'greet')));
        $this->assertSame(2, $c->publish($ch, 'second'));
        $this->assertSame(3, $c->publish($ch, 'third', 'shorthand-event'));
        $last = $c->getLastResults();
        $this->assertSame($ch, $last[0]['ch']);
        $this->assertSame(3, $last[0]['id']);
        $this->assertSame(2, $last[0]['prev']);
        $this->assertMatchesRegularExpression('/^[0-9a-z]+$/', $last[0]['epoch']);
        $expected = array(array(1, 'hello', 'greet'), array(2, 'second', null), array(3, 'third', 'shorthand-event'));
        $this->assertReceived($sse, $expected);
        $this->assertPolled($ch, $expected, $last[0]['epoch']);
    }

    /** @dataProvider drivers */
    public function testArrayIsJsonWithoutEscapedSlashesOrUnicode($driver)
    {
        $this->requireDriver($driver);
        $ch = self::channel('array');
        $sse = $this->subscribe($ch);
        $data = array('user' => 'zoë', 'url' => 'https://example.com/a/b', 'n' => 3, 'list' => array(1, 2), 'ok' => true);
        $obj = new stdClass();
        $obj->kind = 'object';
        $c = $this->client(array('redis_driver' => $driver));
        $this->assertSame(1, $c->publish($ch, $data));
        $this->assertSame(2, $c->publish($ch, $obj));
        $json = '{"user":"zoë","url":"https://example.com/a/b","n":3,"list":[1,2],"ok":true}';
        $this->assertReceived($sse, array(array(1, $json, null), array(2, '{"kind":"object"}', null)));
    }

    /** @dataProvider drivers */
    public function testUnicode($driver)
    {
        $this->requireDriver($driver);
        $ch = self::channel('unicode');
        $sse = $this->subscribe($ch);
        $text = "héllo wörld — 日本語 🎉 \u{2028} <b>&amp;</b>";
        $c = $this->client(array('redis_driver' => $driver));
        $this->assertSame(1, $c->publish($ch, $text));
        $this->assertSame(2, $c->publish($ch, array('msg' => $text)));
        // PHP 7.1+ escapes U+2028/U+2029 even with JSON_UNESCAPED_UNICODE; both are valid JSON.
        $json = json_encode(array('msg' => $text), JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
        $this->assertStringContainsString('日本語 🎉', $json);
        $expected = array(array(1, $text, null), array(2, $json, null));
        $this->assertReceived($sse, $expected);
        $this->assertPolled($ch, $expected);
    }

    /** @dataProvider drivers */
    public function test64KiBPayload($driver)
    {
        $this->requireDriver($driver);
        $ch = self::channel('big');
        $sse = $this->subscribe($ch);
        // Exactly 65536 bytes, multi-byte characters included: the sidecar's default limit.
        $data = str_repeat('ü', 1000) . str_repeat('x', 65536 - 2000);
        $this->assertSame(65536, strlen($data));
        $c = $this->client(array('redis_driver' => $driver));
        $this->assertSame(1, $c->publish($ch, $data));
        $this->assertSame(2, $c->publish($ch, 'after'));
        $expected = array(array(1, $data, null), array(2, 'after', null));
        $this->assertReceived($sse, $expected);
        $this->assertPolled($ch, $expected);
    }

    /** @dataProvider drivers */
    public function testBatchOf1000($driver)
    {
        $this->requireDriver($driver);
        $ch = self::channel('batch');
        $other = self::channel('other');
        $sse = $this->subscribe($ch);
        $sseOther = $this->subscribe($other);
        $batch = array();
        for ($i = 0; $i < 1000; $i++) {
            // Every 10th goes to another channel; keys are kept in the result.
            $batch['m' . $i] = $i % 10 === 9
                ? array('channel' => $other, 'data' => array('i' => $i), 'event' => 'tick')
                : array($ch, "message $i");
        }
        $c = $this->client(array('redis_driver' => $driver));
        $ids = $c->publishMany($batch);
        $this->assertSame(array_keys($batch), array_keys($ids));
        $expected = array();
        $expectedOther = array();
        foreach ($batch as $key => $m) {
            if (isset($m['channel'])) {
                $expectedOther[] = array(count($expectedOther) + 1, '{"i":' . $m['data']['i'] . '}', 'tick');
                $this->assertSame(count($expectedOther), $ids[$key]);
            } else {
                $expected[] = array(count($expected) + 1, $m[1], null);
                $this->assertSame(count($expected), $ids[$key]);
            }
        }
        $this->assertCount(900, $expected);
        $this->assertReceived($sse, $expected);
        $this->assertReceived($sseOther, $expectedOther);
        $this->assertPolled($ch, $expected);
    }

    public function testFunctionApi()
    {
        $ch = self::channel('functions');
        $sse = $this->subscribe($ch);
        $this->assertTrue(comet_configure(array('redis_url' => static::$redis->url(), 'publish_url' => '')));
        $this->assertNull(comet_last_error());
        $this->assertSame(1, comet_publish($ch, 'one'));
        $this->assertSame(2, comet_publish($ch, array('two' => 2), array('event' => 'num')));
        $batch = array();
        for ($i = 3; $i <= 1002; $i++) {
            $batch[] = array('channel' => $ch, 'data' => "m$i");
        }
        $ids = comet_publish_many($batch);
        $this->assertSame(range(3, 1002), $ids);
        $this->assertNull(comet_last_error());
        $expected = array(array(1, 'one', null), array(2, '{"two":2}', 'num'));
        for ($i = 3; $i <= 1002; $i++) {
            $expected[] = array($i, "m$i", null);
        }
        $this->assertReceived($sse, $expected);
        $this->assertPolled($ch, $expected);
        $this->assertInstanceOf('Comet\Client', comet_client());
        $this->assertSame(array(), comet_publish_many(array()));
    }

    /** @dataProvider drivers */
    public function testAuthSelectAndUnixSocket($driver)
    {
        $this->requireDriver($driver);
        $redis = new CometTest\RedisServer(array('--requirepass', 'p@ss:w/rd', '--user', 'alice', 'on', '>alicepw', '~*', '&*', '+@all'));
        try {
            $ch = self::channel('auth');
            $c = new Client(array('redis_url' => 'redis://:' . rawurlencode('p@ss:w/rd') . '@127.0.0.1:' . $redis->port . '/3',
                'redis_driver' => $driver));
            $this->assertSame(1, $c->publish($ch, 'x'));
            $this->assertNull($redis->command(array('GET', "comet:{{$ch}}:seq")), 'db 0 untouched');
            $this->assertSame('1', $this->getInDb($redis, 3, "comet:{{$ch}}:seq"));
            // ACL user + password, unix socket, db given as an option.
            $c = new Client(array('redis_socket' => $redis->socket, 'redis_user' => 'alice', 'redis_password' => 'alicepw',
                'redis_db' => 5, 'redis_driver' => $driver));
            $this->assertSame(1, $c->publish($ch, 'y'));
            $this->assertSame('1', $this->getInDb($redis, 5, "comet:{{$ch}}:seq"));
            $c = new Client(array('redis_url' => 'unix://:' . rawurlencode('p@ss:w/rd') . '@' . $redis->socket . '?db=3',
                'redis_driver' => $driver));
            $this->assertSame(2, $c->publish($ch, 'z'));
            // Wrong password: a Redis error, not a hang.
            $c = new Client(array('redis_url' => 'redis://:wrong@127.0.0.1:' . $redis->port, 'redis_driver' => $driver));
            try {
                $c->publish($ch, 'nope');
                $this->fail('published with a wrong password');
            } catch (Comet\CometException $e) {
                $this->assertContains($e->getCode(), array(Comet\CometException::REDIS, Comet\CometException::CONNECT));
                $this->assertMatchesRegularExpression('/WRONGPASS|invalid password|AUTH/i', $e->getMessage());
            }
        } finally {
            $redis->destroy();
        }
    }

    private function getInDb(CometTest\RedisServer $redis, $db, $key)
    {
        // A MULTI-less trick: EVAL can't SELECT, so ask with a raw connection.
        $s = stream_socket_client('tcp://127.0.0.1:' . $redis->port);
        $cmd = function (array $a) {
            $o = '*' . count($a) . "\r\n";
            foreach ($a as $x) {
                $o .= '$' . strlen($x) . "\r\n$x\r\n";
            }
            return $o;
        };
        fwrite($s, $cmd(array('AUTH', $redis->password)) . $cmd(array('SELECT', (string) $db)) . $cmd(array('GET', $key)));
        fgets($s);
        fgets($s);
        $len = (int) substr(fgets($s), 1);
        $v = $len < 0 ? null : substr(fread($s, $len + 2), 0, $len);
        fclose($s);
        return $v;
    }

    /** @dataProvider drivers */
    public function testPersistentConnectionsAreReused($driver)
    {
        $this->requireDriver($driver);
        $ch = self::channel('persistent');
        $before = null;
        for ($i = 1; $i <= 5; $i++) {
            $c = $this->client(array('redis_driver' => $driver, 'persistent' => true));
            $this->assertSame($i, $c->publish($ch, "p$i"));
            $c->close();
            unset($c);
            $clients = static::$redis->command(array('INFO', 'clients'));
            preg_match('/connected_clients:(\d+)/', $clients, $m);
            if ($before === null) {
                $before = (int) $m[1];
            }
            $this->assertSame($before, (int) $m[1], 'connections after publish ' . $i);
        }
    }

    public function testPersistentWithPasswordAndFireAndForget()
    {
        $redis = new CometTest\RedisServer(array('--requirepass', 'pw'));
        try {
            $ch = self::channel('pw-ff');
            $url = 'redis://:pw@127.0.0.1:' . $redis->port . '/2';
            for ($round = 0; $round < 3; $round++) {
                $c = new Client(array('redis_url' => $url, 'redis_driver' => 'socket', 'persistent' => true));
                $this->assertTrue($c->publish($ch, 'ff', array('fire_and_forget' => true)));
                $this->assertSame(2 * $round + 2, $c->publish($ch, 'waited'));
                $c->close();
            }
            // The same persistent socket with a wrong password: refused quickly, not a timeout.
            $c = new Client(array('redis_url' => 'redis://:bad@127.0.0.1:' . $redis->port . '/2',
                'redis_driver' => 'socket', 'persistent' => true));
            $start = microtime(true);
            try {
                $c->publish($ch, 'x');
                $this->fail('published with a wrong password');
            } catch (Comet\CometException $e) {
                $this->assertSame(Comet\CometException::REDIS, $e->getCode(), $e->getMessage());
            }
            $this->assertFasterThan(0.4, $start, 'wrong password');
            $c = new Client(array('redis_url' => $url, 'redis_driver' => 'socket', 'persistent' => true));
            $this->assertSame(7, $c->publish($ch, 'again'), 'nothing was published with the wrong password');
        } finally {
            $redis->destroy();
        }
    }

    /** @dataProvider drivers */
    public function testBadDatabaseIndex($driver)
    {
        $this->requireDriver($driver);
        $c = $this->client(array('redis_driver' => $driver, 'redis_db' => 999));
        try {
            $c->publish(self::channel(), 'x');
            $this->fail('published to database 999');
        } catch (Comet\CometException $e) {
            $this->assertContains($e->getCode(), array(Comet\CometException::REDIS, Comet\CometException::CONNECT), $e->getMessage());
            $this->assertMatchesRegularExpression('/DB index|SELECT|database/i', $e->getMessage());
        }
    }

    /**
     * A standalone Redis (which may be older than 7) gets a classic PUBLISH, never
     * SPUBLISH: a SUBSCRIBE sees every message, an SSUBSCRIBE none.
     * @dataProvider drivers
     */
    public function testStandalonePublishIsClassic($driver)
    {
        $this->requireDriver($driver);
        $ch = self::channel('classic');
        $classic = new CometTest\RedisSubscriber(static::$redis->port, 'SUBSCRIBE', 'comet:{' . $ch . '}');
        $sharded = new CometTest\RedisSubscriber(static::$redis->port, 'SSUBSCRIBE', 'comet:{' . $ch . '}');
        try {
            $c = $this->client(array('redis_driver' => $driver));
            $this->assertSame(1, $c->publish($ch, 'one'));
            $this->assertSame(array(2, 3), $c->publishMany(array(array($ch, 'two'), array($ch, 'three'))));
            $this->assertTrue($this->client(array('fire_and_forget' => true))->publish($ch, 'four'));
            $got = array();
            foreach ($classic->messages(5.0, 4) as $payload) {
                $m = json_decode(substr($payload, strlen('comet/1 ')), true);
                $got[] = array($m['id'], $m['data']);
            }
            $this->assertSame(array(array(1, 'one'), array(2, 'two'), array(3, 'three'), array(4, 'four')), $got);
            $this->assertSame(array(), $sharded->messages(0.2), 'nothing SPUBLISHed');
        } finally {
            $classic->close();
            $sharded->close();
        }
    }

    public function testSidecarLoadsTheSameScript()
    {
        $this->assertSame(array(1), static::$redis->command(array('SCRIPT', 'EXISTS', Client::scriptSha())));
    }

    public function testPersistentSocketAfterFireAndForgetStaysInStep()
    {
        $ch = self::channel('ff-persistent');
        $c = $this->client(array('redis_driver' => 'socket', 'persistent' => true));
        $this->assertSame(1, $c->publish($ch, 'a'));
        $this->assertTrue($c->publish($ch, 'b', array('fire_and_forget' => true)));
        $c->close();
        $c = $this->client(array('redis_driver' => 'socket', 'persistent' => true));
        $this->assertSame(3, $c->publish($ch, 'c'));
        $this->assertSame(4, $c->publish($ch, 'd'));
    }
}
