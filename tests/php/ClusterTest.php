<?php

use Comet\Client;
use Comet\ClusterDriver;
use Comet\CometException;
use CometTest\Paths;
use CometTest\RedisCluster;
use CometTest\RedisSubscriber;
use PHPUnit\Framework\TestCase;

/**
 * redis+cluster://: a real cluster of 3 masters (redis-cli --cluster create). Every
 * message lands in its channel's slot owner with consecutive ids; slot migrations (ASK,
 * then MOVED) and a stale slot map are followed without a duplicate; NOSCRIPT loads the
 * script on the node that said it. Publishes are sharded (the script's SPUBLISH): only an
 * SSUBSCRIBE on the channel's slot owner sees them.
 */
class ClusterTest extends TestCase
{
    /** comet_configure() keeps earlier tests' options: these undo the ones that matter here. */
    private static $plain = array('redis_host' => '', 'redis_port' => 0, 'redis_socket' => '', 'redis_db' => -1, 'redis_driver' => 'auto', 'publish_url' => '', 'fire_and_forget' => false, 'sentinel_password' => '', 'sentinel_user' => '');

    /** @var RedisCluster|null */
    private static $cluster = null;
    private static $skip = null;

    public static function setUpBeforeClass(): void
    {
        foreach (array('redis-server', 'redis-cli') as $tool) {
            exec('command -v ' . $tool . ' 2>/dev/null', $out, $rc);
            if ($rc !== 0) {
                self::$skip = "$tool not installed (Debian: redis-server, redis-tools): Redis Cluster tests skipped";
                return;
            }
        }
        self::$cluster = new RedisCluster(3);
    }

    public static function tearDownAfterClass(): void
    {
        if (self::$cluster) {
            self::$cluster->destroy();
            self::$cluster = null;
        }
    }

    protected function setUp(): void
    {
        if (self::$skip !== null) {
            $this->markTestSkipped(self::$skip);
        }
    }

    private function client(array $options = array())
    {
        return new Client(array_merge(array('redis_url' => self::$cluster->url(), 'timeout' => 2.0), $options));
    }

    private static function channel($name)
    {
        return 'k' . bin2hex(random_bytes(4)) . ':' . $name;
    }

    /** A channel whose keys hash to a slot owned by $node (or not, with $not). */
    private function channelOn($node, $not = false)
    {
        for ($i = 0; $i < 1000; $i++) {
            $ch = self::channel('n' . $i);
            $owner = self::$cluster->ownerOf(ClusterDriver::slot('comet:{' . $ch . '}:seq'));
            if (($owner === $node) !== $not) {
                return $ch;
            }
        }
        $this->fail('no channel found on node ' . $node->port);
    }

    /** Ids 1..$n in the channel's stream on $node, each once, with these data. */
    private function assertStream($node, $ch, array $data)
    {
        $entries = $node->command(array('XRANGE', 'comet:{' . $ch . '}:log', '-', '+'));
        $this->assertIsArray($entries, "stream of $ch on node {$node->port}");
        $ids = array();
        $got = array();
        foreach ($entries as $e) {
            $ids[] = $e[0];
            $fields = array();
            for ($i = 0; $i + 1 < count($e[1]); $i += 2) {
                $fields[$e[1][$i]] = $e[1][$i + 1];
            }
            $got[] = $fields['data'];
        }
        $want = array();
        foreach (array_keys($data) as $i) {
            $want[] = ($i + 1) . '-0';
        }
        $this->assertSame($want, $ids, "ids in the stream of $ch");
        $this->assertSame(array_values($data), $got, "data in the stream of $ch");
    }

    public function testSlotOfKeysIsRedisOwn()
    {
        $node = self::$cluster->nodes[0];
        foreach (array('a', 'comet:{news}:seq', '{user1000}.following', 'foo{}{bar}', 'foo{{bar}}zap', '123456789',
                     'comet:{' . "z\xc3\xa9" . '}:log', '') as $key) {
            $this->assertSame($node->command(array('CLUSTER', 'KEYSLOT', $key)), ClusterDriver::slot($key), $key);
        }
        $this->assertSame(0x31C3, ClusterDriver::crc16('123456789'));
    }

