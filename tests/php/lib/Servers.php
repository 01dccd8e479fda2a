<?php
/**
 * Test servers: a real redis-server and the real comet-sidecar, each started on a free
 * loopback port in a temp dir and stopped afterwards. A watchdog shell kills a server if
 * the PHP process dies first (fatal error, CTest timeout), so nothing is left running.
 */

namespace CometTest;

final class Paths
{
    public static function root()
    {
        return realpath(__DIR__ . '/../../..');
    }

    public static function sidecarBin()
    {
        $bin = getenv('COMET_SIDECAR_BIN');
        if ($bin === false || $bin === '') {
            $bin = self::root() . '/build/sidecar/comet-sidecar';
        } elseif ($bin[0] !== '/') {
            $bin = self::root() . '/' . $bin;
        }
        return $bin;
    }

    public static function tempDir($prefix)
    {
        $dir = sys_get_temp_dir() . '/' . $prefix . '-' . getmypid() . '-' . bin2hex(random_bytes(4));
        if (!mkdir($dir, 0700, true)) {
            throw new \RuntimeException("cannot create $dir");
        }
        return $dir;
    }

    public static function removeDir($dir)
    {
        if (!is_dir($dir)) {
            return;
        }
        foreach (scandir($dir) as $f) {
            if ($f === '.' || $f === '..') {
                continue;
            }
            $p = "$dir/$f";
            is_dir($p) && !is_link($p) ? self::removeDir($p) : @unlink($p);
        }
        @rmdir($dir);
    }

    /** A loopback port nobody listens on (bound and released: a small race, retried by callers). */
    public static function freePort()
    {
        $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        if (!$s) {
            throw new \RuntimeException("cannot bind a free port: $errstr");
        }
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    /** The environment for a child: ours without COMET_* (the sidecar rejects unknown ones). */
    public static function childEnv(array $extra = array())
    {
        $env = array();
        foreach (getenv() as $k => $v) {
            if (strncmp($k, 'COMET_', 6) !== 0) {
                $env[$k] = $v;
            }
        }
        return array_merge($env, $extra);
    }
}

/** A child process with stdout/stderr in files and a watchdog. */
class Process
{
    private static $running = array();
    public $pid;
    public $dir;
    public $name;
    private $proc;
    private $watchdog;
    public $stdoutFile;
    public $stderrFile;

    public function __construct(array $command, $dir, $name, array $env)
    {
        $this->dir = $dir;
        $this->name = $name;
        $this->stdoutFile = "$dir/$name.out";
        $this->stderrFile = "$dir/$name.err";
        $spec = array(0 => array('file', '/dev/null', 'r'), 1 => array('file', $this->stdoutFile, 'w'),
            2 => array('file', $this->stderrFile, 'w'));
        $this->proc = proc_open($command, $spec, $pipes, $dir, $env);
        if (!is_resource($this->proc)) {
            throw new \RuntimeException("cannot start $name: " . implode(' ', $command));
        }
        $status = proc_get_status($this->proc);
        $this->pid = $status['pid'];
        $script = 'while kill -0 ' . getmypid() . ' 2>/dev/null && kill -0 ' . $this->pid
            . ' 2>/dev/null; do sleep 0.5; done; kill -9 ' . $this->pid . ' 2>/dev/null';
        $this->watchdog = proc_open(array('/bin/sh', '-c', $script),
            array(0 => array('file', '/dev/null', 'r'), 1 => array('file', '/dev/null', 'w'),
                2 => array('file', '/dev/null', 'w')), $unused);
        self::$running[spl_object_id($this)] = $this;
    }

    public static function stopAll()
    {
        foreach (self::$running as $p) {
            $p->stop();
        }
    }

    public function isRunning()
    {
        if (!is_resource($this->proc)) {
            return false;
        }
        $s = proc_get_status($this->proc);
        return $s['running'];
    }

    public function signal($sig)
    {
        if ($this->isRunning()) {
            posix_kill($this->pid, $sig);
        }
    }

