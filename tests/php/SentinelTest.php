<?php

use Comet\Client;
use Comet\CometException;
use CometTest\Paths;
use CometTest\Process;
use CometTest\RedisSentinelSet;
use CometTest\RedisSubscriber;
use PHPUnit\Framework\TestCase;

/**
 * redis+sentinel://: a real master, replica and sentinel (quorum 1,
 * down-after-milliseconds 1500). The client publishes to the master the sentinels name,
 * only after ROLE says master; after the master is killed it publishes through the
 * promoted replica, and never to the old master when it comes back.
 */
class SentinelTest extends TestCase
{
    /** comet_configure() keeps earlier tests' options: these undo the ones that matter here. */
    private static $plain = array('redis_host' => '', 'redis_port' => 0, 'redis_socket' => '', 'redis_db' => -1, 'redis_driver' => 'auto', 'publish_url' => '', 'fire_and_forget' => false, 'sentinel_password' => '', 'sentinel_user' => '');

    /** @var RedisSentinelSet|null */
    private $set = null;
    /** @var Process|null */
    private $fake = null;

    protected function setUp(): void
    {
        exec('command -v redis-server 2>/dev/null', $out, $rc);
        if ($rc !== 0) {
            $this->markTestSkipped('redis-server not installed (Debian: redis-server): Sentinel tests skipped');
        }
    }

    protected function tearDown(): void
    {
        if ($this->fake) {
            $this->fake->stop();
            $this->fake = null;
        }
        if ($this->set) {
            $this->set->destroy();
            $this->set = null;
        }
    }

    private static function xlen($node, $ch)
    {
        return $node->command(array('XLEN', 'comet:{' . $ch . '}:log'));
    }

    private static function evals($node)
    {
        return $node->commandCalls('evalsha') + $node->commandCalls('eval');
    }

    /** Ids 1..n in the stream on $node, each once. */
    private function assertIds($node, $ch, $n)
    {
        $ids = array();
        foreach ($node->command(array('XRANGE', 'comet:{' . $ch . '}:log', '-', '+')) as $e) {
            $ids[] = $e[0];
        }
        $want = array();
        for ($i = 1; $i <= $n; $i++) {
            $want[] = $i . '-0';
        }
        $this->assertSame($want, $ids, "ids of $ch on port {$node->port}");
    }

    public function testPublishesToTheMasterOnly()
    {
        $this->set = new RedisSentinelSet(1, 1);
        // Sentinel keeps the classic PUBLISH (the master may be older than Redis 7).
        $classic = new RedisSubscriber($this->set->master->port, 'SUBSCRIBE', 'comet:{news}');
        $sharded = new RedisSubscriber($this->set->master->port, 'SSUBSCRIBE', 'comet:{news}');
        $c = new Client(array('redis_url' => $this->set->url(), 'timeout' => 1.0));
        $this->assertSame('redis', $c->getTransport());
        $this->assertSame(1, $c->publish('news', 'a'));
        $this->assertSame(array(2, 3), $c->publishMany(array(array('news', 'b'), array('news', 'c'))));
        $this->assertSame(3, self::xlen($this->set->master, 'news'));
        $this->assertSame(0, self::evals($this->set->replicas[0]));
        $this->assertCount(3, $classic->messages(5.0, 3), 'SUBSCRIBE on the master');
        $this->assertSame(array(), $sharded->messages(0.2), 'nothing SPUBLISHed');
        $classic->close();
        $sharded->close();
        // The function API, with the URL from the environment.
        putenv('COMET_REDIS_URL=' . $this->set->url());
        try {
            $this->assertTrue(comet_configure(array_merge(self::$plain, array('redis_url' => $this->set->url() . '?db=0'))));
            $this->assertSame(4, comet_publish('news', 'd'));
            $env = new Client();
            $this->assertSame(5, $env->publish('news', 'e'));
        } finally {
            putenv('COMET_REDIS_URL');
            comet_configure(array_merge(self::$plain, array('redis_url' => '')));
        }
    }