    public function testEveryChannelLandsOnItsSlotOwner()
    {
        $start = microtime(true);
        $c = $this->client();
        $channels = array();
        $byNode = array();
        for ($i = 0; $i < 200; $i++) {
            $ch = self::channel('c' . $i);
            $channels[] = $ch;
            $this->assertSame(1, $c->publish($ch, 'one ' . $i));
        }
        // A batch over every node: one pipeline per node.
        $batch = array();
        foreach ($channels as $i => $ch) {
            $batch['m' . $i] = array($ch, 'two ' . $i, 'ev');
        }
        $ids = $c->publishMany($batch);
        $this->assertSame(array_fill_keys(array_keys($batch), 2), $ids);
        $results = $c->getLastResults();
        $this->assertSame($channels[7], $results['m7']['ch']);
        $this->assertSame(1, $results['m7']['prev']);
        foreach ($channels as $i => $ch) {
            $slot = ClusterDriver::slot('comet:{' . $ch . '}:seq');
            $owner = self::$cluster->ownerOf($slot);
            $byNode[$owner->port] = true;
            $this->assertSame(2, $owner->command(array('XLEN', 'comet:{' . $ch . '}:log')), "XLEN of $ch on its owner");
            foreach (self::$cluster->nodes as $n) {
                if ($n !== $owner) {
                    $this->assertSame(0, $n->command(array('CLUSTER', 'COUNTKEYSINSLOT', (string) $slot)), "$ch not on another node");
                }
            }
            if ($i % 20 === 0) {
                $this->assertStream($owner, $ch, array('one ' . $i, 'two ' . $i));
            }
        }
        $this->assertCount(3, $byNode, 'channels on every node');
        $c->close();
        $this->assertLessThan(10, microtime(true) - $start);
    }

    /** The id, data and event of a "comet/1 {json}" payload. */
    private function decoded($payload)
    {
        $this->assertStringStartsWith('comet/1 ', $payload);
        $m = json_decode(substr($payload, 8), true);
        $this->assertIsArray($m, $payload);
        return array($m['id'], $m['data'], $m['event']);
    }

    public function testPublishIsShardedToTheSlotOwner()
    {
        $owner = self::$cluster->nodes[1];
        $other = self::$cluster->nodes[2];
        $ch = $this->channelOn($owner);
        $pubsub = 'comet:{' . $ch . '}';
        // Sharded subscribers on the owner; classic ones on another node and on the owner
        // itself (a PUBLISH would reach both: the cluster bus copies it to every node).
        $sharded = new RedisSubscriber($owner->port, 'SSUBSCRIBE', $pubsub);
        $classicOther = new RedisSubscriber($other->port, 'SUBSCRIBE', $pubsub);
        $classicOwner = new RedisSubscriber($owner->port, 'SUBSCRIBE', $pubsub);
        try {
            $this->assertSame(array(1), array_slice($owner->command(array('PUBSUB', 'SHARDNUMSUB', $pubsub)), 1));
            $calls = array($owner->commandCalls('publish'), $owner->commandCalls('spublish'), $other->commandCalls('spublish'));
            $c = $this->client();
            $this->assertSame(1, $c->publish($ch, 'one', array('event' => 'ev')));
            // A batch, and a NOSCRIPT retried with EVAL: ARGV[6] on every path.
            $this->assertSame('OK', $owner->command(array('SCRIPT', 'FLUSH')));
            $this->assertSame(array(2, 3), $c->publishMany(array(array($ch, 'two'), array($ch, 'three'))));
            $ff = $this->client(array('fire_and_forget' => true));
            $this->assertTrue($ff->publish($ch, 'four'));
            $got = array();
            foreach ($sharded->messages(5.0, 4) as $payload) {
                $got[] = $this->decoded($payload);
            }
            $this->assertSame(array(array(1, 'one', 'ev'), array(2, 'two', ''), array(3, 'three', ''), array(4, 'four', '')), $got,
                'SSUBSCRIBE on the slot owner');
            $this->assertSame(array(), $classicOther->messages(0.3), 'classic SUBSCRIBE on another node');
            $this->assertSame(array(), $classicOwner->messages(0.1), 'classic SUBSCRIBE on the slot owner');
            $this->assertSame(array($calls[0], $calls[1] + 4, $calls[2]),
                array($owner->commandCalls('publish'), $owner->commandCalls('spublish'), $other->commandCalls('spublish')),
                'PUBLISH, SPUBLISH on the owner; SPUBLISH elsewhere');
        } finally {
            $sharded->close();
            $classicOther->close();
            $classicOwner->close();
        }
    }

