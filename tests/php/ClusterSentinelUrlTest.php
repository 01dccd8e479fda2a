<?php

use Comet\Client;
use Comet\CometException;
use PHPUnit\Framework\TestCase;

/** redis+cluster:// and redis+sentinel:// URLs and options (no servers needed). */
class ClusterSentinelUrlTest extends TestCase
{
    /** comet_configure() keeps earlier tests' options: these undo the ones that matter here. */
    private static $plain = array('redis_host' => '', 'redis_port' => 0, 'redis_socket' => '', 'redis_db' => -1, 'redis_driver' => 'auto', 'publish_url' => '', 'fire_and_forget' => false, 'sentinel_password' => '', 'sentinel_user' => '');

    private $saved = array();

    private function setEnv($name, $value)
    {
        if (!array_key_exists($name, $this->saved)) {
            $this->saved[$name] = getenv($name);
        }
        putenv($value === null ? $name : "$name=$value");
    }

    protected function setUp(): void
    {
        foreach (array('REDIS_URL', 'REDIS_HOST', 'REDIS_PORT', 'REDIS_SOCKET', 'REDIS_USER', 'REDIS_PASSWORD', 'REDIS_DB',
                     'REDIS_DRIVER', 'SENTINEL_USER', 'SENTINEL_PASSWORD', 'PUBLISH_URL') as $n) {
            $this->setEnv("COMET_$n", null);
        }
    }

    protected function tearDown(): void
    {
        foreach ($this->saved as $name => $value) {
            putenv($value === false ? $name : "$name=$value");
        }
        $this->saved = array();
        comet_configure(array_merge(self::$plain, array('redis_url' => '')));
    }

    private static function address(Client $c)
    {
        $r = new ReflectionProperty('Comet\Client', 'redisAddress');
        $r->setAccessible(true);
        return $r->getValue($c);
    }

    public function testClusterUrls()
    {
        $cases = array(
            'redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002'
                => array(array(array('10.0.0.1', 7000), array('10.0.0.2', 7001), array('::1', 7002)), '', '', 0),
            'redis+cluster://redis-a:6379' => array(array(array('redis-a', 6379)), '', '', 0),
            'redis+cluster://:p%40ss@h:1' => array(array(array('h', 1)), '', 'p@ss', 0),
            'redis+cluster://alice:s3cr%3At@h:7000,g:7001/0' => array(array(array('h', 7000), array('g', 7001)), 'alice', 's3cr:t', 0),
            'REDIS+CLUSTER://h:7000' => array(array(array('h', 7000)), '', '', 0),
        );
        foreach ($cases as $url => $want) {
            $a = Client::parseRedisUrl($url);
            $this->assertSame('cluster', $a['mode'], $url);
            $this->assertSame($want, array($a['seeds'], $a['user'], $a['password'], $a['db']), $url);
        }
        $c = new Client(array('redis_url' => 'redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001'));
        $this->assertSame('redis', $c->getTransport());
        $a = self::address($c);
        $this->assertSame('redis+cluster://127.0.0.1:7000,127.0.0.1:7001', $a['address'], 'no credentials in the address shown');
        // redis_user / redis_password override the URL's, as for redis://.
        $a = self::address(new Client(array('redis_url' => 'redis+cluster://:pw@h:7000', 'redis_password' => 'other')));
        $this->assertSame('other', $a['password']);
    }

    public function testSentinelUrls()
    {
        $a = Client::parseRedisUrl('redis+sentinel://:data%20pw@s1:26380,s2:26379,[::1]:5000/my%2Dmaster?db=3&sentinel_password=s%26p');
        $this->assertSame('sentinel', $a['mode']);
        $this->assertSame(array(array('s1', 26380), array('s2', 26379), array('::1', 5000)), $a['seeds']);
        $this->assertSame(array('my-master', '', 'data pw', 3, '', 's&p'),
            array($a['master'], $a['user'], $a['password'], $a['db'], $a['sentinel_user'], $a['sentinel_password']));
        $a = Client::parseRedisUrl('redis+sentinel://u:p@s1:26379/m?sentinel_username=su&sentinel_password=sp');
        $this->assertSame(array('u', 'p', 'su', 'sp', 0), array($a['user'], $a['password'], $a['sentinel_user'],
            $a['sentinel_password'], $a['db']));
        // The sentinel_* options (and COMET_SENTINEL_*) override the URL's.
        $this->setEnv('COMET_SENTINEL_PASSWORD', 'from env');
        $a = self::address(new Client(array('redis_url' => 'redis+sentinel://s1:26379/m?sentinel_password=url')));
        $this->assertSame('from env', $a['sentinel_password']);
        $a = self::address(new Client(array('redis_url' => 'redis+sentinel://s1:26379/m', 'sentinel_password' => 'code',
            'sentinel_user' => 'bob', 'redis_db' => 5)));
        $this->assertSame(array('code', 'bob', 5), array($a['sentinel_password'], $a['sentinel_user'], $a['db']));
        $this->assertSame('redis+sentinel://s1:26379/m', $a['address']);
    }

