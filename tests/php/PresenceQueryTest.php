<?php

use Comet\Client;
use CometTest\CometTestCase;
use CometTest\Http;
use CometTest\Paths;
use CometTest\Sidecar;

/**
 * comet_presence() / comet_occupancy() against a sidecar (GET /presence/<channel>,
 * GET /occupancy on its publish listener): members come and go as SSE subscribers with
 * tokens naming a user (sub) and info open and close.
 */
class PresenceQueryTest extends CometTestCase
{
    const SECRET = 'presence-query-secret-0123456789';
    protected static $withRedis = false;
    private $streams = array();

    public static function setUpBeforeClass(): void
    {
        static::$sidecar = new Sidecar(null, array('--token-secret', self::SECRET, '--presence-grace', '200ms'));
    }

    protected function setUp(): void
    {
        $this->assertTrue(comet_configure(array('publish_url' => static::$sidecar->publishUrl(), 'timeout' => 2.0)));
    }

    protected function tearDown(): void
    {
        foreach ($this->streams as $s) {
            fclose($s);
        }
        $this->streams = array();
        comet_configure(array('publish_url' => ''));
        parent::tearDown();
    }

    /** An SSE subscriber of $channel as user $user, left open: a member. */
    private function member($channel, $user, array $info = null)
    {
        $claims = array('sub' => $user);
        if ($info !== null) {
            $claims['info'] = $info;
        }
        $token = Client::signToken(self::SECRET, $channel, 60, $claims);
        $s = Http::send(static::$sidecar->port, 'GET', '/sse?ch=' . rawurlencode($channel) . '&token=' . rawurlencode($token));
        $this->assertTrue(is_resource($s));
        $this->streams[] = $s;
        return $s;
    }

    private function waitForOccupancy($channel, $count)
    {
        $until = microtime(true) + 5;
        do {
            $n = comet_occupancy($channel);
            if ($n === $count) {
                return;
            }
            usleep(20000);
        } while (microtime(true) < $until);
        $this->assertSame($count, $n, "occupancy of $channel");
    }

    public function testMembersComeAndGo()
    {
        $ch = 'presence:' . bin2hex(random_bytes(4));
        $other = 'presence:' . bin2hex(random_bytes(4));
        $this->assertSame(array(), comet_presence($ch));
        $this->assertSame(0, comet_occupancy($ch));

        $ann = $this->member($ch, '7', array('name' => 'Ann'));
        $annAgain = $this->member($ch, '7', array('name' => 'Ann'));  // a second tab: one member
        $this->member($ch, '9');
        $this->waitForOccupancy($ch, 2);
        $members = comet_presence($ch);
        usort($members, function ($a, $b) {
            return strcmp($a['id'], $b['id']);
        });
        $this->assertSame(array('7', '9'), array_map(function ($m) {
            return $m['id'];
        }, $members));
        $this->assertSame(array('name' => 'Ann'), $members[0]['info']);
        $this->assertSame(array($ch => 2, $other => 0), comet_occupancy(array($ch, $other)));

        fclose($ann);
        fclose($annAgain);
        $this->streams = array_values(array_filter($this->streams, 'is_resource'));
        $this->waitForOccupancy($ch, 1);  // after the grace period
        $this->assertSame('9', comet_presence($ch)[0]['id']);
    }

    public function testFailuresReturnFalse()
    {
        $this->assertFalse(comet_presence('bad channel'));
        $this->assertStringContainsString('channel', comet_last_error());
        $this->assertFalse(comet_occupancy(array('ok', 'bad channel')));
        $this->assertTrue(comet_configure(array('publish_url' => 'http://127.0.0.1:' . Paths::freePort())));
        $this->assertFalse(comet_presence('presence:x'));
        $this->assertStringContainsString('cannot connect', comet_last_error());
    }

    public function testThePublicListenerNeedsTheKey()
    {
        $this->assertTrue(comet_configure(array('publish_url' => static::$sidecar->url())));
        $this->assertFalse(comet_occupancy('presence:x'));
        $this->assertSame(Comet\CometException::HTTP, comet_last_exception()->getCode());
    }
}
