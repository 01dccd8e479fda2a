<?php

namespace Comet;

if (!class_exists('Comet\Wire', false)) {

/**
 * A non-blocking socket with an inactivity timeout: pump() writes its output and feeds
 * what it reads to a reader until the reader is satisfied, and fails when nothing moves
 * for `timeout` seconds.
 * @internal
 */
class Wire
{
    public $stream;
    public $label;
    public $broken = false;
    private $persistent;

    /**
     * Connects (blocking, at most $connectTimeout), then switches to non-blocking.
     * @param string $address tcp://host:port, tls://host:port or unix:///path
     * @param float $connectTimeout seconds
     * @param bool $persistent reuse a socket across requests (STREAM_CLIENT_PERSISTENT)
     * @param string $label who is at the other end, for error messages
     * @param string $persistentId for persistent TCP sockets: PHP keys them by address, and
     *        this suffix keeps ours apart from other libraries' and other credentials'
     * @throws CometException CONNECT
     */
    public function __construct($address, $connectTimeout, $persistent, $label, $persistentId = 'comet-php')
    {
        $this->label = $label;
        $this->persistent = (bool) $persistent;
        $flags = STREAM_CLIENT_CONNECT | ($persistent ? STREAM_CLIENT_PERSISTENT : 0);
        $shown = $address;
        if ($persistent && strncmp($address, 'tcp://', 6) === 0) {
            $address .= '/' . $persistentId;
        }
        $context = stream_context_create(strncmp($address, 'unix:', 5) === 0 ? array()
            : array('socket' => array('tcp_nodelay' => true)));
        $errno = 0;
        $errstr = '';
        $stream = @stream_socket_client($address, $errno, $errstr, $connectTimeout, $flags, $context);
        if (!$stream) {
            if ($errstr === '') {
                $last = error_get_last();
                $errstr = $last ? $last['message'] : 'unknown error';
            }
            throw new CometException('cannot connect to ' . $label . ' at ' . $shown . ': ' . $errstr
                . ($errno ? ' (errno ' . $errno . ')' : ''), CometException::CONNECT);
        }
        stream_set_blocking($stream, false);
        if ($persistent) {
            // A reused persistent socket must have nothing unread (left by a request that
            // gave up waiting) and must still be open; otherwise open a fresh one.
            $stale = @fread($stream, 8192);
            if ($stale === false || $stale !== '' || feof($stream)) {
                @fclose($stream);
                $stream = @stream_socket_client($address, $errno, $errstr, $connectTimeout, $flags, $context);
                if (!$stream) {
                    throw new CometException('cannot connect to ' . $label . ' at ' . $shown . ': ' . $errstr,
                        CometException::CONNECT);
                }
                stream_set_blocking($stream, false);
            }
        }
        $this->stream = $stream;
    }

    /**
     * @param string $out bytes to send
     * @param object $reader feed($bytes), done(), more() (bytes to send next, may be ''),
     *                       eof() (the peer closed)
     * @param float $timeout inactivity timeout, seconds
     * @throws CometException TIMEOUT, IO
     */
    public function pump($out, $reader, $timeout)
    {
        $deadline = microtime(true) + $timeout;
        $zeroWrites = 0;
        // Read only once select() said so (an answer cannot come before the request left).
        $canRead = $out === '';
        while (true) {
            $progress = false;
            if ($out !== '') {
                $n = @fwrite($this->stream, $out);
                if ($n === false) {
                    $this->fail('connection to ' . $this->label . ' lost while sending', CometException::IO);
                }
                if ($n > 0) {
                    $out = Bytes::sub($out, $n);
                    $progress = true;
                    $zeroWrites = 0;
                }
            }
            $closed = false;
            while ($canRead) {
                $chunk = @fread($this->stream, 65536);
                if ($chunk === false) {
                    $closed = true;
                    break;
                }
                if ($chunk === '') {
                    $closed = feof($this->stream);
                    break;
                }
                try {
                    $reader->feed($chunk);
                } catch (CometException $e) {
                    $this->broken = true;
                    throw $e;
                }
                $progress = true;
                if ($reader->done()) {
                    break;
                }
            }
            $more = $reader->more();
            if ($more !== '') {
                $out .= $more;
            }
            if ($out === '' && $reader->done()) {
                return;
            }
            if ($closed) {
                $reader->eof();
                if ($out === '' && $reader->done()) {
                    return;
                }
                $this->fail('connection closed by ' . $this->label . ' before it answered', CometException::IO);
            }
            $now = microtime(true);
            if ($progress) {
                $deadline = $now + $timeout;
            }
            $left = $deadline - $now;
            if ($left <= 0) {
                $this->fail('no answer from ' . $this->label . ' within ' . $timeout . ' s', CometException::TIMEOUT);
            }
            $r = array($this->stream);
            $w = $out !== '' ? array($this->stream) : null;
            $e = null;
            $ready = @stream_select($r, $w, $e, (int) $left, (int) (($left - (int) $left) * 1000000));
            if ($ready === false) {
                // Interrupted by a signal: go round again, the deadline still holds.
                usleep(1000);
                $canRead = true;
                continue;
            }
            $canRead = !empty($r);
            if ($w && $out !== '') {
                // Writable, yet the last write took nothing: a 0 from fwrite() is how old
                // PHP versions report a failed write.
                if (!$progress && ++$zeroWrites > 100) {
                    $this->fail('connection to ' . $this->label . ' lost while sending', CometException::IO);
                }
            }
        }
    }

    private function fail($message, $code)
    {
        $this->broken = true;
        throw new CometException($message, $code);
    }

    /**
     * Whether the socket is still open with nothing unread, checked without waiting: a
     * peer that closed it (a node killed or restarted, a master demoted by Sentinel, which
     * kills its clients) shows here, before anything is sent on it.
     * @return bool
     */
    public function idle()
    {
        if (!is_resource($this->stream)) {
            return false;
        }
        $chunk = @fread($this->stream, 1);
        if ($chunk === false || $chunk !== '' || feof($this->stream)) {
            $this->broken = true;
            return false;
        }
        return true;
    }

    /** @return bool a persistent socket that was used before (PHP counts its bytes in ftell) */
    public function reused()
    {
        return $this->persistent && @ftell($this->stream) > 0;
    }

    /** @return resource the socket, which this object no longer closes */
    public function detach()
    {
        $stream = $this->stream;
        $this->stream = null;
        return $stream;
    }

    /** Closes the socket; a healthy persistent one stays open for the next request. */
    public function close()
    {
        if (is_resource($this->stream)) {
            if (!$this->persistent || $this->broken) {
                @fclose($this->stream);
            } else {
                // Hand it back as PHP made it (blocking), in case other code shares it.
                @stream_set_blocking($this->stream, true);
            }
        }
        $this->stream = null;
    }
}

} // class_exists