    public function testEnvironmentAndFunctions()
    {
        $this->setEnv('COMET_REDIS_URL', 'redis+sentinel://127.0.0.1:26379/mymaster');
        $c = new Client();
        $this->assertSame('redis', $c->getTransport());
        $a = self::address($c);
        $this->assertSame('sentinel', $a['mode']);
        $this->assertTrue(comet_configure(array_merge(self::$plain, array('redis_url' => 'redis+cluster://127.0.0.1:7000'))));
        $a = self::address(comet_client());
        $this->assertSame('cluster', $a['mode']);
    }

    public function testBadUrlsAreConfigErrors()
    {
        $bad = array(
            'redis+cluster://' => 'no host',
            'redis+cluster://h:0' => 'bad port',
            'redis+cluster://h:70000' => 'bad port',
            'redis+cluster://h:port' => 'bad host:port',
            'redis+cluster://h:7000,,g:7000' => 'bad host:port',
            'redis+cluster://h' => 'the port is required',
            'redis+cluster://h:7000/1' => 'only database 0',
            'redis+cluster://h:7000?db=1' => 'unknown option "db"',
            'redis+cluster:/h' => 'expected redis://',
            'redis+clusters://h' => 'expected redis://',
            'redis+sentinel://s1:26379' => 'no master name',
            'redis+sentinel://s1:26379/' => 'no master name',
            'redis+sentinel://s1/m' => 'the port is required',
            'redis+sentinel://s1:26379/a%2Fb' => 'bad master name',
            'redis+sentinel://s1:26379/a%0Ab' => 'bad master name',
            'redis+sentinel://s1:26379/m?db=x' => 'db must be a number',
            'redis+sentinel://s1:26379/m?sentinel_user=x' => 'unknown option "sentinel_user"',
            'redis+sentinel://:secret@s1:26379/m?foo=1' => 'unknown option "foo" (known: db, sentinel_username, sentinel_password)',
        );
        foreach ($bad as $url => $why) {
            try {
                new Client(array('redis_url' => $url));
                $this->fail('accepted ' . $url);
            } catch (CometException $e) {
                $this->assertSame(CometException::CONFIG, $e->getCode(), $url);
                $this->assertStringContainsString($why, $e->getMessage(), $url);
                $this->assertStringNotContainsString('secret', $e->getMessage(), 'credentials hidden');
            }
            $this->assertFalse(comet_configure(array_merge(self::$plain, array('redis_url' => $url))), $url);
            $this->assertSame(CometException::CONFIG, comet_last_exception()->getCode());
        }
        try {
            Client::parseRedisUrl('redis+sentinel://s1:26379/m?sentinel_password=hunter2&x=1');
            $this->fail('accepted an unknown option');
        } catch (CometException $e) {
            $this->assertStringNotContainsString('hunter2', $e->getMessage(), 'sentinel password hidden');
        }
    }

    public function testBadCombinationsAreConfigErrors()
    {
        $bad = array(
            array(array('redis_url' => 'redis+cluster://h:7000', 'redis_host' => 'other'), 'cannot be combined'),
            array(array('redis_url' => 'redis+cluster://h:7000', 'redis_port' => 7001), 'cannot be combined'),
            array(array('redis_url' => 'redis+sentinel://h:26379/m', 'redis_socket' => '/tmp/r.sock'), 'cannot be combined'),
            array(array('redis_url' => 'redis+cluster://h:7000', 'redis_db' => 2), 'only database 0'),
            array(array('redis_url' => 'redis+cluster://h:7000', 'redis_driver' => 'phpredis'), 'redis_driver to socket'),
            array(array('redis_url' => 'redis+sentinel://h:26379/m', 'redis_driver' => 'predis'), 'redis_driver to socket'),
            array(array('redis_url' => 'redis+sentinel://h:26379/m', 'sentinel_password' => array('x')), 'must be a string'),
        );
        foreach ($bad as $case) {
            try {
                new Client($case[0]);
                $this->fail('accepted ' . json_encode($case[0]));
            } catch (CometException $e) {
                $this->assertSame(CometException::CONFIG, $e->getCode(), json_encode($case[0]));
                $this->assertStringContainsString($case[1], $e->getMessage());
            }
        }
        // The socket driver, and auto, are fine.
        foreach (array('socket', 'auto') as $driver) {
            $this->assertSame('redis', (new Client(array('redis_url' => 'redis+cluster://h:7000', 'redis_driver' => $driver)))->getTransport());
        }
    }
}
