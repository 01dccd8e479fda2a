<?php

namespace Comet;

if (!class_exists('Comet\CometException', false)) {

/**
 * The one exception the client throws. getCode() is one of the constants below.
 */
class CometException extends \Exception
{
    /** Bad option value, unknown option, or nothing to publish to. */
    const CONFIG = 1;
    /** Channel name empty, longer than 128 bytes, or with characters outside A-Z a-z 0-9 _ . : / = + - */
    const INVALID_CHANNEL = 2;
    /** Event name longer than 64 bytes or with characters outside A-Z a-z 0-9 _ - . : */
    const INVALID_EVENT = 3;
    /** Data not a string, array or object; not valid UTF-8; or not encodable as JSON. */
    const INVALID_DATA = 4;
    /** Data larger than max_message_bytes. */
    const PAYLOAD_TOO_LARGE = 5;
    /** Another bad argument (token ttl or claims, shape of a batch entry). */
    const INVALID_ARGUMENT = 6;
    /** Could not connect to Redis or the sidecar: nothing was sent. */
    const CONNECT = 10;
    /** No answer within the timeout: the message may or may not have been published. */
    const TIMEOUT = 11;
    /** Connection lost or garbled answer after sending: may or may not have been published. */
    const IO = 12;
    /** Redis answered with an error (e.g. wrong password, out of memory). */
    const REDIS = 13;
    /** The sidecar answered POST /pub with an error status (see getHttpStatus()). */
    const HTTP = 14;

    private $results = array();
    private $httpStatus = 0;

    /**
     * @param string $message
     * @param int $code one of the constants above
     * @param \Exception|null $previous
     * @param array $results for batches: what was confirmed before the failure
     * @param int $httpStatus the sidecar's status for HTTP errors
     */
    public function __construct($message, $code, $previous = null, array $results = array(), $httpStatus = 0)
    {
        parent::__construct($message, $code, $previous);
        $this->results = $results;
        $this->httpStatus = (int) $httpStatus;
    }

    /**
     * For publishMany(): one entry per input key, the message id when the message is
     * known to be published, null when it is not (failed, or unknown after a timeout).
     * @return array
     */
    public function getResults()
    {
        return $this->results;
    }

    /** @return int the HTTP status of a failed POST /pub, 0 otherwise */
    public function getHttpStatus()
    {
        return $this->httpStatus;
    }
}

} // class_exists