    /** SIGTERM, then SIGKILL after $grace seconds. Returns the exit status text. */
    public function stop($grace = 5.0)
    {
        unset(self::$running[spl_object_id($this)]);
        if (!is_resource($this->proc)) {
            return;
        }
        if ($this->isRunning()) {
            posix_kill($this->pid, SIGCONT);
            proc_terminate($this->proc, SIGTERM);
            $until = microtime(true) + $grace;
            while ($this->isRunning() && microtime(true) < $until) {
                usleep(20000);
            }
            if ($this->isRunning()) {
                proc_terminate($this->proc, SIGKILL);
                while ($this->isRunning()) {
                    usleep(10000);
                }
            }
        }
        proc_close($this->proc);
        $this->proc = null;
        if (is_resource($this->watchdog)) {
            proc_terminate($this->watchdog, SIGKILL);
            proc_close($this->watchdog);
            $this->watchdog = null;
        }
    }

    public function stdout()
    {
        return (string) @file_get_contents($this->stdoutFile);
    }

    public function stderr()
    {
        return (string) @file_get_contents($this->stderrFile);
    }
}

register_shutdown_function(array('CometTest\Process', 'stopAll'));

final class RedisServer
{
    public $port;
    public $dir;
    public $socket;
    /** @var Process */
    public $process;
    private $extra;
    public $password = '';

    /**
     * @param array $extra more redis-server arguments (e.g. array('--requirepass', 'pw'))
     */
    public function __construct(array $extra = array())
    {
        $this->extra = $extra;
        $this->dir = Paths::tempDir('comet-redis');
        $this->socket = $this->dir . '/redis.sock';
        $i = array_search('--requirepass', $extra, true);
        if ($i !== false) {
            $this->password = $extra[$i + 1];
        }
        $this->start();
    }

    public function start($port = null)
    {
        for ($attempt = 0; $attempt < 5; $attempt++) {
            $this->port = $port !== null ? $port : Paths::freePort();
            $cmd = array_merge(array('redis-server', '--port', (string) $this->port, '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--dir', $this->dir, '--unixsocket', $this->socket,
                '--unixsocketperm', '700', '--daemonize', 'no', '--loglevel', 'warning'), $this->extra);
            $this->process = new Process($cmd, $this->dir, 'redis', Paths::childEnv());
            $until = microtime(true) + 10;
            while (microtime(true) < $until && $this->process->isRunning()) {
                try {
                    $pong = $this->command(array('PING'), 0.5);
                    if ($pong === 'PONG' || (is_array($pong) && isset($pong['error']) && strpos($pong['error'], 'NOAUTH') === 0)) {
                        return;
                    }
                } catch (\RuntimeException $e) {
                }
                usleep(20000);
            }
            $this->process->stop();
            if ($port !== null) {
                break;
            }
        }
        throw new \RuntimeException('redis-server did not start: ' . $this->process->stdout() . $this->process->stderr());
    }

    public function url()
    {
        return 'redis://' . ($this->password !== '' ? ':' . rawurlencode($this->password) . '@' : '') . '127.0.0.1:' . $this->port;
    }

    public function stop()
    {
        if ($this->process) {
            $this->process->stop();
        }
    }

    public function destroy()
    {
        $this->stop();
        Paths::removeDir($this->dir);
    }

    /** One command over a fresh connection (AUTH first when a password is set). */
    public function command(array $args, $timeout = 2.0)
    {
        return self::call($this->port, $args, $timeout, $this->password);
    }

    /**
     * One command to the Redis (or sentinel) on a loopback port, over a fresh connection.
     * Error replies come back as array('error' => message).
     */
    public static function call($port, array $args, $timeout = 2.0, $password = '')
    {
        $s = @stream_socket_client('tcp://127.0.0.1:' . $port, $errno, $errstr, $timeout);
        if (!$s) {
            throw new \RuntimeException("redis not reachable: $errstr");
        }
        stream_set_timeout($s, (int) ceil($timeout));
        $payload = '';
        $count = 1;
        if ($password !== '') {
            $payload .= self::encode(array('AUTH', $password));
            $count = 2;
        }
        $payload .= self::encode($args);
        fwrite($s, $payload);
        $reply = null;
        for ($i = 0; $i < $count; $i++) {
            $reply = self::read($s);
        }
        fclose($s);
        return $reply;
    }

