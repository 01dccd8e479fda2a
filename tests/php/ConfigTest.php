<?php

use Comet\Client;
use Comet\CometException;
use PHPUnit\Framework\TestCase;

/** Options, COMET_* environment defaults, URLs. */
class ConfigTest extends TestCase
{
    private $saved = array();

    private function setEnv($name, $value)
    {
        if (!array_key_exists($name, $this->saved)) {
            $this->saved[$name] = getenv($name);
        }
        putenv($value === null ? $name : "$name=$value");
    }

    protected function tearDown(): void
    {
        foreach ($this->saved as $name => $value) {
            putenv($value === false ? $name : "$name=$value");
        }
        $this->saved = array();
    }

    private function clearEnv()
    {
        foreach (array('REDIS_URL', 'REDIS_HOST', 'REDIS_PORT', 'REDIS_SOCKET', 'REDIS_USER', 'REDIS_PASSWORD', 'REDIS_DB',
                     'REDIS_DRIVER', 'PERSISTENT', 'PUBLISH_URL', 'PUBLISH_KEY', 'SECRET', 'CONNECT_TIMEOUT', 'TIMEOUT',
                     'FIRE_AND_FORGET', 'MAX_MESSAGE_BYTES', 'HISTORY_SIZE', 'REDIS_KEY_TTL') as $n) {
            $this->setEnv("COMET_$n", null);
        }
    }

    public function testDefaults()
    {
        $this->clearEnv();
        $c = new Client();
        $this->assertSame('http', $c->getTransport());
        $o = $c->getOptions();
        $this->assertSame('', $o['publish_url'], 'the default sidecar address is used, not stored');
        // ... and it is the sidecar's publish listener, the one that takes keyless publishes.
        $this->assertSame('http://127.0.0.1:8081', Client::DEFAULT_PUBLISH_URL);
        $target = new ReflectionProperty('Comet\Client', 'httpTarget');
        $target->setAccessible(true);
        $http = $target->getValue($c);
        $this->assertSame(array('tcp://127.0.0.1:8081', '127.0.0.1:8081', ''), array($http['address'], $http['host'], $http['prefix']));
        // With Redis set, no HTTP fallback unless publish_url is given.
        $this->assertNull($target->getValue(new Client(array('redis_url' => 'redis://127.0.0.1:6379'))));
        $this->assertSame(0.5, $o['connect_timeout']);
        $this->assertSame(0.5, $o['timeout']);
        $this->assertSame(65536, $o['max_message_bytes']);
        $this->assertSame(1000, $o['history_size']);
        $this->assertSame(0, $o['key_ttl']);
        $this->assertFalse($o['fire_and_forget']);
        $this->assertFalse($o['persistent']);
        $this->assertSame('auto', $o['redis_driver']);
    }

    public function testEnvironment()
    {
        $this->clearEnv();
        $this->setEnv('COMET_REDIS_URL', 'redis://:pw@127.0.0.1:7001/2');
        $this->setEnv('COMET_PUBLISH_URL', 'http://127.0.0.1:9999');
        $this->setEnv('COMET_PUBLISH_KEY', 'key');
        $this->setEnv('COMET_CONNECT_TIMEOUT', '250ms');
        $this->setEnv('COMET_TIMEOUT', '2');
        $this->setEnv('COMET_FIRE_AND_FORGET', 'yes');
        $this->setEnv('COMET_MAX_MESSAGE_BYTES', '32k');
        $this->setEnv('COMET_REDIS_KEY_TTL', '1h');
        $this->setEnv('COMET_HISTORY_SIZE', '50');
        $c = new Client();
        $this->assertSame('redis+http', $c->getTransport());
        $this->assertSame(0.25, $c->getOption('connect_timeout'));
        $this->assertSame(2.0, $c->getOption('timeout'));
        $this->assertTrue($c->getOption('fire_and_forget'));
        $this->assertSame(32768, $c->getOption('max_message_bytes'));
        $this->assertSame(3600, $c->getOption('key_ttl'));
        $this->assertSame(50, $c->getOption('history_size'));
        $this->assertSame('key', $c->getOption('publish_key'));
        // Options given in code win.
        $c = new Client(array('timeout' => 0.1, 'publish_url' => ''));
        $this->assertSame(0.1, $c->getOption('timeout'));
        $this->assertSame('redis', $c->getTransport());
        // A bad environment value is a configuration error, reported by the functions.
        $this->setEnv('COMET_TIMEOUT', 'soon');
        $this->assertFalse(comet_configure(array()));
        $this->assertStringContainsString('timeout', comet_last_error());
        $this->assertSame(CometException::CONFIG, comet_last_exception()->getCode());
    }

