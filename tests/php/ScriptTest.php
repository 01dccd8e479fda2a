<?php

use Comet\Client;
use CometTest\CometTestCase;
use CometTest\Paths;

/**
 * The shared Lua script: the embedded copy is bridge/lua/publish.lua byte for byte (and the
 * generator keeps it so), EVALSHA falls back to EVAL on NOSCRIPT, and the options that
 * reach the script (history length, key TTL) take effect. Redis only, so the command
 * statistics count this client alone.
 */
class ScriptTest extends CometTestCase
{
    protected static $withSidecar = false;

    public function testEmbeddedScriptIsTheBridgeFile()
    {
        $file = Paths::root() . '/bridge/lua/publish.lua';
        $this->assertFileExists($file);
        $this->assertSame(file_get_contents($file), Client::PUBLISH_SCRIPT,
            'php-client/comet.php embeds a different publish.lua: run php php-client/tools/embed-script.php');
        $this->assertSame(sha1_file($file), Client::scriptSha());
    }

    public function testGeneratorCheckAndRewrite()
    {
        $tool = Paths::root() . '/php-client/tools/embed-script.php';
        exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg($tool) . ' --check 2>&1', $out, $rc);
        $this->assertSame(0, $rc, implode("\n", $out));

        $dir = Paths::tempDir('comet-embed');
        try {
            copy(Paths::root() . '/php-client/comet.php', "$dir/comet.php");
            $lua = "-- changed\nreturn { 1, 'e', 0 }\n";
            file_put_contents("$dir/publish.lua", $lua);
            $args = ' --script ' . escapeshellarg("$dir/publish.lua") . ' --target ' . escapeshellarg("$dir/comet.php");
            exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg($tool) . ' --check' . $args . ' 2>&1', $out, $rc);
            $this->assertSame(1, $rc, 'the check must fail while the copies differ');
            exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg($tool) . $args . ' 2>&1', $out, $rc);
            $this->assertSame(0, $rc);
            exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg($tool) . ' --check' . $args . ' 2>&1', $out, $rc);
            $this->assertSame(0, $rc);
            $embedded = shell_exec(escapeshellarg(PHP_BINARY) . ' -r ' . escapeshellarg(
                'require ' . var_export("$dir/comet.php", true) . '; echo base64_encode(Comet\Client::PUBLISH_SCRIPT);'));
            $this->assertSame($lua, base64_decode($embedded));
            // Only the block between the markers changed.
            $before = file_get_contents(Paths::root() . '/php-client/comet.php');
            $after = file_get_contents("$dir/comet.php");
            $cut = function ($s) {
                return preg_replace('#// @generated-begin publish.lua.*// @generated-end publish.lua#s', '', $s);
            };
            $this->assertSame($cut($before), $cut($after));
            // A script line that would end the nowdoc is refused.
            file_put_contents("$dir/publish.lua", "COMET_PUBLISH_LUA;\n");
            exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg($tool) . $args . ' 2>&1', $out, $rc);
            $this->assertSame(2, $rc);
        } finally {
            Paths::removeDir($dir);
        }
    }

    /** @dataProvider drivers */
    public function testNoscriptFallsBackToEval($driver)
    {
        $this->requireDriver($driver);
        $redis = static::$redis;
        $ch = self::channel('noscript');
        $c = $this->client(array('redis_driver' => $driver));
        $this->assertSame('OK', $redis->command(array('SCRIPT', 'FLUSH')));
        $this->assertSame(array(0), $redis->command(array('SCRIPT', 'EXISTS', Client::scriptSha())));
        $evalsha = $redis->commandCalls('evalsha');
        $eval = $redis->commandCalls('eval');

        $this->assertSame(1, $c->publish($ch, 'after flush'));
        $this->assertSame($evalsha + 1, $redis->commandCalls('evalsha'), 'EVALSHA tried first');
        $this->assertSame($eval + 1, $redis->commandCalls('eval'), 'then EVAL');
        $this->assertSame(array(1), $redis->command(array('SCRIPT', 'EXISTS', Client::scriptSha())));

        $this->assertSame(2, $c->publish($ch, 'cached'));
        $this->assertSame($evalsha + 2, $redis->commandCalls('evalsha'));
        $this->assertSame($eval + 1, $redis->commandCalls('eval'), 'no EVAL once the script is cached');

        // A batch after a flush: one EVAL loads the script, the rest are retried with EVALSHA.
        $redis->command(array('SCRIPT', 'FLUSH'));
        $batch = array();
        for ($i = 3; $i <= 12; $i++) {
            $batch[] = array($ch, "b$i");
        }
        $this->assertSame(range(3, 12), $c->publishMany($batch));
        $this->assertSame($eval + 2, $redis->commandCalls('eval'));
        $this->assertSame($evalsha + 2 + 10 + 9, $redis->commandCalls('evalsha'));
        $entries = $redis->command(array('XRANGE', "comet:{{$ch}}:log", '-', '+'));
        $this->assertCount(12, $entries);
        $this->assertSame('12-0', $entries[11][0]);
        $fields = $entries[11][1];
        $this->assertSame('b12', $fields[array_search('data', $fields, true) + 1]);
    }

    /** @dataProvider drivers */
    public function testHistorySizeAndKeyTtlReachTheScript($driver)
    {
        $this->requireDriver($driver);
        $redis = static::$redis;
        $ch = self::channel('ttl');
        $c = $this->client(array('redis_driver' => $driver, 'key_ttl' => '1h', 'history_size' => 10));
        $batch = array_fill(0, 500, array($ch, 'x'));
        $c->publishMany($batch);
        $ttl = $redis->command(array('TTL', "comet:{{$ch}}:seq"));
        $this->assertGreaterThan(3500, $ttl);
        $this->assertLessThanOrEqual(3600, $ttl);
        $this->assertGreaterThan(3500, $redis->command(array('TTL', "comet:{{$ch}}:log")));
        $this->assertLessThan(200, $redis->command(array('XLEN', "comet:{{$ch}}:log")), 'MAXLEN ~ 10 trims the stream');
        // Without a TTL the keys do not expire.
        $ch2 = self::channel('nottl');
        $this->client(array('redis_driver' => $driver))->publish($ch2, 'x');
        $this->assertSame(-1, $redis->command(array('TTL', "comet:{{$ch2}}:seq")));
    }

    public function testPubSubPayloadIsTheSidecarFormat()
    {
        // Subscribe with a raw connection and check what the sidecar would receive.
        $ch = self::channel('payload');
        $s = stream_socket_client('tcp://127.0.0.1:' . static::$redis->port);
        fwrite($s, "*2\r\n$9\r\nSUBSCRIBE\r\n$" . strlen("comet:{{$ch}}") . "\r\ncomet:{{$ch}}\r\n");
        stream_set_timeout($s, 2);
        $got = '';
        while (substr_count($got, "\r\n") < 6) {
            $got .= fread($s, 8192);
        }
        $this->assertSame(1, $this->client()->publish($ch, 'hé "q"', 'ev'));
        $msg = '';
        while (strpos($msg, '"ts":') === false || substr($msg, -2) !== "\r\n") {
            $msg .= fread($s, 8192);
        }
        fclose($s);
        $this->assertMatchesRegularExpression('/comet\/1 \{.*\}/', $msg);
        preg_match('/comet\/1 (\{.*\})/', $msg, $m);
        $payload = json_decode($m[1], true);
        $this->assertSame(1, $payload['id']);
        $this->assertSame(0, $payload['prev']);
        $this->assertSame('ev', $payload['event']);
        $this->assertSame('hé "q"', $payload['data']);
    }
}