    private static function encode(array $args)
    {
        $out = '*' . count($args) . "\r\n";
        foreach ($args as $a) {
            $out .= '$' . strlen((string) $a) . "\r\n" . $a . "\r\n";
        }
        return $out;
    }

    private static function read($s)
    {
        $line = fgets($s);
        if ($line === false) {
            throw new \RuntimeException('redis closed the connection');
        }
        $line = substr($line, 0, -2);
        $rest = substr($line, 1);
        switch ($line[0]) {
            case '+':
                return $rest;
            case '-':
                return array('error' => $rest);
            case ':':
                return (int) $rest;
            case '$':
                if ((int) $rest < 0) {
                    return null;
                }
                $data = '';
                while (strlen($data) < (int) $rest + 2) {
                    $data .= fread($s, (int) $rest + 2 - strlen($data));
                }
                return substr($data, 0, -2);
            case '*':
                $items = array();
                for ($i = 0; $i < (int) $rest; $i++) {
                    $items[] = self::read($s);
                }
                return $items;
        }
        throw new \RuntimeException("bad reply line: $line");
    }

    /** calls of one command from INFO commandstats (e.g. 'evalsha'), with failed/rejected ones */
    public function commandCalls($name)
    {
        $info = $this->command(array('INFO', 'commandstats'));
        if (preg_match('/^cmdstat_' . preg_quote($name, '/') . ':calls=(\d+)(?:.*rejected_calls=(\d+),failed_calls=(\d+))?/m', $info, $m)) {
            // failed_calls are part of calls; rejected_calls are not.
            return (int) $m[1] + (isset($m[2]) ? (int) $m[2] : 0);
        }
        return 0;
    }
}

final class Sidecar
{
    /** The public listener (--listen): subscribers; publishes only with --publish-key. */
    public $port;
    /** @var int|null the publish listener (--publish-listen), once read from stdout */
    private $publishPort = null;
    public $dir;
    /** @var Process */
    public $process;

    /**
     * @param string $redisUrl
     * @param array $extra more flags (e.g. array('--publish-key', 'k')); without a
     *        --publish-listen flag the publish listener gets a free port (the default
     *        8081 would clash between test sidecars)
     */
    public function __construct($redisUrl, array $extra = array())
    {
        $bin = Paths::sidecarBin();
        if (!is_file($bin) || !is_executable($bin)) {
            throw new \RuntimeException("sidecar binary not found: $bin (build it, or set COMET_SIDECAR_BIN)");
        }
        $this->dir = Paths::tempDir('comet-sidecar');
        if (!in_array('--publish-listen', $extra, true)) {
            $extra = array_merge(array('--publish-listen', '127.0.0.1:0'), $extra);
        }
        $cmd = array_merge(array($bin, '--listen', '127.0.0.1:0', '--workers', '2', '--log-level', 'warn',
            '--history-size', '5000'), $redisUrl !== null ? array('--redis', $redisUrl) : array(), $extra);
        $this->process = new Process($cmd, $this->dir, 'sidecar', Paths::childEnv());
        $until = microtime(true) + 20;
        while (microtime(true) < $until) {
            if (preg_match('/^comet-sidecar listening on 127\.0\.0\.1:(\d+)/m', $this->process->stdout(), $m)) {
                $this->port = (int) $m[1];
                break;
            }
            if (!$this->process->isRunning()) {
                break;
            }
            usleep(20000);
        }
        if (!$this->port) {
            $this->process->stop();
            throw new \RuntimeException('sidecar did not start: ' . $this->process->stdout() . $this->process->stderr());
        }
        // With Redis, wait until the bridge is connected (healthz says "ok").
        $until = microtime(true) + 10;
        while ($redisUrl !== null && microtime(true) < $until) {
            $r = Http::request($this->port, 'GET', '/healthz');
            if ($r['status'] === 200 && strpos($r['body'], '"status":"ok"') !== false) {
                break;
            }
            usleep(50000);
        }
    }