    public function testSlotMigrationAskThenMoved()
    {
        $from = self::$cluster->nodes[0];
        $to = self::$cluster->nodes[1];
        $ch = $this->channelOn($from);
        $slot = ClusterDriver::slot('comet:{' . $ch . '}:seq');
        $keys = array('comet:{' . $ch . '}:seq', 'comet:{' . $ch . '}:epoch', 'comet:{' . $ch . '}:log');
        $c = $this->client();
        $data = array();
        $publish = function ($text) use ($c, $ch, &$data) {
            $data[] = $text;
            return $c->publish($ch, $text);
        };
        $this->assertSame(1, $publish('before'));
        self::$cluster->startMigration($slot, $from, $to);
        // Keys still on the source: it runs the script itself.
        $this->assertSame(2, $publish('migrating, keys on the source'));
        self::$cluster->moveKeys($keys, $from, $to);
        $this->assertSame('OK', $to->command(array('SCRIPT', 'FLUSH')));
        $asking = $to->commandCalls('asking');
        // Keys gone from the source: ASK, then ASKING + EVALSHA on the target (NOSCRIPT
        // there first: the script is loaded on that node). The map is not changed, so the
        // next publish is asked again.
        $this->assertSame(3, $publish('asked 1'));
        $this->assertSame(4, $publish('asked 2'));
        // 3: ASKING + EVALSHA (NOSCRIPT), SCRIPT LOAD, ASKING + EVALSHA; 4: ASKING + EVALSHA.
        $this->assertSame($asking + 3, $to->commandCalls('asking'), 'each ASK followed by ASKING on the target');
        self::$cluster->finishMigration($slot, $to);
        // The source now answers MOVED: the map is updated, later publishes go straight there.
        $sourceCalls = $from->commandCalls('evalsha');
        $this->assertSame(5, $publish('moved'));
        $this->assertSame($sourceCalls + 1, $from->commandCalls('evalsha'), 'one EVALSHA answered MOVED by the source');
        $this->assertSame(6, $publish('after'));
        $this->assertSame(7, $publish('after 2'));
        $this->assertSame($sourceCalls + 1, $from->commandCalls('evalsha'), 'the moved slot is not asked of the source again');
        $this->assertSame($asking + 3, $to->commandCalls('asking'));
        $this->assertStream($to, $ch, $data);
        $this->assertSame(0, $from->command(array('CLUSTER', 'COUNTKEYSINSLOT', (string) $slot)), 'nothing left on the source');
    }

