<?php
/**
 * Redis Cluster and Sentinel set-ups for ClusterTest and SentinelTest: real redis-server
 * processes on free loopback ports (RedisServer), stopped by destroy() (and by the
 * watchdogs if the test process dies).
 */

namespace CometTest;

/** A cluster of masters (no replicas), created with redis-cli --cluster create. */
final class RedisCluster
{
    /** @var RedisServer[] */
    public $nodes = array();

    public function __construct($masters = 3)
    {
        try {
            for ($i = 0; $i < $masters; $i++) {
                // The bus port (default port + 10000) may not exist for a high free port.
                $this->nodes[] = new RedisServer(array('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
                    '--cluster-port', (string) Paths::freePort(), '--cluster-node-timeout', '2000'));
            }
            $cmd = array('redis-cli', '--cluster', 'create');
            foreach ($this->nodes as $n) {
                $cmd[] = '127.0.0.1:' . $n->port;
            }
            $cmd = array_merge($cmd, array('--cluster-replicas', '0', '--cluster-yes'));
            $out = self::run($cmd);
            $until = microtime(true) + 15;
            while (!$this->ready()) {
                if (microtime(true) > $until) {
                    throw new \RuntimeException("the cluster did not become ready:\n" . $out);
                }
                usleep(50000);
            }
        } catch (\Exception $e) {
            $this->destroy();
            throw $e;
        }
    }

    /** Every node says cluster_state:ok and knows every slot's owner alike. */
    private function ready()
    {
        $maps = array();
        foreach ($this->nodes as $n) {
            $info = $n->command(array('CLUSTER', 'INFO'));
            if (!is_string($info) || strpos($info, 'cluster_state:ok') === false) {
                return false;
            }
            $maps[] = json_encode($this->slotOwners($n));
        }
        return count(array_unique($maps)) === 1;
    }

    public static function run(array $cmd)
    {
        $line = implode(' ', array_map('escapeshellarg', $cmd)) . ' 2>&1';
        exec($line, $out, $rc);
        if ($rc !== 0) {
            throw new \RuntimeException("$line failed ($rc):\n" . implode("\n", $out));
        }
        return implode("\n", $out);
    }

    /** @return string[] slot ranges "first-last" => port, as a node sees them (CLUSTER SLOTS) */
    public function slotOwners(RedisServer $asked = null)
    {
        $asked = $asked ? $asked : $this->nodes[0];
        $out = array();
        foreach ($asked->command(array('CLUSTER', 'SLOTS')) as $r) {
            $out[$r[0] . '-' . $r[1]] = (int) $r[2][1];
        }
        ksort($out);
        return $out;
    }

    /** @return RedisServer the node owning a slot (per node 0) */
    public function ownerOf($slot)
    {
        foreach ($this->slotOwners() as $range => $port) {
            list($first, $last) = explode('-', $range);
            if ($slot >= (int) $first && $slot <= (int) $last) {
                return $this->byPort($port);
            }
        }
        throw new \RuntimeException("slot $slot has no owner");
    }

    public function byPort($port)
    {
        foreach ($this->nodes as $n) {
            if ($n->port === $port) {
                return $n;
            }
        }
        throw new \RuntimeException("no node on port $port");
    }

    public static function nodeId(RedisServer $n)
    {
        return $n->command(array('CLUSTER', 'MYID'));
    }

    public function url()
    {
        $nodes = array();
        foreach ($this->nodes as $n) {
            $nodes[] = '127.0.0.1:' . $n->port;
        }
        return 'redis+cluster://' . implode(',', $nodes);
    }

    /** First half of a migration: the slot MIGRATING on $from, IMPORTING on $to. */
    public function startMigration($slot, RedisServer $from, RedisServer $to)
    {
        self::ok($to->command(array('CLUSTER', 'SETSLOT', (string) $slot, 'IMPORTING', self::nodeId($from))));
        self::ok($from->command(array('CLUSTER', 'SETSLOT', (string) $slot, 'MIGRATING', self::nodeId($to))));
    }

    /** Moves keys (all of one slot) from $from to $to with MIGRATE. */
    public function moveKeys(array $keys, RedisServer $from, RedisServer $to)
    {
        $reply = $from->command(array_merge(array('MIGRATE', '127.0.0.1', (string) $to->port, '', '0', '5000', 'KEYS'), $keys));
        if ($reply !== 'OK' && $reply !== 'NOKEY') {
            throw new \RuntimeException('MIGRATE: ' . json_encode($reply));
        }
    }

    /** Second half: the slot belongs to $to, on every node. */
    public function finishMigration($slot, RedisServer $to)
    {
        $id = self::nodeId($to);
        self::ok($to->command(array('CLUSTER', 'SETSLOT', (string) $slot, 'NODE', $id)));
        foreach ($this->nodes as $n) {
            if ($n !== $to) {
                self::ok($n->command(array('CLUSTER', 'SETSLOT', (string) $slot, 'NODE', $id)));
            }
        }
    }

