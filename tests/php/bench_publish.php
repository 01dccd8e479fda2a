<?php
/**
 * Publish throughput from PHP (prints numbers; asserts nothing).
 *
 *   php tests/php/bench_publish.php [--messages N] [--payload BYTES] [--subscriber]
 *
 * Starts its own redis-server and the sidecar (COMET_SIDECAR_BIN, default
 * build/sidecar/comet-sidecar) on loopback ports and measures, for each Redis driver
 * present (built-in RESP client, phpredis, Predis):
 *   single      publish() in a loop on one client (one round trip each)
 *   pipelined   publishMany() in batches of 1,000 (one round trip per batch)
 *   ff          publish() in fire-and-forget mode (no wait for the reply)
 *   per-page    new client + publish + close each time, as a PHP page without
 *               persistent connections would do (and with persistent ones)
 * and the HTTP path (POST /pub to the sidecar): single, and batches of 1,000.
 * With --subscriber, an SSE client reads the channel through the sidecar, so every
 * message is also delivered (and the sidecar's work competes for the CPU).
 * COMET_SIDECAR_BIN picks the sidecar build (a sanitizer build is much slower on HTTP).
 */
error_reporting(-1);
require __DIR__ . '/../../php-client/comet.php';
require __DIR__ . '/lib/Servers.php';
if (!class_exists('Predis\Client') && is_file('/usr/share/php/Predis/Autoloader.php')) {
    require_once '/usr/share/php/Predis/Autoloader.php';
    Predis\Autoloader::register();
}

$n = 5000;
$payloadBytes = 100;
$withSubscriber = false;
for ($i = 1; $i < count($argv); $i++) {
    if ($argv[$i] === '--messages' && isset($argv[$i + 1])) {
        $n = max(1000, (int) $argv[++$i]);
    } elseif ($argv[$i] === '--payload' && isset($argv[$i + 1])) {
        $payloadBytes = max(1, (int) $argv[++$i]);
    } elseif ($argv[$i] === '--subscriber') {
        $withSubscriber = true;
    } else {
        fwrite(STDERR, "usage: php bench_publish.php [--messages N] [--payload BYTES] [--subscriber]\n");
        exit(2);
    }
}
$payload = str_repeat('x', $payloadBytes);

$redis = new CometTest\RedisServer();
$sidecar = new CometTest\Sidecar($redis->url());
$sse = null;
if ($withSubscriber) {
    $sse = new CometTest\SseReader($sidecar->port, 'bench', false);
    $sse->waitReady();
}

$results = array();
$run = function ($label, $count, $fn) use (&$results, $sse) {
    $start = microtime(true);
    $fn($count);
    $elapsed = microtime(true) - $start;
    $rate = $count / $elapsed;
    $results[] = array($label, $count, $elapsed, $rate);
    printf("%-34s %7d msgs %8.3f s %10.0f msgs/s\n", $label, $count, $elapsed, $rate);
    if ($sse) {
        $sse->linger(0.01);
    }
};

$load = function_exists('sys_getloadavg') ? sys_getloadavg() : array(0, 0, 0);
printf("PHP %s, payload %d bytes, %s\nsidecar %s, %d CPUs, load average %.2f%s\n\n", PHP_VERSION, $payloadBytes,
    trim(shell_exec('redis-server --version')), CometTest\Paths::sidecarBin(), (int) trim(shell_exec('nproc')), $load[0],
    $withSubscriber ? ', with an SSE subscriber' : '');

$drivers = array('socket');
if (extension_loaded('redis')) {
    $drivers[] = 'phpredis';
}
if (class_exists('Predis\Client')) {
    $drivers[] = 'predis';
}
foreach ($drivers as $driver) {
    $options = array('redis_url' => $redis->url(), 'redis_driver' => $driver, 'timeout' => 5.0);
    $c = new Comet\Client($options);
    $c->publish('bench', $payload);
    $run("redis/$driver single", $n, function ($count) use ($c, $payload) {
        for ($i = 0; $i < $count; $i++) {
            $c->publish('bench', $payload);
        }
    });
    $run("redis/$driver pipelined (x1000)", $n * 4, function ($count) use ($c, $payload) {
        $batch = array_fill(0, 1000, array('bench', $payload));
        for ($i = 0; $i < $count; $i += 1000) {
            $c->publishMany($batch);
        }
    });
    $run("redis/$driver per-page connect", (int) ($n / 5), function ($count) use ($options, $payload) {
        for ($i = 0; $i < $count; $i++) {
            $page = new Comet\Client($options);
            $page->publish('bench', $payload);
            $page->close();
        }
    });
    $run("redis/$driver per-page persistent", (int) ($n / 5), function ($count) use ($options, $payload) {
        for ($i = 0; $i < $count; $i++) {
            $page = new Comet\Client($options + array('persistent' => true));
            $page->publish('bench', $payload);
            $page->close();
        }
    });
    $c->close();
}
$ff = new Comet\Client(array('redis_url' => $redis->url(), 'redis_driver' => 'socket', 'fire_and_forget' => true));
$run('redis/socket fire-and-forget', $n, function ($count) use ($ff, $payload) {
    for ($i = 0; $i < $count; $i++) {
        $ff->publish('bench', $payload);
    }
});
$ff->close();
// Wait until Redis ran everything before timing HTTP.
$redis->command(array('PING'));

$http = new Comet\Client(array('publish_url' => $sidecar->publishUrl(), 'timeout' => 5.0));
$run('http single (POST /pub)', (int) ($n / 2), function ($count) use ($http, $payload) {
    for ($i = 0; $i < $count; $i++) {
        $http->publish('bench', $payload);
    }
});
$run('http pipelined (x1000)', $n, function ($count) use ($http, $payload) {
    $batch = array_fill(0, 1000, array('bench', $payload));
    for ($i = 0; $i < $count; $i += 1000) {
        $http->publishMany($batch);
    }
});

$total = (int) $redis->command(array('GET', 'comet:{bench}:seq'));
if ($sse) {
    $received = count($sse->collect($total, 60));
    printf("\npublished %d, the SSE subscriber received %d\n", $total, $received);
    $sse->close();
}
$problem = $sidecar->destroy();
$redis->destroy();
if ($problem !== '') {
    fwrite(STDERR, "sidecar sanitizer output:\n$problem\n");
}