    /** The public listener's base URL (subscribe here; publish here only with the key). */
    public function url()
    {
        return 'http://127.0.0.1:' . $this->port;
    }

    /**
     * The publish listener's port, from the line the sidecar prints next to its listening
     * line: "comet-sidecar publish listener on 127.0.0.1:PORT". Read when first needed, so
     * tests that do not publish over HTTP do not depend on it.
     * @return int
     */
    public function publishPort()
    {
        $until = microtime(true) + 10;
        while ($this->publishPort === null) {
            if (preg_match('/^comet-sidecar publish listener on 127\.0\.0\.1:(\d+)/m', $this->process->stdout(), $m)) {
                $this->publishPort = (int) $m[1];
            } elseif (microtime(true) > $until || !$this->process->isRunning()) {
                throw new \RuntimeException('the sidecar printed no "comet-sidecar publish listener on 127.0.0.1:PORT"'
                    . ' line (a binary without --publish-listen?): ' . $this->process->stdout());
            } else {
                usleep(20000);
            }
        }
        return $this->publishPort;
    }

    /** The publish listener's base URL: the one place keyless publishes are accepted. */
    public function publishUrl()
    {
        return 'http://127.0.0.1:' . $this->publishPort();
    }

    /**
     * Stops the sidecar; returns its stderr when it reports a sanitizer problem, else ''.
     */
    public function destroy()
    {
        $this->process->stop();
        $err = $this->process->stderr();
        Paths::removeDir($this->dir);
        if (preg_match('/AddressSanitizer|LeakSanitizer|runtime error:/', $err)) {
            return $err;
        }
        return '';
    }
}

/**
 * PHP's built-in web server (php -S 127.0.0.1:PORT -t DOCROOT), one process, errors shown
 * in the answers. Sessions are files in $sessionDir (by default its own temp dir): two
 * servers given the same one share sessions and their locks, as two PHP-FPM workers do.
 */
final class PhpServer
{
    public $port;
    public $dir;
    public $sessionDir;
    /** @var Process */
    public $process;

    public function __construct($docroot, $sessionDir = null)
    {
        $this->dir = Paths::tempDir('comet-php-s');
        $this->sessionDir = $sessionDir !== null ? $sessionDir : $this->dir;
        for ($attempt = 0; $attempt < 5; $attempt++) {
            $this->port = Paths::freePort();
            $cmd = array(PHP_BINARY, '-d', 'session.save_path=' . $this->sessionDir, '-d', 'error_reporting=-1',
                '-d', 'display_errors=1', '-d', 'log_errors=0', '-S', '127.0.0.1:' . $this->port, '-t', $docroot);
            $this->process = new Process($cmd, $this->dir, 'php-s', Paths::childEnv());
            $until = microtime(true) + 10;
            while (microtime(true) < $until && $this->process->isRunning()) {
                $s = @stream_socket_client('tcp://127.0.0.1:' . $this->port, $errno, $errstr, 0.5);
                if ($s) {
                    fclose($s);
                    return;
                }
                usleep(20000);
            }
            $this->process->stop();  // the port was taken meanwhile: another one
        }
        throw new \RuntimeException('php -S did not start: ' . $this->process->stdout() . $this->process->stderr());
    }

    public function destroy()
    {
        $this->process->stop();
        Paths::removeDir($this->dir);
    }
}

/** Minimal HTTP/1.1 client for the tests (one request per connection). */
final class Http
{
    public static function request($port, $method, $path, $body = '', array $headers = array(), $timeout = 5.0)
    {
        $s = self::send($port, $method, $path, $body, $headers, $timeout);
        return is_resource($s) ? self::receive($s) : $s;
    }

