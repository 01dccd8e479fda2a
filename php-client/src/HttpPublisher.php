<?php

namespace Comet;

if (!class_exists('Comet\HttpPublisher', false)) {

/**
 * POST /pub/<channel> to the sidecar over one keep-alive connection, requests pipelined
 * within a window (a Redis-backed sidecar holds at most --max-header-bytes of pipelined
 * input while a publish is in flight).
 * @internal
 */
class HttpPublisher
{
    /** Bytes of requests sent ahead of the one the sidecar is working on. */
    const WINDOW = 4096;
    /** Fire-and-forget connections left open at once, at most. */
    const MAX_LINGERING = 16;

    private static $lingering = array();

    private $target;
    private $options;
    private $requests = array();
    private $sizes = array();
    private $keys = array();
    private $sent = 0;
    private $ff = false;
    private $responses = array();
    private $buf = '';
    private $wire = null;

    public function __construct(array $target, array $options)
    {
        $this->target = $target;
        $this->options = $options;
    }

    /**
     * @param array $prepared key => array(channel, text, event)
     * @return array key => array('ch', 'id', 'epoch', 'prev'); empty when $ff
     */
    public function publish(array $prepared, $ff)
    {
        $this->ff = $ff;
        $count = count($prepared);
        $n = 0;
        foreach ($prepared as $key => $m) {
            $this->keys[] = $key;
            $request = $this->request($m, ++$n === $count);
            $this->requests[] = $request;
            $this->sizes[] = Bytes::len($request);
        }
        self::settle($this->options['timeout']);
        try {
            $this->wire = new Wire($this->target['address'], $this->options['connect_timeout'], false, 'the sidecar');
            $this->wire->pump($this->more(), $this, $this->options['timeout']);
        } catch (CometException $e) {
            if ($this->wire !== null) {
                $this->wire->close();
            }
            // An error answer that made the sidecar close the connection says more.
            foreach ($this->responses as $r) {
                if ($r['status'] !== 200) {
                    $answer = self::decodeAnswer($r['body']);
                    throw new CometException('sidecar refused the publish (HTTP ' . $r['status'] . ')'
                        . ($answer !== null && isset($answer['error']) ? ': ' . $answer['error'] : ''),
                        CometException::HTTP, $e, $this->partial($prepared), $r['status']);
                }
            }
            throw new CometException($e->getMessage(), $e->getCode(), $e, $this->partial($prepared));
        }
        if ($ff) {
            self::linger($this->wire->detach());
        } else {
            $this->wire->close();
        }
        $results = array();
        foreach ($this->keys as $i => $key) {
            if ($ff && !isset($this->responses[$i])) {
                continue;
            }
            $r = $this->responses[$i];
            $answer = self::decodeAnswer($r['body']);
            if ($r['status'] !== 200 || $answer === null) {
                $why = $answer !== null && isset($answer['error']) ? $answer['error']
                    : ($r['status'] === 200 ? 'unreadable answer' : 'HTTP ' . $r['status']);
                throw new CometException('sidecar refused the publish (HTTP ' . $r['status'] . '): ' . $why,
                    CometException::HTTP, null, $this->partial($prepared), $r['status']);
            }
            if ($ff) {
                continue;
            }
            $results[$key] = array('ch' => $prepared[$key][0], 'id' => (int) $answer['id'],
                'epoch' => isset($answer['epoch']) ? (string) $answer['epoch'] : '', 'prev' => (int) $answer['id'] - 1);
        }
        return $results;
    }

    /**
     * Fire-and-forget leaves the connection open instead of closing it at once: a sidecar
     * may drop a request whose client went away before it was processed. PHP closes the
     * socket at the end of the request (after the page is sent), or settle() does before
     * the next HTTP publish; at most MAX_LINGERING stay open.
     */
    private static function linger($stream)
    {
        foreach (self::$lingering as $i => $old) {
            $answer = @fread($old, 8192);
            if ($answer === false || $answer !== '' || feof($old)) {
                @fclose($old);
                unset(self::$lingering[$i]);
            }
        }
        if (count(self::$lingering) >= self::MAX_LINGERING) {
            @fclose(array_shift(self::$lingering));
        }
        self::$lingering[] = $stream;
    }

    /**
     * Waits (at most $timeout) until the sidecar has answered the earlier fire-and-forget
     * requests, so that a later publish on a new connection cannot overtake them.
     */
    private static function settle($timeout)
    {
        $deadline = microtime(true) + $timeout;
        while (self::$lingering) {
            $stream = reset(self::$lingering);
            $key = key(self::$lingering);
            $left = $deadline - microtime(true);
            $r = array($stream);
            $w = null;
            $e = null;
            if ($left > 0 && !feof($stream)) {
                @stream_select($r, $w, $e, (int) $left, (int) (($left - (int) $left) * 1000000));
            }
            @fclose($stream);
            unset(self::$lingering[$key]);
        }
    }

    private function partial(array $prepared)
    {
        $out = array();
        foreach ($this->keys as $i => $key) {
            $out[$key] = null;
            if (isset($this->responses[$i]) && $this->responses[$i]['status'] === 200) {
                $answer = self::decodeAnswer($this->responses[$i]['body']);
                if ($answer !== null) {
                    $out[$key] = (int) $answer['id'];
                }
            }
        }
        return $out;
    }

    private function request(array $m, $last)
    {
        $path = $this->target['prefix'] . '/pub/' . rawurlencode($m[0]);
        if ($m[2] !== '') {
            $path .= '?event=' . rawurlencode($m[2]);
        }
        $head = 'POST ' . $path . " HTTP/1.1\r\n"
            . 'Host: ' . $this->target['host'] . "\r\n"
            . 'User-Agent: comet-php/' . Client::VERSION . "\r\n"
            . "Content-Type: text/plain; charset=utf-8\r\n"
            . 'Content-Length: ' . Bytes::len($m[1]) . "\r\n";
        if ($this->options['publish_key'] !== '') {
            $head .= 'X-Comet-Key: ' . $this->options['publish_key'] . "\r\n";
        }
        $head .= 'Connection: ' . ($last ? 'close' : 'keep-alive') . "\r\n\r\n";
        return $head . $m[1];
    }

    /** @return array|null the JSON answer */
    private static function decodeAnswer($body)
    {
        if (function_exists('json_decode')) {
            $answer = json_decode($body, true);
            if (!is_array($answer)) {
                return null;
            }
            if (!isset($answer['id']) && !isset($answer['error'])) {
                return null;
            }
            return $answer;
        }
        $answer = array();
        if (preg_match('/"id"\s*:\s*(\d+)/', $body, $m)) {
            $answer['id'] = (int) $m[1];
        }
        if (preg_match('/"epoch"\s*:\s*"([0-9A-Za-z]*)"/', $body, $m)) {
            $answer['epoch'] = $m[1];
        }
        if (preg_match('/"error"\s*:\s*"((?:[^"\\\\]|\\\\.)*)"/', $body, $m)) {
            $answer['error'] = stripslashes($m[1]);
        }
        return $answer ? $answer : null;
    }

    // Reader interface for Wire::pump().

    public function more()
    {
        $out = '';
        $total = count($this->requests);
        // The oldest unanswered request is the one the sidecar works on; the ones sent
        // after it wait in its input buffer and must stay within the window.
        $answered = count($this->responses);
        $ahead = 0;
        for ($i = $answered + 1; $i < $this->sent; $i++) {
            $ahead += $this->sizes[$i];
        }
        while ($this->sent < $total) {
            if ($this->ff && $this->sent === $total - 1 && $answered < $total - 1) {
                // Fire-and-forget closes right after the last request: the sidecar drops
                // pipelined requests it had not started when the client goes away, so the
                // last one is sent only when all others were answered.
                break;
            }
            if ($this->sent > $answered) {
                if ($ahead + $this->sizes[$this->sent] > self::WINDOW) {
                    break;
                }
                $ahead += $this->sizes[$this->sent];
            }
            $out .= $this->requests[$this->sent];
            $this->requests[$this->sent] = '';
            $this->sent++;
        }
        return $out;
    }

    public function done()
    {
        if ($this->ff) {
            return $this->sent === count($this->requests);
        }
        return count($this->responses) === count($this->requests);
    }

    public function eof()
    {
        // A response without length runs to the end of the connection.
        if ($this->buf !== '' && count($this->responses) < count($this->requests)) {
            $this->parse(true);
        }
    }

    public function feed($bytes)
    {
        $this->buf .= $bytes;
        $this->parse(false);
    }

    private function parse($atEof)
    {
        while (count($this->responses) < count($this->requests)) {
            $end = Bytes::pos($this->buf, "\r\n\r\n");
            if ($end === false) {
                if (Bytes::len($this->buf) > 65536) {
                    throw new CometException('garbled answer from the sidecar', CometException::IO);
                }
                return;
            }
            $head = Bytes::sub($this->buf, 0, $end);
            if (!preg_match('#^HTTP/1\.[01] (\d{3})#', $head, $m)) {
                throw new CometException('garbled answer from the sidecar', CometException::IO);
            }
            $status = (int) $m[1];
            $headers = array();
            foreach (explode("\r\n", $head) as $i => $line) {
                $colon = strpos($line, ':');
                if ($i > 0 && $colon !== false) {
                    $headers[strtolower(trim(substr($line, 0, $colon)))] = trim((string) substr($line, $colon + 1));
                }
            }
            $start = $end + 4;
            if ($status === 100) {
                $this->buf = Bytes::sub($this->buf, $start);
                continue;
            }
            if (isset($headers['transfer-encoding']) && stripos($headers['transfer-encoding'], 'chunked') !== false) {
                $body = '';
                $pos = $start;
                while (true) {
                    $eol = Bytes::pos($this->buf, "\r\n", $pos);
                    if ($eol === false) {
                        return;
                    }
                    $sizeLine = Bytes::sub($this->buf, $pos, $eol - $pos);
                    $semicolon = strpos($sizeLine, ';');
                    $size = hexdec(trim($semicolon === false ? $sizeLine : substr($sizeLine, 0, $semicolon)));
                    if ($size === 0) {
                        $trailerEnd = Bytes::pos($this->buf, "\r\n", $eol + 2);
                        if ($trailerEnd === false) {
                            return;
                        }
                        $next = $trailerEnd + 2;
                        break;
                    }
                    if (Bytes::len($this->buf) < $eol + 2 + $size + 2) {
                        return;
                    }
                    $body .= Bytes::sub($this->buf, $eol + 2, $size);
                    $pos = $eol + 2 + $size + 2;
                }
            } elseif (isset($headers['content-length'])) {
                $length = (int) $headers['content-length'];
                if (Bytes::len($this->buf) < $start + $length) {
                    return;
                }
                $body = Bytes::sub($this->buf, $start, $length);
                $next = $start + $length;
            } elseif ($atEof) {
                $body = Bytes::sub($this->buf, $start);
                $next = Bytes::len($this->buf);
            } else {
                return;
            }
            $this->responses[] = array('status' => $status, 'body' => $body);
            $this->buf = Bytes::sub($this->buf, $next);
        }
    }
}

} // class_exists
