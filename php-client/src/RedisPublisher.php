<?php

namespace Comet;

if (!class_exists('Comet\RedisPublisher', false)) {

/**
 * Publishes through Redis with the publish script: a batch is one pipeline of EVALSHA
 * (EVAL for what Redis answers NOSCRIPT), or CLIENT REPLY SKIP + EVAL pairs in
 * fire-and-forget mode.
 * @internal
 */
class RedisPublisher
{
    /** @var RedisDrivers */
    private $drivers;
    private $options;
    /** @var bool the publish script's ARGV[6] = "s" (SPUBLISH): through a Redis Cluster */
    private $sharded;

    /**
     * @param RedisDrivers $drivers
     * @param array $options normalised options (history_size, key_ttl)
     */
    public function __construct(RedisDrivers $drivers, array $options)
    {
        $this->drivers = $drivers;
        $this->options = $options;
        $this->sharded = $drivers->sharded();
    }

    /**
     * PublishScript::command(), with ARGV[6] = "s" through a Redis Cluster: the script
     * then publishes with SPUBLISH, which only the channel's shard carries (the sidecar
     * subscribes there with SSUBSCRIBE). Elsewhere ARGV[6] is left out: PUBLISH, which
     * Redis before 7 has too. Decided by the URL, without asking Redis.
     */
    private function command($verb, array $m, $history, $ttl)
    {
        $args = PublishScript::command($verb, $m, $history, $ttl);
        if ($this->sharded) {
            $args[] = 's';
        }
        return $args;
    }

    /**
     * @param array $prepared key => array(channel, data text, event), see MessageValidator::prepare()
     * @param bool $ff fire-and-forget: send without reading the replies
     * @param array $details receives, per key of a published message, array('ch', 'id',
     *        'epoch', 'prev'), also when this throws (nothing in fire-and-forget mode)
     * @return array key => message id (true in fire-and-forget mode)
     * @throws CometException with getResults(): the ids known to be published, null for the others
     */
    public function publish(array $prepared, $ff, array &$details)
    {
        $driver = $this->drivers->get($ff);
        $history = (string) $this->options['history_size'];
        $ttl = (string) $this->options['key_ttl'];
        $keys = array_keys($prepared);
        try {
            if ($ff) {
                // CLIENT REPLY SKIP: Redis sends no reply to the next command, so nothing is
                // left unread on the connection. EVAL, not EVALSHA: a NOSCRIPT would go unseen.
                $commands = array();
                foreach ($prepared as $m) {
                    $commands[] = array('CLIENT', 'REPLY', 'SKIP');
                    $commands[] = $this->command('EVAL', $m, $history, $ttl);
                }
                $driver->execute($commands, false);
                return array_fill_keys($keys, true);
            }
            $commands = array();
            foreach ($prepared as $m) {
                $commands[] = $this->command('EVALSHA', $m, $history, $ttl);
            }
            $replies = $driver->execute($commands, true);
            $retry = array();
            foreach ($replies as $i => $reply) {
                if ($reply instanceof RedisError && strncmp($reply->message, 'NOSCRIPT', 8) === 0) {
                    $retry[] = $i;
                }
            }
            if ($retry) {
                // Not in Redis's script cache (restarted, SCRIPT FLUSH): the first EVAL loads
                // it, the rest of the batch can keep using EVALSHA.
                $commands = array();
                foreach ($retry as $n => $i) {
                    $commands[] = $this->command($n === 0 ? 'EVAL' : 'EVALSHA', $prepared[$keys[$i]], $history, $ttl);
                }
                try {
                    $again = $driver->execute($commands, true);
                } catch (CometException $e) {
                    // Known replies: the first round's, but those of the retried commands.
                    $known = $replies;
                    foreach ($retry as $n => $i) {
                        $known[$i] = null;
                    }
                    foreach ($e->getResults() as $n => $reply) {
                        if (isset($retry[$n])) {
                            $known[$retry[$n]] = $reply;
                        }
                    }
                    throw new CometException($e->getMessage(), $e->getCode(), $e, $known);
                }
                foreach ($retry as $n => $i) {
                    $replies[$i] = $again[$n];
                }
            }
        } catch (CometException $e) {
            if ($e->getCode() !== CometException::REDIS) {
                $this->drivers->drop($driver);
            }
            // Nothing is known to be published, except what a cluster node or the master
            // confirmed before the failure (the driver's results, by command index).
            $ids = array_fill_keys($keys, null);
            if (!$ff) {
                foreach ($e->getResults() as $i => $reply) {
                    if (isset($keys[$i]) && is_array($reply) && count($reply) >= 3 && is_numeric($reply[0])) {
                        $ids[$keys[$i]] = (int) $reply[0];
                        $details[$keys[$i]] = array('ch' => $prepared[$keys[$i]][0], 'id' => (int) $reply[0],
                            'epoch' => (string) $reply[1], 'prev' => (int) $reply[2]);
                    }
                }
            }
            throw new CometException($e->getMessage(), $e->getCode(), $e, $ids);
        }
        $ids = array();
        $firstError = null;
        foreach ($keys as $i => $key) {
            $reply = $replies[$i];
            if (is_array($reply) && count($reply) >= 3 && is_numeric($reply[0])) {
                $ids[$key] = (int) $reply[0];
                $details[$key] = array('ch' => $prepared[$key][0], 'id' => (int) $reply[0],
                    'epoch' => (string) $reply[1], 'prev' => (int) $reply[2]);
            } else {
                $ids[$key] = null;
                if ($firstError === null) {
                    $firstError = $reply instanceof RedisError ? $reply->message : 'unexpected reply to EVALSHA';
                }
            }
        }
        if ($firstError !== null) {
            throw new CometException('Redis refused the publish: ' . $firstError, CometException::REDIS, null, $ids);
        }
        return $ids;
    }

    /** Closes the connections (persistent ones are kept for the next request). */
    public function close()
    {
        $this->drivers->closeAll();
    }
}

} // class_exists