    public function testTryagainIsRetriedThreeTimesWithinTheTimeout()
    {
        $from = self::$cluster->nodes[1];
        $to = self::$cluster->nodes[2];
        $ch = $this->channelOn($from);
        $slot = ClusterDriver::slot('comet:{' . $ch . '}:seq');
        $keys = array('comet:{' . $ch . '}:seq', 'comet:{' . $ch . '}:epoch', 'comet:{' . $ch . '}:log');
        $c = $this->client(array('timeout' => 1.0));
        $this->assertSame(1, $c->publish($ch, 'a'));
        // Half the channel's keys moved: the source answers TRYAGAIN (a multi-key command
        // during a migration) until the rest follows.
        self::$cluster->startMigration($slot, $from, $to);
        self::$cluster->moveKeys(array($keys[2]), $from, $to);
        $calls = $from->commandCalls('evalsha');
        $start = microtime(true);
        try {
            $c->publish($ch, 'refused');
            $this->fail('published during TRYAGAIN');
        } catch (CometException $e) {
            $this->assertSame(CometException::REDIS, $e->getCode());
            $this->assertStringContainsString('TRYAGAIN', $e->getMessage());
            $this->assertSame(array(null), $e->getResults());
        }
        $this->assertLessThan(1.0, microtime(true) - $start, 'TRYAGAIN retries bounded by the timeout');
        $this->assertSame($calls + 3, $from->commandCalls('evalsha'), '3 tries');
        self::$cluster->moveKeys(array($keys[0], $keys[1]), $from, $to);
        self::$cluster->finishMigration($slot, $to);
        $this->assertSame(2, $c->publish($ch, 'b'));
        $this->assertStream($to, $ch, array('a', 'b'));
    }

    public function testStaleSlotMapFollowsMoved()
    {
        $from = self::$cluster->nodes[2];
        $to = self::$cluster->nodes[0];
        $ch = $this->channelOn($from);
        $other = $this->channelOn($from, true);
        $slot = ClusterDriver::slot('comet:{' . $ch . '}:seq');
        $c = $this->client();
        $this->assertSame(1, $c->publish($ch, 'a'));
        $this->assertSame(1, $c->publish($other, 'x'));
        // Moved behind the client's back (as redis-cli --cluster reshard does).
        $keys = array('comet:{' . $ch . '}:seq', 'comet:{' . $ch . '}:epoch', 'comet:{' . $ch . '}:log');
        self::$cluster->startMigration($slot, $from, $to);
        self::$cluster->moveKeys($keys, $from, $to);
        self::$cluster->finishMigration($slot, $to);
        // A batch mixing the moved slot and another: both published once.
        $this->assertSame(array(2, 2, 3), $c->publishMany(array(array($ch, 'b'), array($other, 'y'), array($ch, 'c'))));
        $this->assertSame(4, $c->publish($ch, 'd'));
        $this->assertStream($to, $ch, array('a', 'b', 'c', 'd'));
        // A fresh client reads the new map.
        $fresh = $this->client();
        $this->assertSame(5, $fresh->publish($ch, 'e'));
    }

    public function testNoscriptLoadsTheScriptOnThatNode()
    {
        $c = $this->client();
        $channels = array();
        foreach (self::$cluster->nodes as $n) {
            $channels[] = $this->channelOn($n);
        }
        foreach ($channels as $ch) {
            $this->assertSame(1, $c->publish($ch, 'x'));
        }
        foreach (self::$cluster->nodes as $n) {
            $this->assertSame('OK', $n->command(array('SCRIPT', 'FLUSH')));
        }
        $batch = array();
        foreach ($channels as $ch) {
            $batch[] = array($ch, 'y');
            $batch[] = array($ch, 'z');
        }
        $this->assertSame(array(2, 3, 2, 3, 2, 3), $c->publishMany($batch));
        foreach (self::$cluster->nodes as $n) {
            $this->assertSame(array(1), $n->command(array('SCRIPT', 'EXISTS', Client::scriptSha())));
        }
    }

    public function testFireAndForget()
    {
        $c = $this->client(array('fire_and_forget' => true));
        $channels = array();
        for ($i = 0; $i < 30; $i++) {
            $channels[] = self::channel('ff' . $i);
        }
        foreach ($channels as $ch) {
            $this->assertTrue($c->publish($ch, 'a'));
        }
        $this->assertSame(array(true, true), $c->publishMany(array(array($channels[0], 'b'), array($channels[1], 'b'))));
        // Then a waited publish on the same connections: they are still in step.
        $this->assertSame(3, $c->publish($channels[0], 'c', array('fire_and_forget' => false)));
        foreach ($channels as $i => $ch) {
            $owner = self::$cluster->ownerOf(ClusterDriver::slot('comet:{' . $ch . '}:seq'));
            $until = microtime(true) + 2;
            $want = $i === 0 ? 3 : ($i === 1 ? 2 : 1);
            while ($owner->command(array('XLEN', 'comet:{' . $ch . '}:log')) !== $want && microtime(true) < $until) {
                usleep(10000);
            }
            $this->assertSame($want, $owner->command(array('XLEN', 'comet:{' . $ch . '}:log')), $ch);
        }
    }

