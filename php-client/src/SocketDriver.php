<?php

namespace Comet;

if (!class_exists('Comet\SocketDriver', false)) {

/**
 * The built-in Redis client: RESP over stream_socket_client, commands pipelined.
 * @internal
 */
class SocketDriver
{
    private $address;
    private $options;
    /** @var Wire|null */
    private $wire = null;
    /**
     * Replies of earlier commands may still be on their way (fire-and-forget sends, or a
     * persistent socket inherited from an earlier request): the next exchange starts with
     * an ECHO and skips everything before its answer.
     */
    private $dirty = false;

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
    }

    /**
     * @param array $commands arrays of arguments
     * @param bool $wantReplies false: send only (the commands must produce no reply)
     * @return array replies, in order
     */
    public function execute(array $commands, $wantReplies)
    {
        if ($this->wire !== null && !empty($this->address['probe']) && !$this->wire->idle()) {
            // Cluster and Sentinel nodes: a connection the node closed since the last use is
            // reported before anything is sent (CONNECT: safe to retry elsewhere), not
            // reopened here: the caller decides where to go (Sentinel: ask again, check ROLE).
            $this->close(true);
            throw new CometException('connection to Redis at ' . $this->address['address'] . ' was closed',
                CometException::CONNECT);
        }
        if ($this->wire === null) {
            $a = $this->address;
            // Persistent TCP sockets are keyed by credentials and database too, so a reused
            // one is already set up; a Unix socket cannot be keyed and is set up every time.
            $this->wire = new Wire($a['address'], $this->options['connect_timeout'], $this->options['persistent'],
                'Redis', 'comet-php-' . substr(sha1($a['user'] . "\0" . $a['password'] . "\0" . $a['db']), 0, 12));
            $reused = $this->wire->reused();
            $this->dirty = $reused;
            $setup = array();
            if ($a['password'] !== '') {
                $setup[] = $a['user'] !== '' ? array('AUTH', $a['user'], $a['password']) : array('AUTH', $a['password']);
            }
            if ($a['db'] > 0) {
                $setup[] = array('SELECT', $a['db']);
            }
            if ($setup && (!$reused || $a['socket'] !== '')) {
                // A round trip of its own: pipelined with the publish, a failed AUTH or
                // SELECT could leave the message published somewhere else, or by an
                // earlier login on a persistent socket, while we report an error.
                try {
                    $this->exchange($setup, array(), true);
                } catch (CometException $e) {
                    $this->close(true);
                    throw $e;
                }
            }
        }
        $replies = $this->exchange(array(), $commands, $wantReplies);
        if (!$wantReplies) {
            $this->dirty = true;
        }
        return $replies;
    }

    /**
     * Sends $setup (AUTH, SELECT) and $commands in one write; with $wait, returns the
     * replies to $commands once all arrived.
     */
    private function exchange(array $setup, array $commands, $wait)
    {
        $out = '';
        foreach ($setup as $args) {
            $out .= RespReader::encode($args);
        }
        $marker = null;
        if ($this->dirty && $wait) {
            $marker = 'comet-sync-' . mt_rand() . '-' . mt_rand();
            $out .= RespReader::encode(array('ECHO', $marker));
        }
        foreach ($commands as $args) {
            $out .= RespReader::encode($args);
        }
        $want = $wait ? ($marker === null ? count($setup) : 0) + count($commands) : 0;
        $reader = new RespReader($want, $marker);
        $this->wire->pump($out, $reader, $this->options['timeout']);
        if (!$wait) {
            return array();
        }
        $this->dirty = false;
        if ($marker !== null) {
            // Replies before the marker: stale ones, then those of $setup.
            $setupReplies = $setup ? array_slice($reader->skipped, -count($setup)) : array();
            $replies = $reader->replies;
        } else {
            $setupReplies = array_slice($reader->replies, 0, count($setup));
            $replies = array_slice($reader->replies, count($setup));
        }
        // A failed AUTH or SELECT makes every following reply an error: report the cause.
        foreach ($setupReplies as $i => $reply) {
            if ($reply instanceof RedisError) {
                $this->close(true);
                throw new CometException('Redis ' . $setup[$i][0] . ' failed: ' . $reply->message, CometException::REDIS);
            }
        }
        return $replies;
    }

    /** @param bool $force close a persistent socket too */
    public function close($force = false)
    {
        if ($this->wire !== null) {
            if ($force) {
                $this->wire->broken = true;
            }
            $this->wire->close();
            $this->wire = null;
        }
    }
}

} // class_exists