    public function testNeverPublishesToANodeThatIsNotMaster()
    {
        $this->set = new RedisSentinelSet(1, 1);
        $replica = $this->set->replicas[0];
        // A "sentinel" naming the replica, listed first.
        $port = Paths::freePort();
        $dir = $this->set->dir;
        $this->fake = new Process(array(PHP_BINARY, __DIR__ . '/fixtures/fake_sentinel.php', (string) $port, '127.0.0.1',
            (string) $replica->port), $dir, 'fake-sentinel', Paths::childEnv());
        $until = microtime(true) + 5;
        while (strpos($this->fake->stdout(), 'listening') === false && microtime(true) < $until) {
            usleep(20000);
        }
        $url = 'redis+sentinel://127.0.0.1:' . $port . ',127.0.0.1:' . $this->set->sentinelPorts[0] . '/' . RedisSentinelSet::MASTER_NAME;
        $c = new Client(array('redis_url' => $url, 'timeout' => 1.0));
        $this->assertSame(1, $c->publish('ch', 'x'));
        $this->assertSame(1, self::xlen($this->set->master, 'ch'));
        $this->assertSame(0, self::evals($replica));
        // Only that "sentinel": nothing is published; CONNECT (nothing sent) within the timeout.
        $only = new Client(array('redis_url' => 'redis+sentinel://127.0.0.1:' . $port . '/' . RedisSentinelSet::MASTER_NAME,
            'timeout' => 0.5, 'connect_timeout' => 0.3));
        $start = microtime(true);
        try {
            $only->publish('ch', 'y');
            $this->fail('published to a replica');
        } catch (CometException $e) {
            $this->assertSame(CometException::CONNECT, $e->getCode());
            $this->assertStringContainsString('is not a master: ROLE slave', $e->getMessage());
        }
        $this->assertLessThan(1.5, microtime(true) - $start);
        $this->assertSame(0, self::evals($replica));
    }

    public function testFailover()
    {
        $this->set = new RedisSentinelSet(1, 1);
        $old = $this->set->master;
        $replica = $this->set->replicas[0];
        $c = new Client(array('redis_url' => $this->set->url(), 'timeout' => 0.5, 'connect_timeout' => 0.3));
        for ($i = 1; $i <= 5; $i++) {
            $this->assertSame($i, $c->publish('ch', 'before ' . $i));
        }
        // WAIT counts for the connection that wrote: wait for the replica to have it all.
        $until = microtime(true) + 5;
        while ($replica->command(array('GET', 'comet:{ch}:seq')) !== '5' && microtime(true) < $until) {
            usleep(10000);
        }
        $oldPort = $old->port;
        $old->process->signal(SIGKILL);
        $start = microtime(true);
        $failures = array();
        $id = null;
        while ($id === null) {
            try {
                $id = $c->publish('ch', 'after');
            } catch (CometException $e) {
                // Nothing published (CONNECT), or maybe (IO: the connection died mid-command).
                $this->assertContains($e->getCode(), array(CometException::CONNECT, CometException::IO, CometException::TIMEOUT),
                    $e->getMessage());
                $failures[$e->getCode()] = $e->getMessage();
                $this->assertLessThan(15, microtime(true) - $start, 'publishing did not resume: ' . json_encode($failures));
            }
        }
        $resumed = microtime(true) - $start;
        fwrite(STDERR, sprintf("\n[sentinel failover] publishing resumed %.2f s after SIGKILL of the master\n", $resumed));
        $this->assertSame(6, $id, 'ids continue on the promoted replica');
        $this->assertSame('master', RedisSentinelSet::role($replica));
        $this->assertSame($replica->port, $this->set->masterPortSeen());
        // The old master comes back (empty, still calling itself master until the sentinel
        // turns it into a replica): publishes go to the new master only.
        $old->process->stop();
        $old->start($oldPort);
        $this->assertSame(0, self::evals($old));
        for ($i = 7; $i <= 11; $i++) {
            $fresh = new Client(array('redis_url' => $this->set->url(), 'timeout' => 0.5));
            $this->assertSame($i, $fresh->publish('ch', 'fresh ' . $i));
        }
        $this->assertSame(12, $c->publish('ch', 'same client'));
        $this->assertSame(0, self::evals($old), 'nothing published to the old master');
        $this->assertIds($replica, 'ch', 12);
    }

