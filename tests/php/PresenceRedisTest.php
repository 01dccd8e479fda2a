<?php

use Comet\Client;
use CometTest\CometTestCase;
use CometTest\Http;

/**
 * comet_presence() / comet_occupancy() with Redis configured: read from the keys the
 * sidecars keep (docs/protocol.md, "Presence across sidecars (Redis)"), the same
 * answer as the sidecar's GET /presence and /occupancy.
 */
class PresenceRedisTest extends CometTestCase
{
    const SECRET = 'presence-redis-secret-0123456789';
    protected static $sidecarFlags = array('--token-secret', self::SECRET, '--presence-grace', '200ms');
    private $streams = array();

    protected function tearDown(): void
    {
        foreach ($this->streams as $s) {
            if (is_resource($s)) {
                fclose($s);
            }
        }
        $this->streams = array();
        parent::tearDown();
    }

    public function testReadsTheKeysOfTheLayout()
    {
        $ch = 'presence:' . bin2hex(random_bytes(4));
        $redis = static::$redis;
        $redis->command(array('HSET', 'comet:{' . $ch . '}:presence:info', '7', '{"name":"Ann"}', '9', ''));
        $redis->command(array('HSET', 'comet:{' . $ch . '}:presence:count', '7', '2', '9', '1'));
        $c = $this->client();
        $members = $c->presence($ch);
        usort($members, function ($a, $b) {
            return strcmp($a['id'], $b['id']);
        });
        $this->assertSame(array(array('id' => '7', 'info' => array('name' => 'Ann')), array('id' => '9', 'info' => array())), $members);
        $this->assertSame(2, $c->occupancy($ch));
        $this->assertSame(array($ch => 2, 'presence:none' => 0), $c->occupancy(array($ch, 'presence:none')));
        $this->assertSame(array(), $c->presence('presence:none'));
    }

    public function testTheSameAnswerAsTheSidecar()
    {
        $ch = 'presence:' . bin2hex(random_bytes(4));
        foreach (array('7' => array('name' => 'Ann'), '9' => null) as $user => $info) {
            $claims = array('sub' => (string) $user);
            if ($info !== null) {
                $claims['info'] = $info;
            }
            $token = Client::signToken(self::SECRET, $ch, 60, $claims);
            $this->streams[] = Http::send(static::$sidecar->port, 'GET', '/sse?ch=' . rawurlencode($ch) . '&token=' . rawurlencode($token));
        }
        $viaRedis = $this->client();
        $viaHttp = new Client(array('publish_url' => static::$sidecar->publishUrl(), 'timeout' => 2.0));
        $until = microtime(true) + 10;
        while ($viaRedis->occupancy($ch) !== 2 && microtime(true) < $until) {
            usleep(50000);
        }
        $this->assertSame(2, $viaRedis->occupancy($ch));
        $this->assertSame(2, $viaHttp->occupancy($ch));
        $sort = function (array $members) {
            usort($members, function ($a, $b) {
                return strcmp($a['id'], $b['id']);
            });
            return $members;
        };
        $this->assertSame($sort($viaHttp->presence($ch)), $sort($viaRedis->presence($ch)));
        $this->assertSame(array('name' => 'Ann'), $sort($viaRedis->presence($ch))[0]['info']);

        foreach ($this->streams as $s) {
            fclose($s);
        }
        $this->streams = array();
        $until = microtime(true) + 10;
        while ($viaRedis->occupancy($ch) !== 0 && microtime(true) < $until) {
            usleep(50000);
        }
        $this->assertSame(0, $viaRedis->occupancy($ch), 'gone once the grace period is over');
        $this->assertSame(array(), $viaRedis->presence($ch));
    }

    public function testRedisDownFallsBackToHttpWhenAPublishUrlIsSet()
    {
        $c = new Client(array('redis_url' => 'redis://127.0.0.1:' . CometTest\Paths::freePort(),
            'publish_url' => static::$sidecar->publishUrl(), 'timeout' => 1.0, 'connect_timeout' => 0.5));
        $this->assertSame(0, $c->occupancy('presence:nobody'));
        $c = new Client(array('redis_url' => 'redis://127.0.0.1:' . CometTest\Paths::freePort(), 'connect_timeout' => 0.5));
        $this->expectException(Comet\CometException::class);
        $c->presence('presence:nobody');
    }
}