    public function testBadOptions()
    {
        $this->clearEnv();
        $bad = array(
            array('unknown_option' => 1),
            array('timeout' => 0),
            array('timeout' => -1),
            array('connect_timeout' => 'fast'),
            array('redis_driver' => 'memcached'),
            array('redis_url' => 'http://127.0.0.1:6379'),
            array('redis_url' => 'redis://host:99999'),
            array('redis_url' => 'unix://relative.sock'),
            array('publish_url' => 'ftp://x'),
            array('publish_url' => 'not a url'),
            array('max_message_bytes' => '12q'),
            array('max_message_bytes' => 0),
            array('history_size' => 0),
            array('redis_db' => 'two'),
            array('persistent' => 'maybe'),
            array('publish_key' => "a\r\nX-Injected: 1"),
            array('secret' => array('x')),
        );
        foreach ($bad as $options) {
            try {
                new Client($options);
                $this->fail('accepted ' . json_encode($options));
            } catch (CometException $e) {
                $this->assertSame(CometException::CONFIG, $e->getCode(), json_encode($options));
            }
            $this->assertFalse(comet_configure($options), json_encode($options));
            $this->assertNotNull(comet_last_error());
        }
    }

    public function testRedisUrls()
    {
        $cases = array(
            'redis://127.0.0.1:6380' => array('127.0.0.1', 6380, '', '', '', 0),
            'redis://redis.local' => array('redis.local', 6379, '', '', '', 0),
            'redis://:p%40ss@h:1/3' => array('h', 1, '', '', 'p@ss', 3),
            'redis://alice:s3cr%3At@h/0' => array('h', 6379, '', 'alice', 's3cr:t', 0),
            'redis://[::1]:6390/4' => array('::1', 6390, '', '', '', 4),
            'redis://' => array('127.0.0.1', 6379, '', '', '', 0),
            'unix:///run/redis.sock' => array('', 6379, '/run/redis.sock', '', '', 0),
            'unix://:pw@/run/redis.sock?db=5' => array('', 6379, '/run/redis.sock', '', 'pw', 5),
        );
        foreach ($cases as $url => $want) {
            $a = Client::parseRedisUrl($url);
            $this->assertSame($want, array($a['host'], $a['port'], $a['socket'], $a['user'], $a['password'], $a['db']), $url);
        }
    }

    public function testIndividualRedisOptionsOverrideTheUrl()
    {
        $this->clearEnv();
        $this->setEnv('COMET_REDIS_URL', 'redis://:pw@10.1.2.3:7000/1');
        $c = new Client(array('redis_host' => '127.0.0.1', 'redis_db' => 4));
        $this->assertSame('redis', $c->getTransport());
        $r = new ReflectionProperty('Comet\Client', 'redisAddress');
        $r->setAccessible(true);
        $a = $r->getValue($c);
        $this->assertSame(array('127.0.0.1', 7000, 'pw', 4, 'tcp://127.0.0.1:7000'),
            array($a['host'], $a['port'], $a['password'], $a['db'], $a['address']));
    }

    public function testOneFileDefinesEverything()
    {
        // Including comet.php again (another copy, another path) must not redeclare anything.
        $code = 'require ' . var_export(CometTest\Paths::root() . '/php-client/comet.php', true) . ';'
            . 'require ' . var_export(CometTest\Paths::root() . '/php-client/src/Client.php', true) . ';'
            . '$t = sys_get_temp_dir() . "/comet-copy-" . getmypid() . ".php";'
            . 'copy(' . var_export(CometTest\Paths::root() . '/php-client/comet.php', true) . ', $t); require $t; unlink($t);'
            . 'echo function_exists("comet_publish") && class_exists("Comet\\\\CometException", false) ? "ok" : "missing";';
        exec(escapeshellarg(PHP_BINARY) . ' -d error_reporting=-1 -r ' . escapeshellarg($code) . ' 2>&1', $out, $rc);
        $this->assertSame(0, $rc, implode("\n", $out));
        $this->assertSame(array('ok'), $out);
    }
}