    public function testFailoverSeenByALongRunningClient()
    {
        // A manual failover (SENTINEL FAILOVER): the sentinel names the replica at once,
        // while the old master may call itself master until the sentinel reconfigures it.
        // A client that keeps its connection (a worker) asks the sentinels again before
        // using a master found more than a second ago, and follows.
        $this->set = new RedisSentinelSet(1, 1);
        $old = $this->set->master;
        $replica = $this->set->replicas[0];
        $c = new Client(array('redis_url' => $this->set->url(), 'timeout' => 2.0));
        $this->assertSame(1, $c->publish('ch', 'a'));
        $until = microtime(true) + 5;
        while ($replica->command(array('GET', 'comet:{ch}:seq')) !== '1' && microtime(true) < $until) {
            usleep(10000);
        }
        // NOGOODSLAVE until the sentinel has the replica's INFO.
        $until = microtime(true) + 12;
        do {
            $reply = $this->set->sentinel($this->set->sentinelPorts[0], array('SENTINEL', 'FAILOVER', RedisSentinelSet::MASTER_NAME));
        } while ($reply !== 'OK' && microtime(true) < $until && usleep(100000) === null);
        $this->assertSame('OK', $reply);
        $until = microtime(true) + 10;
        while ($this->set->masterPortSeen() !== $replica->port && microtime(true) < $until) {
            usleep(20000);
        }
        $this->assertSame($replica->port, $this->set->masterPortSeen());
        usleep(1100000);
        $evals = self::evals($old);
        $this->assertSame(2, $c->publish('ch', 'b'));
        $this->assertSame($evals, self::evals($old), 'nothing sent to the old master');
        $this->assertIds($replica, 'ch', 2);
    }

    public function testSentinelPassword()
    {
        $this->set = new RedisSentinelSet(1, 1, 's3ntinel pw');
        $url = $this->set->url();
        $c = new Client(array('redis_url' => $url, 'timeout' => 0.5));
        try {
            $c->publish('ch', 'x');
            $this->fail('published without the sentinel password');
        } catch (CometException $e) {
            $this->assertSame(CometException::CONNECT, $e->getCode());
            $this->assertStringContainsString('NOAUTH', $e->getMessage());
        }
        $c = new Client(array('redis_url' => $url, 'sentinel_password' => 's3ntinel pw'));
        $this->assertSame(1, $c->publish('ch', 'x'));
        $c = new Client(array('redis_url' => $this->set->url('', '?sentinel_password=s3ntinel%20pw')));
        $this->assertSame(2, $c->publish('ch', 'y'));
    }

    public function testNoSentinelReachable()
    {
        $url = 'redis+sentinel://127.0.0.1:' . Paths::freePort() . ',127.0.0.1:' . Paths::freePort() . '/mymaster';
        $c = new Client(array('redis_url' => $url, 'timeout' => 2.0, 'connect_timeout' => 0.3));
        $start = microtime(true);
        try {
            $c->publish('ch', 'x');
            $this->fail('published without a sentinel');
        } catch (CometException $e) {
            $this->assertSame(CometException::CONNECT, $e->getCode());
            $this->assertStringContainsString('no Redis master "mymaster" found', $e->getMessage());
        }
        $this->assertLessThan(1.0, microtime(true) - $start, 'no waiting when no sentinel answers');
        $this->assertFalse(comet_configure(array_merge(self::$plain, array('redis_url' => $url, 'redis_driver' => 'predis'))));
        $this->assertStringContainsString('redis_driver to socket', comet_last_error());
        comet_configure(array_merge(self::$plain, array('redis_url' => '')));
    }
}
