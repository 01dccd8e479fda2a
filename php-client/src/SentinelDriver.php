<?php

namespace Comet;

if (!class_exists('Comet\SentinelDriver', false)) {

/**
 * Redis behind Sentinel (redis+sentinel://) over the built-in client.
 *
 * * The master: `SENTINEL get-master-addr-by-name NAME`, asked of the sentinels in the
 *   URL's order (the first that answers wins), then `ROLE` on that address: only a node
 *   answering "master" is published to; otherwise the next sentinel is asked.
 * * READONLY or LOADING from the master (it was demoted, or is loading its data), or a
 *   connection it closed while idle, or no master found yet: the master is looked up
 *   again and the commands that did not run are sent again, with pauses (50 ms doubling),
 *   for at most `timeout`. A master found more than a second ago is confirmed with the
 *   sentinels before it is used again (a long-running client). A connection lost or a timeout after sending is reported
 *   (TIMEOUT, IO): the command may have run, so it is not sent twice.
 * @internal
 */
class SentinelDriver
{
    private $address;
    private $options;
    /** @var SocketDriver|null the master, checked with ROLE */
    private $master = null;
    private $masterAt = '';
    /** when the sentinels last named $masterAt (microtime) */
    private $checkedAt = 0.0;
    /**
     * Seconds a master found is used without asking the sentinels again. A master demoted
     * by a failover may keep accepting writes until the sentinels reconfigure it (split
     * brain): a long-running client (a worker) asks again before using it after this long.
     */
    const RECHECK_AFTER = 1.0;
    /** @var array "host:port" => SocketDriver, connections to the sentinels */
    private $sentinels = array();

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
    }

    /** @return string host:port of the master in use, '' before one was found */
    public function masterAddress()
    {
        return $this->masterAt;
    }

    /**
     * @param array $commands arrays of arguments
     * @param bool $wantReplies
     * @return array replies, in order
     * @throws CometException CONNECT (no master found: nothing sent), TIMEOUT, IO, REDIS
     */
    public function execute(array $commands, $wantReplies)
    {
        $deadline = microtime(true) + $this->options['timeout'];
        $pause = 0.05;
        $replies = array();
        $todo = array_keys($commands);
        while (true) {
            $retry = false;
            $why = null;
            try {
                if ($this->master !== null && microtime(true) - $this->checkedAt > self::RECHECK_AFTER) {
                    $this->recheck();
                }
                if ($this->master === null) {
                    $this->findMaster();
                }
                $send = array();
                foreach ($todo as $i) {
                    $send[] = $commands[$i];
                }
                $got = $this->master->execute($send, $wantReplies);
            } catch (CometException $e) {
                if ($e->getCode() !== CometException::REDIS || $this->master !== null) {
                    $this->dropMaster();
                }
                // CONNECT: nothing was sent (no master yet, or its connection closed while idle).
                if ($e->getCode() !== CometException::CONNECT || $e->getPrevious() instanceof CometException
                    || microtime(true) + $pause > $deadline) {
                    throw new CometException($e->getMessage(), $e->getCode(), $e, $replies);
                }
                $retry = true;
                $why = $e;
                $got = array();
            }
            if (!$retry) {
                if (!$wantReplies) {
                    return array();
                }
                $again = array();
                foreach ($todo as $n => $i) {
                    $reply = $got[$n];
                    $replies[$i] = $reply;
                    if ($reply instanceof RedisError && preg_match('/^(READONLY|LOADING|MASTERDOWN)\b/', $reply->message)) {
                        // Refused, not run: the node is a replica now, or not ready.
                        $again[] = $i;
                    }
                }
                if (!$again) {
                    ksort($replies);
                    return array_values($replies);
                }
                $this->dropMaster();
                if (microtime(true) + $pause > $deadline) {
                    ksort($replies);
                    return array_values($replies);
                }
                $todo = $again;
            }
            usleep((int) ($pause * 1000000));
            $pause = min($pause * 2, 0.4);
        }
    }

    /**
     * Asks the sentinels in order for the master and checks it with ROLE.
     * @throws CometException CONNECT: no sentinel named a reachable master (its previous
     *         exception is a CometException when no sentinel could be reached at all, so
     *         waiting is pointless), REDIS: a sentinel refused (wrong password)
     */
    private function findMaster()
    {
        $a = $this->address;
        $problems = array();
        $reached = false;
        foreach ($a['seeds'] as $seed) {
            $at = Targets::hostPort($seed[0], $seed[1]);
            try {
                $reply = $this->sentinel($at, $seed)->execute(
                    array(array('SENTINEL', 'get-master-addr-by-name', $a['master'])), true);
            } catch (CometException $e) {
                $this->dropSentinel($at);
                $problems[] = 'sentinel ' . $at . ': ' . $e->getMessage();
                if ($e->getCode() !== CometException::CONNECT) {
                    $reached = true;
                }
                continue;
            }
            $reached = true;
            $reply = $reply[0];
            if ($reply instanceof RedisError) {
                $problems[] = 'sentinel ' . $at . ': ' . $reply->message;
                continue;
            }
            if (!is_array($reply) || count($reply) < 2) {
                $problems[] = 'sentinel ' . $at . ' does not know master "' . $a['master'] . '"';
                continue;
            }
            $host = (string) $reply[0];
            $port = (int) $reply[1];
            $node = Targets::hostPort($host, $port);
            $driver = new SocketDriver(Targets::nodeAddress($a, $host, $port), $this->options);
            try {
                $role = $driver->execute(array(array('ROLE')), true);
            } catch (CometException $e) {
                $driver->close(true);
                if ($e->getCode() === CometException::REDIS) {
                    throw $e;   // AUTH or SELECT refused: the configuration, not the failover
                }
                $problems[] = 'master ' . $node . ' (from sentinel ' . $at . '): ' . $e->getMessage();
                continue;
            }
            $role = $role[0];
            if (is_array($role) && isset($role[0]) && $role[0] === 'master') {
                $this->master = $driver;
                $this->masterAt = $node;
                $this->checkedAt = microtime(true);
                return;
            }
            $driver->close(true);
            $problems[] = $node . ' (from sentinel ' . $at . ') is not a master: ROLE '
                . ($role instanceof RedisError ? $role->message : (is_array($role) && isset($role[0]) ? $role[0] : '?'));
        }
        $none = new CometException('no sentinel could be reached', CometException::CONNECT);
        throw new CometException('no Redis master "' . $a['master'] . '" found through ' . $a['address'] . ': '
            . implode('; ', $problems), CometException::CONNECT, $reached ? null : $none);
    }

    /**
     * Asks the sentinels whether the master in use is still theirs; forgets it when the
     * first one that answers names another (no answer: keep using it).
     */
    private function recheck()
    {
        foreach ($this->address['seeds'] as $seed) {
            $at = Targets::hostPort($seed[0], $seed[1]);
            try {
                $reply = $this->sentinel($at, $seed)->execute(
                    array(array('SENTINEL', 'get-master-addr-by-name', $this->address['master'])), true);
            } catch (CometException $e) {
                $this->dropSentinel($at);
                continue;
            }
            $reply = $reply[0];
            if (!is_array($reply) || count($reply) < 2) {
                continue;
            }
            if (Targets::hostPort((string) $reply[0], (int) $reply[1]) === $this->masterAt) {
                $this->checkedAt = microtime(true);
            } else {
                $this->dropMaster();
            }
            return;
        }
    }

    private function sentinel($at, array $seed)
    {
        if (!isset($this->sentinels[$at])) {
            $a = $this->address;
            $address = Targets::nodeAddress(array('user' => $a['sentinel_user'], 'password' => $a['sentinel_password'],
                'db' => 0), $seed[0], $seed[1]);
            $this->sentinels[$at] = new SocketDriver($address, $this->options);
        }
        return $this->sentinels[$at];
    }

    private function dropSentinel($at)
    {
        if (isset($this->sentinels[$at])) {
            $this->sentinels[$at]->close(true);
            unset($this->sentinels[$at]);
        }
    }

    private function dropMaster()
    {
        if ($this->master !== null) {
            $this->master->close(true);
            $this->master = null;
            $this->masterAt = '';
        }
    }

    /** @param bool $force close persistent connections too */
    public function close($force = false)
    {
        if ($this->master !== null) {
            $this->master->close($force);
            $this->master = null;
            $this->masterAt = '';
        }
        foreach ($this->sentinels as $driver) {
            $driver->close($force);
        }
        $this->sentinels = array();
    }
}

} // class_exists
