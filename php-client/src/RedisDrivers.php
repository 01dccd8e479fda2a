<?php

namespace Comet;

if (!class_exists('Comet\RedisDrivers', false)) {

/**
 * Chooses the Redis driver (redis_driver: auto = phpredis if loaded, else Predis if
 * loadable, else the built-in client) and keeps the ones opened, one per kind, for the
 * client's later publishes.
 * @internal
 */
class RedisDrivers
{
    private $address;
    private $options;
    /** @var array driver name => SocketDriver|PhpRedisDriver|PredisDriver */
    private $open = array();

    /**
     * @param array $address Targets::redisAddress()
     * @param array $options normalised options
     */
    /**
     * @param array $address Targets::redisAddress()
     * @param array $options normalised options
     * @throws CometException CONFIG for phpredis or Predis with a cluster or sentinel URL
     */
    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
        $mode = isset($address['mode']) ? $address['mode'] : 'single';
        if ($mode !== 'single' && $options['redis_driver'] !== 'auto' && $options['redis_driver'] !== 'socket') {
            throw new CometException('redis+' . $mode . ':// URLs need the built-in client: set redis_driver to socket (or auto), not '
                . $options['redis_driver'], CometException::CONFIG);
        }
    }

    /**
     * Whether publishes go through a Redis Cluster (a redis+cluster:// URL), where the
     * publish script is asked to SPUBLISH: sharded pub/sub stays on the channel's shard
     * (where the sidecar SSUBSCRIBEs), while a PUBLISH would be copied to every node.
     * Standalone and Sentinel keep PUBLISH (SPUBLISH needs Redis 7).
     * @return bool
     */
    public function sharded()
    {
        return isset($this->address['mode']) && $this->address['mode'] === 'cluster';
    }

    /**
     * The driver for the next publish (created on first use; it connects when it runs).
     * @param bool $fireAndForget only the built-in client can send without waiting for the reply
     * @return SocketDriver|PhpRedisDriver|PredisDriver|ClusterDriver|SentinelDriver
     * @throws CometException CONFIG when the configured driver's library is not loaded
     */
    public function get($fireAndForget)
    {
        $mode = isset($this->address['mode']) ? $this->address['mode'] : 'single';
        if ($mode !== 'single') {
            // Redis Cluster and Sentinel: the built-in client only, in every mode.
            if (!isset($this->open[$mode])) {
                $this->open[$mode] = $mode === 'cluster' ? new ClusterDriver($this->address, $this->options)
                    : new SentinelDriver($this->address, $this->options);
            }
            return $this->open[$mode];
        }
        $name = $this->options['redis_driver'];
        if ($name === 'auto') {
            if (class_exists('Redis', false) && extension_loaded('redis')) {
                $name = 'phpredis';
            } elseif (class_exists('Predis\Client')) {
                $name = 'predis';
            } else {
                $name = 'socket';
            }
        }
        if ($fireAndForget) {
            $name = 'socket';
        }
        if (!isset($this->open[$name])) {
            if ($name === 'phpredis') {
                if (!class_exists('Redis', false)) {
                    throw new CometException('redis_driver "phpredis" needs the redis extension', CometException::CONFIG);
                }
                $this->open[$name] = new PhpRedisDriver($this->address, $this->options);
            } elseif ($name === 'predis') {
                if (!class_exists('Predis\Client')) {
                    throw new CometException('redis_driver "predis" needs Predis (predis/predis) loaded', CometException::CONFIG);
                }
                $this->open[$name] = new PredisDriver($this->address, $this->options);
            } else {
                $this->open[$name] = new SocketDriver($this->address, $this->options);
            }
        }
        return $this->open[$name];
    }

    /**
     * Closes and forgets a driver after a failure: its connection's state is unknown, so
     * the next publish starts over (a persistent connection is closed too).
     * @param object $driver one get() returned
     */
    public function drop($driver)
    {
        foreach ($this->open as $name => $d) {
            if ($d === $driver) {
                $d->close(true);
                unset($this->open[$name]);
            }
        }
    }

    /** Closes every driver (persistent connections are kept for the next request). */
    public function closeAll()
    {
        foreach ($this->open as $driver) {
            $driver->close();
        }
        $this->open = array();
    }
}

} // class_exists