    private static function ok($reply)
    {
        if ($reply !== 'OK') {
            throw new \RuntimeException('expected OK, got ' . json_encode($reply));
        }
    }

    public function destroy()
    {
        foreach ($this->nodes as $n) {
            $n->destroy();
        }
        $this->nodes = array();
    }
}

/** A master, its replicas and sentinels watching them (quorum 1, fast failure detection). */
final class RedisSentinelSet
{
    const MASTER_NAME = 'cometmaster';
    /** @var RedisServer */
    public $master;
    /** @var RedisServer[] */
    public $replicas = array();
    /** @var Process[] */
    public $sentinels = array();
    public $sentinelPorts = array();
    public $dir;
    private $sentinelPassword;

    /**
     * @param int $replicas
     * @param int $sentinels
     * @param string $sentinelPassword requirepass of the sentinels ('' for none)
     */
    public function __construct($replicas = 1, $sentinels = 1, $sentinelPassword = '')
    {
        $this->sentinelPassword = $sentinelPassword;
        $this->dir = Paths::tempDir('comet-sentinel');
        try {
            // No 5 s wait before the replica's first (diskless) sync.
            $this->master = new RedisServer(array('--repl-diskless-sync-delay', '0'));
            for ($i = 0; $i < $replicas; $i++) {
                $this->replicas[] = new RedisServer(array('--replicaof', '127.0.0.1', (string) $this->master->port));
            }
            for ($i = 0; $i < $sentinels; $i++) {
                $this->startSentinel($i);
            }
            $until = microtime(true) + 15;
            while (!$this->ready()) {
                if (microtime(true) > $until) {
                    throw new \RuntimeException('the sentinel set-up did not become ready: '
                        . $this->sentinels[0]->stdout() . $this->sentinels[0]->stderr());
                }
                usleep(50000);
            }
        } catch (\Exception $e) {
            $this->destroy();
            throw $e;
        }
    }

    private function startSentinel($i)
    {
        $port = Paths::freePort();
        $conf = $this->dir . "/sentinel$i.conf";
        $name = self::MASTER_NAME;
        $text = "port $port\nbind 127.0.0.1\ndaemonize no\ndir {$this->dir}\nloglevel notice\n"
            . "sentinel monitor $name 127.0.0.1 {$this->master->port} 1\n"
            . "sentinel down-after-milliseconds $name 1500\n"
            . "sentinel failover-timeout $name 3000\n"
            . "sentinel parallel-syncs $name 1\n"
            . ($this->sentinelPassword !== '' ? "requirepass \"{$this->sentinelPassword}\"\n" : '');
        file_put_contents($conf, $text);
        $this->sentinels[$i] = new Process(array('redis-server', $conf, '--sentinel'), $this->dir, "sentinel$i", Paths::childEnv());
        $this->sentinelPorts[$i] = $port;
    }

    /** Replicas in sync and every sentinel knowing the master and its replicas. */
    private function ready()
    {
        foreach ($this->replicas as $r) {
            $info = $r->command(array('INFO', 'replication'));
            if (!is_string($info) || strpos($info, 'master_link_status:up') === false) {
                return false;
            }
        }
        foreach ($this->sentinelPorts as $port) {
            try {
                $replicas = $this->sentinel($port, array('SENTINEL', 'replicas', self::MASTER_NAME));
            } catch (\RuntimeException $e) {
                return false;
            }
            if (!is_array($replicas) || isset($replicas['error']) || count($replicas) < count($this->replicas)) {
                return false;
            }
        }
        return true;
    }

    public function sentinel($port, array $args)
    {
        return RedisServer::call($port, $args, 2.0, $this->sentinelPassword);
    }

    /** @return int the port sentinel $i names as the master's */
    public function masterPortSeen($i = 0)
    {
        $r = $this->sentinel($this->sentinelPorts[$i], array('SENTINEL', 'get-master-addr-by-name', self::MASTER_NAME));
        return is_array($r) && isset($r[1]) ? (int) $r[1] : 0;
    }

    /**
     * @param string $userinfo "user:password@" part, or ''
     * @param string $query "?..." or ''
     */
    public function url($userinfo = '', $query = '')
    {
        $nodes = array();
        foreach ($this->sentinelPorts as $p) {
            $nodes[] = '127.0.0.1:' . $p;
        }
        return 'redis+sentinel://' . $userinfo . implode(',', $nodes) . '/' . self::MASTER_NAME . $query;
    }

    /** @return string ROLE's first word for a data node */
    public static function role(RedisServer $n)
    {
        try {
            $r = $n->command(array('ROLE'));
        } catch (\RuntimeException $e) {
            return 'unreachable';   // e.g. a sentinel killing its clients while reconfiguring it
        }
        return is_array($r) && isset($r[0]) && is_string($r[0]) ? $r[0] : json_encode($r);
    }