    public function testSeedsAndUnreachableNodes()
    {
        $dead = '127.0.0.1:' . Paths::freePort();
        $live = array();
        foreach (self::$cluster->nodes as $n) {
            $live[] = '127.0.0.1:' . $n->port;
        }
        // A dead seed first: the next one gives the map.
        $c = new Client(array('redis_url' => 'redis+cluster://' . $dead . ',' . $live[1], 'connect_timeout' => 0.3));
        $this->assertSame(1, $c->publish(self::channel('seed'), 'x'));
        // Only dead seeds: CONNECT at once (nothing sent, so the HTTP fallback may be used).
        $c = new Client(array('redis_url' => 'redis+cluster://' . $dead . ',127.0.0.1:' . Paths::freePort(),
            'connect_timeout' => 0.3, 'timeout' => 0.3));
        $start = microtime(true);
        try {
            $c->publish('x', 'y');
            $this->fail('published to a cluster of dead nodes');
        } catch (CometException $e) {
            $this->assertSame(CometException::CONNECT, $e->getCode());
            $this->assertStringContainsString('no Redis Cluster node answered', $e->getMessage());
        }
        $this->assertLessThan(1.0, microtime(true) - $start);
        // A plain Redis named as a cluster: a clear error.
        $plain = new CometTest\RedisServer();
        try {
            $c = new Client(array('redis_url' => 'redis+cluster://127.0.0.1:' . $plain->port));
            try {
                $c->publish('x', 'y');
                $this->fail('published to a Redis that is not a cluster node');
            } catch (CometException $e) {
                $this->assertSame(CometException::REDIS, $e->getCode());
                $this->assertStringContainsString('cluster support disabled', $e->getMessage());
            }
        } finally {
            $plain->destroy();
        }
    }

    public function testNodeRestartedUnderAnIdleConnection()
    {
        $node = self::$cluster->nodes[1];
        $ch = $this->channelOn($node);
        $c = $this->client(array('timeout' => 2.0));
        $this->assertSame(1, $c->publish($ch, 'a'));
        $this->assertSame(2, $c->publish($ch, 'b'));
        // Restarted on its port, it closes the client's connection; it keeps its slots
        // (nodes.conf) but not its data (no persistence in these tests).
        $port = $node->port;
        $node->stop();
        $node->start($port);
        $until = microtime(true) + 10;
        while (strpos((string) $node->command(array('CLUSTER', 'INFO')), 'cluster_state:ok') === false && microtime(true) < $until) {
            usleep(50000);
        }
        // The closed connection is seen before sending: map read again, sent once more.
        $this->assertSame(1, $c->publish($ch, 'c'));
    }

    public function testOtherDriversAreRefused()
    {
        foreach (array('phpredis', 'predis') as $driver) {
            try {
                new Client(array('redis_url' => self::$cluster->url(), 'redis_driver' => $driver));
                $this->fail("$driver accepted for a cluster");
            } catch (CometException $e) {
                $this->assertSame(CometException::CONFIG, $e->getCode());
                $this->assertStringContainsString('redis_driver to socket', $e->getMessage());
            }
        }
        $this->assertFalse(comet_configure(array_merge(self::$plain, array('redis_url' => self::$cluster->url(), 'redis_driver' => 'phpredis'))));
        $this->assertTrue(comet_configure(array_merge(self::$plain, array('redis_url' => self::$cluster->url()))));
        $this->assertSame(1, comet_publish(self::channel('fn'), 'via the functions'));
        comet_configure(array_merge(self::$plain, array('redis_url' => '')));
    }
}