    /**
     * Sends a request without waiting for the answer (receive() reads it), so that a
     * test can have several on their way at once.
     * @return resource|array the connection, or the request() answer for a failed connect
     */
    public static function send($port, $method, $path, $body = '', array $headers = array(), $timeout = 5.0)
    {
        $s = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, $timeout);
        if (!$s) {
            return array('status' => 0, 'headers' => array(), 'body' => $errstr);
        }
        stream_set_timeout($s, (int) ceil($timeout));
        $req = "$method $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nConnection: close\r\n";
        foreach ($headers as $k => $v) {
            $req .= "$k: $v\r\n";
        }
        if ($method === 'POST' || $body !== '') {
            $req .= 'Content-Length: ' . strlen($body) . "\r\n";
        }
        fwrite($s, $req . "\r\n" . $body);
        return $s;
    }

    /** Reads the answer to send() and closes the connection. @return array status, headers (lower-case names), body */
    public static function receive($s)
    {
        $raw = stream_get_contents($s);
        fclose($s);
        $end = strpos($raw, "\r\n\r\n");
        if ($end === false) {
            return array('status' => 0, 'headers' => array(), 'body' => $raw);
        }
        preg_match('#^HTTP/1\.\d (\d+)#', $raw, $m);
        $head = array();
        foreach (array_slice(explode("\r\n", substr($raw, 0, $end)), 1) as $line) {
            $c = strpos($line, ':');
            $head[strtolower(substr($line, 0, $c))] = trim(substr($line, $c + 1));
        }
        $body = substr($raw, $end + 4);
        if (isset($head['transfer-encoding']) && stripos($head['transfer-encoding'], 'chunked') !== false) {
            $out = '';
            while (($eol = strpos($body, "\r\n")) !== false) {
                $n = hexdec(substr($body, 0, $eol));
                if ($n === 0) {
                    break;
                }
                $out .= substr($body, $eol + 2, $n);
                $body = substr($body, $eol + 2 + $n + 2);
            }
            $body = $out;
        }
        return array('status' => isset($m[1]) ? (int) $m[1] : 0, 'headers' => $head, 'body' => $body);
    }

    /**
     * Long-polls /poll from the start of the channel until $count messages arrived.
     * @return array envelopes
     */
    public static function pollAll($port, $channel, $count, $timeout = 20.0)
    {
        $cursor = $channel . '@.0';
        $out = array();
        $until = microtime(true) + $timeout;
        while (count($out) < $count && microtime(true) < $until) {
            $r = self::request($port, 'GET', '/poll?ch=' . rawurlencode($channel) . '&cursor=' . rawurlencode($cursor), '', array(), 10);
            if ($r['status'] !== 200) {
                throw new \RuntimeException('poll failed: ' . $r['status'] . ' ' . $r['body']);
            }
            $j = json_decode($r['body'], true);
            foreach ($j['messages'] as $m) {
                if (isset($m['type'])) {
                    throw new \RuntimeException('unexpected notice: ' . json_encode($m));
                }
                $out[] = $m;
            }
            $cursor = $j['cursor'];
        }
        return $out;
    }
}

/**
 * Reads GET /sse with a raw socket: events as array('cursor' =>, 'id' =>, 'event' =>, 'data' =>).
 */
final class SseReader
{
    private $s;
    private $buf = '';
    private $headersDone = false;
    private $chunked = false;
    private $raw = '';
    public $status = 0;
    public $events = array();
    private $lines = array();
    private $cur = array();

    /** Subscribes from the channel's first message (cursor CH@.0). */
    public function __construct($port, $channel, $fromStart = true)
    {
        $this->s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
        if (!$this->s) {
            throw new \RuntimeException("sse connect: $errstr");
        }
        $q = 'ch=' . rawurlencode($channel) . ($fromStart ? '&cursor=' . rawurlencode($channel . '@.0') : '');
        fwrite($this->s, "GET /sse?$q HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nAccept: text/event-stream\r\n\r\n");
        stream_set_blocking($this->s, false);
    }

