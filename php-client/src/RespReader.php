<?php

namespace Comet;

if (!class_exists('Comet\RespReader', false)) {

/**
 * Collects RESP replies (RESP2) into PHP values; error replies become RedisError.
 * @internal
 */
class RespReader
{
    public $replies = array();
    /** replies dropped while looking for the marker */
    public $skipped = array();
    private $want;
    private $buf = '';
    private $pos = 0;
    private $marker;

    /**
     * @param int $want replies to collect
     * @param string|null $marker when set, replies are dropped until one equal to it
     *        (the answer to an ECHO sent first): they were left by earlier commands
     */
    public function __construct($want, $marker = null)
    {
        $this->want = $want;
        $this->marker = $marker;
    }

    public static function encode(array $args)
    {
        $out = '*' . count($args) . "\r\n";
        foreach ($args as $arg) {
            $arg = (string) $arg;
            $out .= '$' . Bytes::len($arg) . "\r\n" . $arg . "\r\n";
        }
        return $out;
    }

    public function feed($bytes)
    {
        $this->buf .= $bytes;
        while ($this->marker !== null || count($this->replies) < $this->want) {
            $parsed = $this->parse($this->pos, 0);
            if ($parsed === null) {
                break;
            }
            $this->pos = $parsed[1];
            if ($this->marker !== null) {
                if ($parsed[0] === $this->marker) {
                    $this->marker = null;
                } elseif ($parsed[0] instanceof RedisError && preg_match('/^(NOAUTH|WRONGPASS)/', $parsed[0]->message)) {
                    // Not authenticated: the ECHO fails too and the marker never comes.
                    throw new CometException('Redis AUTH failed: ' . $parsed[0]->message, CometException::REDIS);
                } else {
                    $this->skipped[] = $parsed[0];
                }
                continue;
            }
            $this->replies[] = $parsed[0];
        }
        if ($this->pos > 65536) {
            $this->buf = Bytes::sub($this->buf, $this->pos);
            $this->pos = 0;
        }
        if ($this->done() && $this->pos < Bytes::len($this->buf)) {
            throw new CometException('Redis sent more than expected (connection out of step)', CometException::IO);
        }
    }

    public function done()
    {
        return $this->marker === null && count($this->replies) >= $this->want;
    }

    public function more()
    {
        return '';
    }

    public function eof()
    {
    }

    /** @return array|null array(value, next position), null when incomplete */
    private function parse($pos, $depth)
    {
        $eol = Bytes::pos($this->buf, "\r\n", $pos);
        if ($eol === false) {
            return null;
        }
        $type = $this->buf[$pos];
        $line = Bytes::sub($this->buf, $pos + 1, $eol - $pos - 1);
        $next = $eol + 2;
        switch ($type) {
            case '+':
                return array($line, $next);
            case '-':
                return array(new RedisError($line), $next);
            case ':':
                return array((int) $line, $next);
            case '$':
                $length = (int) $line;
                if ($length < 0) {
                    return array(null, $next);
                }
                if (Bytes::len($this->buf) < $next + $length + 2) {
                    return null;
                }
                return array(Bytes::sub($this->buf, $next, $length), $next + $length + 2);
            case '*':
                $count = (int) $line;
                if ($count < 0) {
                    return array(null, $next);
                }
                if ($depth > 16) {
                    break;
                }
                $items = array();
                for ($i = 0; $i < $count; $i++) {
                    $item = $this->parse($next, $depth + 1);
                    if ($item === null) {
                        return null;
                    }
                    $items[] = $item[0];
                    $next = $item[1];
                }
                return array($items, $next);
        }
        throw new CometException('garbled answer from Redis', CometException::IO);
    }
}

} // class_exists
