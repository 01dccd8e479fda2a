<?php

namespace Comet;

if (!class_exists('Comet\ClusterDriver', false)) {

/**
 * Redis Cluster (redis+cluster://) over the built-in client: one SocketDriver per node,
 * each command sent to the master owning its key's slot.
 *
 * * The slot map comes from CLUSTER SHARDS (Redis 7), else CLUSTER SLOTS, asked of the
 *   seeds in order on first use; it lives as long as this driver (the client).
 * * MOVED: the slot is recorded as the new owner's and the command sent there. ASK: sent
 *   once to the named node after ASKING, the map unchanged. TRYAGAIN, CLUSTERDOWN: sent
 *   again after a short pause, at most 3 tries within `timeout`. NOSCRIPT: SCRIPT LOAD
 *   on that node, then sent again. None of these ran the command, so nothing is
 *   published twice.
 * * A node that cannot be connected to (or closed an idle connection): the map is asked
 *   again of another node, and the commands meant for it are sent once more. A connection
 *   lost or a timeout after sending is reported (TIMEOUT, IO): the command may have run.
 * @internal
 */
class ClusterDriver
{
    const SLOTS = 16384;
    const MAX_REDIRECTS = 16;
    const BUSY_TRIES = 3;

    private $address;
    private $options;
    /** @var array "host:port" => SocketDriver */
    private $nodes = array();
    /** @var array|null sorted list of array(first slot, last slot, "host:port") */
    private $ranges = null;
    /** @var array slot => "host:port", learned from MOVED since the map was read */
    private $moved = array();
    /** @var array "host:port" => array(host, port): every node heard of, seeds first */
    private $known = array();
    private static $crcTable = null;

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
        foreach ($address['seeds'] as $seed) {
            $this->known[Targets::hostPort($seed[0], $seed[1])] = array($seed[0], $seed[1]);
        }
    }

    /**
     * The hash slot of a key: CRC16 (XMODEM) of its hash tag (the part between the first
     * { and the next }, when not empty) or of the whole key, modulo 16384.
     * @param string $key
     * @return int
     */
    public static function slot($key)
    {
        $key = (string) $key;
        $open = Bytes::pos($key, '{');
        if ($open !== false) {
            $close = Bytes::pos($key, '}', $open + 1);
            if ($close !== false && $close > $open + 1) {
                $key = Bytes::sub($key, $open + 1, $close - $open - 1);
            }
        }
        return self::crc16($key) % self::SLOTS;
    }

    /**
     * CRC16-XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster uses.
     * @param string $s
     * @return int
     */
    public static function crc16($s)
    {
        if (self::$crcTable === null) {
            $table = array();
            for ($i = 0; $i < 256; $i++) {
                $c = $i << 8;
                for ($b = 0; $b < 8; $b++) {
                    $c = ($c & 0x8000) ? (($c << 1) ^ 0x1021) : ($c << 1);
                }
                $table[$i] = $c & 0xFFFF;
            }
            self::$crcTable = $table;
        }
        $crc = 0;
        $n = Bytes::len($s);
        for ($i = 0; $i < $n; $i++) {
            $crc = (($crc << 8) & 0xFFFF) ^ self::$crcTable[(($crc >> 8) ^ ord($s[$i])) & 0xFF];
        }
        return $crc;
    }

    /**
     * The key a command is routed by: the first key of EVAL/EVALSHA, else the first argument.
     * @return string|null null for a command without a key
     */
    private static function keyOf(array $args)
    {
        $verb = strtoupper((string) $args[0]);
        if ($verb === 'EVAL' || $verb === 'EVALSHA' || $verb === 'EVAL_RO' || $verb === 'EVALSHA_RO') {
            return isset($args[2], $args[3]) && (int) $args[2] > 0 ? (string) $args[3] : null;
        }
        if ($verb === 'CLIENT' || $verb === 'ASKING' || $verb === 'PING' || $verb === 'ECHO') {
            return null;
        }
        return isset($args[1]) ? (string) $args[1] : null;
    }

    /**
     * Runs commands, each on its slot's master (a batch: one pipeline per node).
     * @param array $commands arrays of arguments; without replies, a keyless command (CLIENT
     *        REPLY SKIP) goes with the command after it
     * @param bool $wantReplies
     * @return array replies in the order of $commands (errors other than redirections as RedisError)
     * @throws CometException CONNECT (no node reachable, nothing sent), TIMEOUT / IO (a node
     *         stopped answering: getResults() has the replies known, by command index)
     */
    public function execute(array $commands, $wantReplies)
    {
        $deadline = microtime(true) + $this->options['timeout'];
        if ($this->ranges === null) {
            $this->refreshMap(null);
        }
        // Units: a keyed command with the keyless ones before it.
        $units = array();
        $prefix = array();
        foreach (array_values($commands) as $i => $args) {
            $key = self::keyOf($args);
            if ($key === null && !$wantReplies) {
                $prefix[] = $args;
                continue;
            }
            $units[$i] = array('cmds' => array_merge($prefix, array($args)),
                'slot' => $key === null ? 0 : self::slot($key), 'ask' => null, 'busy' => 0, 'redirects' => 0,
                'loaded' => array());
            $prefix = array();
        }
        $replies = array();
        $pending = array_keys($units);
        $reconnected = false;
        while ($pending) {
            $groups = array();
            foreach ($pending as $i) {
                $node = $units[$i]['ask'] !== null ? $units[$i]['ask'] : $this->ownerOf($units[$i]['slot']);
                $groups[$node][] = $i;
            }
            $next = array();
            $load = array();
            $busy = 0;
            foreach ($groups as $node => $group) {
                $send = array();
                foreach ($group as $i) {
                    if ($units[$i]['ask'] !== null) {
                        $send[] = array('ASKING');
                    }
                    foreach ($units[$i]['cmds'] as $args) {
                        $send[] = $args;
                    }
                }
                try {
                    $got = $this->node($node)->execute($send, $wantReplies);
                } catch (CometException $e) {
                    if ($e->getCode() === CometException::CONNECT && !$reconnected) {
                        // Nothing was sent: ask another node for the map, then send again.
                        $reconnected = true;
                        $this->dropNode($node);
                        try {
                            $this->refreshMap($node);
                        } catch (CometException $again) {
                            throw $this->failure($again, $replies);
                        }
                        foreach ($group as $i) {
                            $units[$i]['ask'] = null;
                            $next[] = $i;
                        }
                        continue;
                    }
                    if ($e->getCode() !== CometException::REDIS) {
                        $this->dropNode($node);
                    }
                    throw $this->failure($e, $replies);
                }
                if (!$wantReplies) {
                    continue;
                }
                $n = 0;
                foreach ($group as $i) {
                    if ($units[$i]['ask'] !== null) {
                        $n++;   // ASKING's +OK
                    }
                    $reply = $got[$n++];
                    $asked = $units[$i]['ask'];
                    $units[$i]['ask'] = null;
                    if (!($reply instanceof RedisError)) {
                        $replies[$i] = $reply;
                        continue;
                    }
                    $words = explode(' ', $reply->message);
                    $kind = $words[0];
                    if (($kind === 'MOVED' || $kind === 'ASK') && count($words) >= 3
                        && ++$units[$i]['redirects'] <= self::MAX_REDIRECTS) {
                        $target = $this->learn($words[2], $node);
                        if ($kind === 'MOVED') {
                            $this->moved[(int) $words[1]] = $target;
                        } else {
                            $units[$i]['ask'] = $target;
                        }
                        $next[] = $i;
                    } elseif (($kind === 'TRYAGAIN' || $kind === 'CLUSTERDOWN')
                        && ++$units[$i]['busy'] < self::BUSY_TRIES && microtime(true) < $deadline) {
                        $busy = max($busy, $units[$i]['busy']);
                        $next[] = $i;
                    } elseif ($kind === 'NOSCRIPT' && !isset($units[$i]['loaded'][$node])) {
                        $units[$i]['loaded'][$node] = true;
                        $units[$i]['ask'] = $asked;
                        $load[$node] = true;
                        $next[] = $i;
                    } else {
                        $replies[$i] = $reply;
                    }
                }
            }
            foreach (array_keys($load) as $node) {
                // Not in this node's script cache (a new node, a restart, SCRIPT FLUSH).
                try {
                    $got = $this->node($node)->execute(array(array('SCRIPT', 'LOAD', PublishScript::LUA)), true);
                } catch (CometException $e) {
                    if ($e->getCode() !== CometException::REDIS) {
                        $this->dropNode($node);
                    }
                    throw $this->failure($e, $replies);
                }
                if ($got[0] instanceof RedisError) {
                    throw $this->failure(new CometException('Redis SCRIPT LOAD failed on ' . $node . ': '
                        . $got[0]->message, CometException::REDIS), $replies);
                }
            }
            if ($busy) {
                // A slot being migrated (TRYAGAIN) or the cluster failing over (CLUSTERDOWN).
                // 25 ms, then 50 ms, never past half the time left.
                $left = $deadline - microtime(true);
                usleep((int) (max(0.0, min($left / 2, 0.025 * $busy)) * 1000000));
            }
            $pending = $next;
        }
        if (!$wantReplies) {
            return array();
        }
        ksort($replies);
        return array_values($replies);
    }

    /** A failure with the replies known so far (by command index) as its results. */
    private function failure(CometException $e, array $replies)
    {
        return new CometException($e->getMessage(), $e->getCode(), $e, $replies);
    }

    /** The node owning a slot: from MOVED, else the map; a slot nobody serves goes to a seed. */
    private function ownerOf($slot)
    {
        if (isset($this->moved[$slot])) {
            return $this->moved[$slot];
        }
        $lo = 0;
        $hi = count($this->ranges) - 1;
        while ($lo <= $hi) {
            $mid = ($lo + $hi) >> 1;
            $r = $this->ranges[$mid];
            if ($slot < $r[0]) {
                $hi = $mid - 1;
            } elseif ($slot > $r[1]) {
                $lo = $mid + 1;
            } else {
                return $r[2];
            }
        }
        reset($this->known);
        return key($this->known);
    }

    /** "host:port" from a redirection (an empty host: the node that answered) -> node key. */
    private function learn($endpoint, $from)
    {
        $colon = strrpos($endpoint, ':');
        $host = (string) substr($endpoint, 0, (int) $colon);
        $port = (int) substr($endpoint, (int) $colon + 1);
        if ($colon === false || $host === '' || $host === '?') {
            $host = $this->known[$from][0];
        }
        $host = trim($host, '[]');
        $key = Targets::hostPort($host, $port);
        if (!isset($this->known[$key])) {
            $this->known[$key] = array($host, $port);
        }
        return $key;
    }

    /** @return SocketDriver the connection to a node (opened when it is used) */
    private function node($key)
    {
        if (!isset($this->nodes[$key])) {
            $hp = $this->known[$key];
            $this->nodes[$key] = new SocketDriver(Targets::nodeAddress($this->address, $hp[0], $hp[1]), $this->options);
        }
        return $this->nodes[$key];
    }

    private function dropNode($key)
    {
        if (isset($this->nodes[$key])) {
            $this->nodes[$key]->close(true);
            unset($this->nodes[$key]);
        }
    }

    /**
     * Reads the slot map from the first node that answers: the seeds in order, then every
     * other node heard of; $skip (a node that just failed) last.
     * @param string|null $skip
     * @throws CometException CONNECT when no node could be reached, REDIS when none gave a map
     */
    private function refreshMap($skip)
    {
        $order = array();
        foreach (array_keys($this->known) as $key) {
            if ($key !== $skip) {
                $order[] = $key;
            }
        }
        if ($skip !== null) {
            $order[] = $skip;
        }
        $errors = array();
        $connectOnly = true;
        foreach ($order as $key) {
            try {
                $ranges = $this->readMap($key);
            } catch (CometException $e) {
                $this->dropNode($key);
                $errors[] = $e->getMessage();
                if ($e->getCode() !== CometException::CONNECT) {
                    $connectOnly = false;
                }
                continue;
            }
            $this->ranges = $ranges;
            $this->moved = array();
            return;
        }
        throw new CometException('no Redis Cluster node answered with the slot map (' . $this->address['address'] . '): '
            . implode('; ', $errors), $connectOnly ? CometException::CONNECT : CometException::REDIS);
    }

    /** CLUSTER SHARDS (Redis 7), else CLUSTER SLOTS, of one node, as sorted ranges. */
    private function readMap($key)
    {
        $driver = $this->node($key);
        $reply = $driver->execute(array(array('CLUSTER', 'SHARDS')), true);
        $reply = $reply[0];
        $ranges = array();
        $host = $this->known[$key][0];
        if ($reply instanceof RedisError && preg_match('/unknown (sub)?command|wrong number/i', $reply->message)) {
            $reply = $driver->execute(array(array('CLUSTER', 'SLOTS')), true);
            $reply = $reply[0];
            if (is_array($reply)) {
                foreach ($reply as $entry) {
                    if (is_array($entry) && count($entry) >= 3 && is_array($entry[2]) && count($entry[2]) >= 2) {
                        $ranges[] = array((int) $entry[0], (int) $entry[1],
                            $this->nodeKey((string) $entry[2][0], (int) $entry[2][1], $host));
                    }
                }
            }
        } elseif (is_array($reply)) {
            foreach ($reply as $shard) {
                $shard = self::pairs($shard);
                if (!isset($shard['slots'], $shard['nodes']) || !is_array($shard['slots']) || !is_array($shard['nodes'])) {
                    continue;
                }
                $master = null;
                foreach ($shard['nodes'] as $n) {
                    $n = self::pairs($n);
                    if (isset($n['role']) && $n['role'] === 'master'
                        && ($master === null || (isset($n['health']) && $n['health'] === 'online'))) {
                        $master = $n;
                    }
                }
                if ($master === null) {
                    continue;
                }
                $endpoint = isset($master['endpoint']) ? (string) $master['endpoint'] : '';
                if ($endpoint === '' || $endpoint === '?') {
                    $endpoint = isset($master['ip']) ? (string) $master['ip'] : '';
                }
                $port = isset($master['port']) ? (int) $master['port'] : (isset($master['tls-port']) ? (int) $master['tls-port'] : 0);
                $node = $this->nodeKey($endpoint, $port, $host);
                for ($j = 0; $j + 1 < count($shard['slots']); $j += 2) {
                    $ranges[] = array((int) $shard['slots'][$j], (int) $shard['slots'][$j + 1], $node);
                }
            }
        }
        if ($reply instanceof RedisError) {
            throw new CometException('Redis at ' . $key . ' gave no slot map (is it a cluster node?): ' . $reply->message,
                CometException::REDIS);
        }
        if (!$ranges) {
            throw new CometException('Redis at ' . $key . ' serves no slots', CometException::REDIS);
        }
        usort($ranges, function ($a, $b) {
            return $a[0] - $b[0];
        });
        return $ranges;
    }

    private function nodeKey($host, $port, $fallbackHost)
    {
        if ($host === '' || $host === '?') {
            $host = $fallbackHost;
        }
        $key = Targets::hostPort($host, $port);
        if (!isset($this->known[$key])) {
            $this->known[$key] = array($host, (int) $port);
        }
        return $key;
    }

    /** A RESP2 flat list of names and values as an array. */
    private static function pairs($list)
    {
        $out = array();
        if (is_array($list)) {
            for ($i = 0; $i + 1 < count($list); $i += 2) {
                $out[(string) $list[$i]] = $list[$i + 1];
            }
        }
        return $out;
    }

    /** @param bool $force close persistent connections too */
    public function close($force = false)
    {
        foreach ($this->nodes as $driver) {
            $driver->close($force);
        }
        $this->nodes = array();
    }
}

} // class_exists
