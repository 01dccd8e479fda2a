<?php
// Feeds dashboard.php: publishes the machine's load and memory to the channel
// "dashboard" once a second, with comet_publish(). Run it from the command line, next to
// the sidecar, with the same settings as the web pages (COMET_PUBLISH_URL,
// COMET_REDIS_URL, COMET_PUBLISH_KEY, or config.local.php):
//
//   php deploy/demo-app/dashboard-feed.php                 # until Ctrl-C
//   php deploy/demo-app/dashboard-feed.php --count 10      # 10 samples, then exit
//   php deploy/demo-app/dashboard-feed.php --interval 0.2  # 5 a second
//
// A failed publish (sidecar down) is reported and the feed goes on. Exit status: 0, or
// 1 when every publish failed. Reads /proc on Linux; elsewhere (XAMPP on Windows) it
// publishes what PHP itself knows.
if (PHP_SAPI !== 'cli') {
    http_response_code(404);
    exit;
}
require __DIR__ . '/config.php';

$opts = getopt('', array('count:', 'interval:', 'channel:', 'quiet'));
$count = isset($opts['count']) ? (int) $opts['count'] : 0;   // 0: forever
$interval = isset($opts['interval']) ? (float) $opts['interval'] : 1.0;
$channel = isset($opts['channel']) ? (string) $opts['channel'] : 'dashboard';
$quiet = isset($opts['quiet']);
if ($interval < 0.05) {
    fwrite(STDERR, "--interval: at least 0.05 (seconds)\n");
    exit(2);
}

function feed_sample($seq)
{
    $load = function_exists('sys_getloadavg') ? sys_getloadavg() : false;
    $sample = array(
        'seq' => $seq,
        'host' => php_uname('n'),
        'load' => $load === false ? array(0, 0, 0) : array_map('floatval', $load),
        'mem_total' => 0,
        'mem_used' => 0,
        'php_memory' => memory_get_usage(),
        'at' => round(microtime(true) * 1000),
    );
    $info = @file_get_contents('/proc/meminfo');
    if ($info !== false && preg_match('/^MemTotal:\s+(\d+) kB/m', $info, $t)
        && preg_match('/^MemAvailable:\s+(\d+) kB/m', $info, $a)) {
        $sample['mem_total'] = 1024 * (int) $t[1];
        $sample['mem_used'] = 1024 * ((int) $t[1] - (int) $a[1]);
    }
    return $sample;
}

$sent = 0;
$failed = 0;
$next = microtime(true);
for ($seq = 1; $count === 0 || $seq <= $count; $seq++) {
    $id = comet_publish($channel, feed_sample($seq));
    if ($id === false) {
        $failed++;
        fwrite(STDERR, "dashboard-feed: publish failed: " . comet_last_error() . "\n");
    } else {
        $sent++;
        if (!$quiet) {
            echo "published #$id to $channel\n";
        }
    }
    if ($count !== 0 && $seq === $count) {
        break;
    }
    $next += $interval;
    $wait = $next - microtime(true);
    if ($wait > 0) {
        usleep((int) ($wait * 1e6));
    } else {
        $next = microtime(true);   // fell behind (a slow publish): do not burst
    }
}
exit($sent === 0 && $failed > 0 ? 1 : 0);
