<?php

namespace Comet;

if (!class_exists('Comet\PhpRedisDriver', false)) {

/**
 * Redis through the phpredis extension (class Redis), for single commands. Batches go
 * through the built-in client: a phpredis pipeline whose server stops answering waits out
 * the read timeout once per queued reply (phpredis 5.3: 1,000 messages x 0.5 s).
 * @internal
 */
class PhpRedisDriver
{
    private $address;
    private $options;
    private $redis = null;
    private $broken = false;
    /** @var SocketDriver|null */
    private $pipeline = null;

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
    }

    private function connect()
    {
        $a = $this->address;
        $o = $this->options;
        $redis = new \Redis();
        $where = $a['socket'] !== '' ? $a['socket'] : $a['host'];
        $port = $a['socket'] !== '' ? 0 : $a['port'];
        try {
            $ok = $o['persistent'] ? $redis->pconnect($where, $port, $o['connect_timeout'],
                    'comet-php-' . substr(sha1($a['user'] . "\0" . $a['password'] . "\0" . $a['db']), 0, 12))
                : $redis->connect($where, $port, $o['connect_timeout']);
        } catch (\Exception $e) {
            throw new CometException('cannot connect to Redis at ' . $a['address'] . ': ' . $e->getMessage(), CometException::CONNECT, $e);
        }
        if (!$ok) {
            throw new CometException('cannot connect to Redis at ' . $a['address'], CometException::CONNECT);
        }
        try {
            $redis->setOption(\Redis::OPT_READ_TIMEOUT, $o['timeout']);
            if ($a['password'] !== '' && !$redis->auth($a['user'] !== '' ? array($a['user'], $a['password']) : $a['password'])) {
                throw new CometException('Redis AUTH failed: ' . $redis->getLastError(), CometException::REDIS);
            }
            if ($a['db'] > 0 && !$redis->select($a['db'])) {
                throw new CometException('Redis SELECT failed: ' . $redis->getLastError(), CometException::REDIS);
            }
        } catch (\RedisException $e) {
            $this->broken = true;
            throw new CometException('Redis: ' . $e->getMessage(), self::codeOf($e, null, 0), $e);
        }
        $this->redis = $redis;
    }

    public function execute(array $commands, $wantReplies)
    {
        if (count($commands) !== 1) {
            if ($this->pipeline === null) {
                $this->pipeline = new SocketDriver($this->address, $this->options);
            }
            return $this->pipeline->execute($commands, $wantReplies);
        }
        if ($this->redis === null) {
            $this->connect();
        }
        $redis = $this->redis;
        $start = microtime(true);
        try {
            $redis->clearLastError();
            $results = array(call_user_func_array(array($redis, 'rawCommand'), $commands[0]));
        } catch (\RedisException $e) {
            $this->broken = true;
            throw new CometException('Redis: ' . $e->getMessage(), self::codeOf($e, $start, $this->options['timeout']), $e);
        }
        // phpredis reports an error reply as false, the message apart.
        $error = $redis->getLastError();
        foreach ($results as $i => $result) {
            if ($result === false) {
                $results[$i] = new RedisError($error !== null && $error !== '' ? $error : 'error');
            }
        }
        return $results;
    }

    /** phpredis's messages do not tell a timeout from a lost connection: the clock does. */
    private static function codeOf(\Exception $e, $start, $timeout)
    {
        if (preg_match('/^(WRONGPASS|NOAUTH|NOPERM|ERR)/', $e->getMessage())) {
            return CometException::REDIS;
        }
        if (stripos($e->getMessage(), 'timed out') !== false
            || ($start !== null && microtime(true) - $start >= $timeout * 0.9)) {
            return CometException::TIMEOUT;
        }
        return CometException::IO;
    }

    /** @param bool $force close a persistent connection too */
    public function close($force = false)
    {
        if ($this->redis !== null && ($force || $this->broken || !$this->options['persistent'])) {
            try {
                $this->redis->close();
            } catch (\Exception $e) {
            }
        }
        $this->redis = null;
        if ($this->pipeline !== null) {
            $this->pipeline->close($force);
            $this->pipeline = null;
        }
    }
}

} // class_exists
