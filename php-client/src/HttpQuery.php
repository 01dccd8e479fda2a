<?php

namespace Comet;

if (!class_exists('Comet\HttpQuery', false)) {

/**
 * One GET to the sidecar's publish listener (or the public one, with publish_key) whose
 * answer is JSON: the presence queries (docs/protocol.md, "Queries"). Also the reader
 * that Wire::pump() feeds.
 * @internal
 */
class HttpQuery
{
    /** Answers larger than this are refused (a members list of 10,000 is well below). */
    const MAX_ANSWER_BYTES = 16777216;

    private $out;
    private $buf = '';
    private $status = 0;
    private $body = null;
    private $length = -1;  // Content-Length, -1 until known or when absent

    private function __construct($out)
    {
        $this->out = $out;
    }

    /**
     * @param array $target Targets::parsePublishUrl()
     * @param array $options the client's (timeouts, publish_key)
     * @param string $path e.g. /presence/presence%3Aroom
     * @return array the decoded JSON answer
     * @throws CometException CONNECT, TIMEOUT, IO, HTTP (a non-200 answer), CONFIG (no ext/json)
     */
    public static function get(array $target, array $options, $path)
    {
        if (!function_exists('json_decode')) {
            throw new CometException('presence queries need ext/json', CometException::CONFIG);
        }
        $head = 'GET ' . $target['prefix'] . $path . " HTTP/1.1\r\n"
            . 'Host: ' . $target['host'] . "\r\n"
            . 'User-Agent: comet-php/' . Client::VERSION . "\r\n"
            . "Accept: application/json\r\n";
        if ($options['publish_key'] !== '') {
            $head .= 'X-Comet-Key: ' . $options['publish_key'] . "\r\n";
        }
        $query = new self($head . "Connection: close\r\n\r\n");
        $wire = new Wire($target['address'], $options['connect_timeout'], false, 'the sidecar');
        try {
            $wire->pump($query->more(), $query, $options['timeout']);
        } catch (CometException $e) {
            $wire->close();
            throw $e;
        }
        $wire->close();
        $answer = json_decode($query->body, true);
        if ($query->status !== 200) {
            $why = is_array($answer) && isset($answer['error']) ? ': ' . $answer['error'] : '';
            throw new CometException('sidecar refused ' . $path . ' (HTTP ' . $query->status . ')' . $why,
                CometException::HTTP, null, array(), $query->status);
        }
        if (!is_array($answer)) {
            throw new CometException('unreadable answer from the sidecar to ' . $path, CometException::IO);
        }
        return $answer;
    }

    // Reader interface for Wire::pump().

    public function more()
    {
        $out = $this->out;
        $this->out = '';
        return $out;
    }

    public function done()
    {
        return $this->body !== null;
    }

    public function eof()
    {
        if ($this->body === null && $this->status !== 0) {
            $this->body = $this->buf;  // no Content-Length: the body runs to the end
        }
    }

    public function feed($bytes)
    {
        $this->buf .= $bytes;
        if (Bytes::len($this->buf) > self::MAX_ANSWER_BYTES) {
            throw new CometException('answer from the sidecar too large', CometException::IO);
        }
        if ($this->status === 0) {
            $end = Bytes::pos($this->buf, "\r\n\r\n");
            if ($end === false) {
                return;
            }
            $head = Bytes::sub($this->buf, 0, $end);
            if (!preg_match('#^HTTP/1\.[01] (\d{3})#', $head, $m)) {
                throw new CometException('garbled answer from the sidecar', CometException::IO);
            }
            $this->status = (int) $m[1];
            $this->length = preg_match('/\r\ncontent-length:\s*(\d+)/i', $head, $m) ? (int) $m[1] : -1;
            $this->buf = Bytes::sub($this->buf, $end + 4);
        }
        if ($this->length >= 0 && Bytes::len($this->buf) >= $this->length) {
            $this->body = Bytes::sub($this->buf, 0, $this->length);
        }
    }
}

} // class_exists