    /** Waits for the stream's first id-only event (the subscription exists). */
    public function waitReady($timeout = 5.0)
    {
        $until = microtime(true) + $timeout;
        while (microtime(true) < $until) {
            $this->pump(0.05);
            if ($this->sawIdOnly) {
                return;
            }
        }
        throw new \RuntimeException('SSE stream not ready (status ' . $this->status . ')');
    }

    private $sawIdOnly = false;

    /** Reads until $count data events arrived or $timeout passed; returns all data events. */
    public function collect($count, $timeout = 10.0)
    {
        $until = microtime(true) + $timeout;
        while (count($this->events) < $count && microtime(true) < $until) {
            $this->pump(min(0.2, max(0.001, $until - microtime(true))));
        }
        return $this->events;
    }

    /** Reads for $seconds more (to catch duplicates that should not come). */
    public function linger($seconds)
    {
        $until = microtime(true) + $seconds;
        while (microtime(true) < $until) {
            $this->pump(max(0.001, $until - microtime(true)));
        }
        return $this->events;
    }

    private function pump($wait)
    {
        $r = array($this->s);
        $w = $e = null;
        if (@stream_select($r, $w, $e, 0, (int) ($wait * 1e6)) < 1) {
            return;
        }
        while (($chunk = fread($this->s, 65536)) !== false && $chunk !== '') {
            $this->raw .= $chunk;
        }
        if (!$this->headersDone) {
            $end = strpos($this->raw, "\r\n\r\n");
            if ($end === false) {
                return;
            }
            $head = substr($this->raw, 0, $end);
            preg_match('#^HTTP/1\.\d (\d+)#', $head, $m);
            $this->status = (int) $m[1];
            $this->chunked = stripos($head, "transfer-encoding: chunked") !== false;
            $this->raw = substr($this->raw, $end + 4);
            $this->headersDone = true;
        }
        if ($this->chunked) {
            while (($eol = strpos($this->raw, "\r\n")) !== false) {
                $n = hexdec(substr($this->raw, 0, $eol));
                if (strlen($this->raw) < $eol + 2 + $n + 2) {
                    break;
                }
                $this->buf .= substr($this->raw, $eol + 2, $n);
                $this->raw = substr($this->raw, $eol + 2 + $n + 2);
            }
        } else {
            $this->buf .= $this->raw;
            $this->raw = '';
        }
        while (preg_match('/\r\n|\n|\r(?!$)/', $this->buf, $m, PREG_OFFSET_CAPTURE)) {
            $line = substr($this->buf, 0, $m[0][1]);
            $this->buf = substr($this->buf, $m[0][1] + strlen($m[0][0]));
            $this->line($line);
        }
    }

    private function line($line)
    {
        if ($line === '') {
            if (isset($this->cur['data'])) {
                $cursor = isset($this->cur['id']) ? $this->cur['id'] : '';
                $id = preg_match('/\.(\d+)$/', $cursor, $m) ? (int) $m[1] : null;
                $this->events[] = array('cursor' => $cursor, 'id' => $id,
                    'event' => isset($this->cur['event']) ? $this->cur['event'] : null,
                    'data' => implode("\n", $this->cur['data']));
            } elseif (isset($this->cur['id'])) {
                $this->sawIdOnly = true;
            }
            $this->cur = array();
            return;
        }
        if ($line[0] === ':') {
            return;
        }
        $c = strpos($line, ':');
        $field = $c === false ? $line : substr($line, 0, $c);
        $value = $c === false ? '' : substr($line, $c + 1);
        if ($value !== '' && $value[0] === ' ') {
            $value = substr($value, 1);
        }
        if ($field === 'data') {
            $this->cur['data'][] = $value;
        } else {
            $this->cur[$field] = $value;
        }
    }

    public function close()
    {
        if (is_resource($this->s)) {
            fclose($this->s);
        }
    }
}