    public function destroy()
    {
        foreach ($this->sentinels as $s) {
            $s->stop();
        }
        $this->sentinels = array();
        foreach ($this->replicas as $r) {
            $r->destroy();
        }
        $this->replicas = array();
        if ($this->master) {
            $this->master->destroy();
            $this->master = null;
        }
        if ($this->dir) {
            Paths::removeDir($this->dir);
            $this->dir = null;
        }
    }
}

/**
 * A raw pub/sub connection to one Redis node: SUBSCRIBE (classic) or SSUBSCRIBE (sharded)
 * to one channel, then the messages it is sent, to check which kind of publish a
 * publisher made and where it went.
 */
final class RedisSubscriber
{
    public $port;
    public $kind;
    private $s;
    private $buf = '';

    /**
     * @param int $port a loopback Redis
     * @param string $verb 'SUBSCRIBE' or 'SSUBSCRIBE'
     * @param string $channel the pub/sub channel (e.g. comet:{news})
     */
    public function __construct($port, $verb, $channel)
    {
        $this->port = $port;
        $this->kind = strtolower($verb);
        $this->s = @stream_socket_client('tcp://127.0.0.1:' . $port, $errno, $errstr, 2.0);
        if (!$this->s) {
            throw new \RuntimeException("redis on $port not reachable: $errstr");
        }
        stream_set_blocking($this->s, false);
        fwrite($this->s, '*2' . "\r\n" . '$' . strlen($verb) . "\r\n" . $verb . "\r\n"
            . '$' . strlen($channel) . "\r\n" . $channel . "\r\n");
        $confirm = $this->next(2.0);
        if (!is_array($confirm) || !isset($confirm[0]) || $confirm[0] !== $this->kind || $confirm[1] !== $channel) {
            throw new \RuntimeException("$verb $channel on $port: " . json_encode($confirm));
        }
    }

    /**
     * The payloads of the messages received within $seconds (all of them; stops early once
     * $count arrived).
     * @return string[]
     */
    public function messages($seconds, $count = PHP_INT_MAX)
    {
        $want = $this->kind === 'ssubscribe' ? 'smessage' : 'message';
        $until = microtime(true) + $seconds;
        $out = array();
        while (count($out) < $count) {
            $left = $until - microtime(true);
            if ($left <= 0) {
                break;
            }
            $m = $this->next($left);
            if ($m === null) {
                break;
            }
            if (!is_array($m) || count($m) !== 3 || $m[0] !== $want) {
                throw new \RuntimeException("unexpected push on {$this->port}: " . json_encode($m));
            }
            $out[] = $m[2];
        }
        return $out;
    }

    /** One RESP2 value, or null if none arrived in time. */
    private function next($timeout)
    {
        $until = microtime(true) + $timeout;
        while (true) {
            $pos = 0;
            $v = self::parse($this->buf, $pos);
            if ($v !== false) {
                $this->buf = (string) substr($this->buf, $pos);
                return $v;
            }
            $left = $until - microtime(true);
            if ($left <= 0) {
                return null;
            }
            $r = array($this->s);
            $w = null;
            $e = null;
            if (@stream_select($r, $w, $e, 0, (int) ($left * 1000000)) > 0) {
                $chunk = fread($this->s, 65536);
                if ($chunk === '' || $chunk === false) {
                    if (feof($this->s)) {
                        throw new \RuntimeException("redis on {$this->port} closed the subscription");
                    }
                    continue;
                }
                $this->buf .= $chunk;
            }
        }
    }

    /** @return mixed the value at $pos (advanced past it), false when incomplete */
    private static function parse($buf, &$pos)
    {
        $eol = strpos($buf, "\r\n", $pos);
        if ($eol === false) {
            return false;
        }
        $type = $buf[$pos];
        $rest = substr($buf, $pos + 1, $eol - $pos - 1);
        $p = $eol + 2;
        switch ($type) {
            case '+':
            case '-':
                $pos = $p;
                return $type === '-' ? array('error' => $rest) : $rest;
            case ':':
                $pos = $p;
                return (int) $rest;
            case '$':
                $n = (int) $rest;
                if ($n < 0) {
                    $pos = $p;
                    return null;
                }
                if (strlen($buf) < $p + $n + 2) {
                    return false;
                }
                $pos = $p + $n + 2;
                return substr($buf, $p, $n);
            case '*':
                $items = array();
                for ($i = 0; $i < (int) $rest; $i++) {
                    $v = self::parse($buf, $p);
                    if ($v === false) {
                        return false;
                    }
                    $items[] = $v;
                }
                $pos = $p;
                return $items;
        }
        throw new \RuntimeException('bad reply: ' . json_encode(substr($buf, $pos, 80)));
    }

    public function close()
    {
        if ($this->s) {
            fclose($this->s);
            $this->s = null;
        }
    }
}
