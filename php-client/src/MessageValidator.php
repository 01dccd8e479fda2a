<?php

namespace Comet;

if (!class_exists('Comet\MessageValidator', false)) {

/**
 * The checks a message passes before anything is sent: channel and event names as
 * docs/protocol.md allows them, data as UTF-8 text within max_message_bytes, and the
 * shapes a batch entry may take.
 * @internal
 */
class MessageValidator
{
    /**
     * One batch entry, checked, in wire form.
     * @param mixed $message array('channel' => ..., 'data' => ..., 'event' => ...) ('ch' for
     *        'channel'), or array($channel, $data[, $event or array('event' => ...)])
     * @param int|string $key the entry's key, for error messages
     * @param int $maxBytes max_message_bytes
     * @return array array(channel, data text, event or '')
     * @throws CometException INVALID_ARGUMENT, INVALID_CHANNEL, INVALID_EVENT, INVALID_DATA, PAYLOAD_TOO_LARGE
     */
    public static function prepare($message, $key, $maxBytes)
    {
        if (!is_array($message)) {
            throw new CometException('batch entry ' . $key . ' must be an array', CometException::INVALID_ARGUMENT);
        }
        $options = array();
        if (array_key_exists('channel', $message) || array_key_exists('ch', $message)) {
            $channel = array_key_exists('channel', $message) ? $message['channel'] : $message['ch'];
            if (!array_key_exists('data', $message)) {
                throw new CometException('batch entry ' . $key . ' has no "data"', CometException::INVALID_ARGUMENT);
            }
            $data = $message['data'];
            $options = $message;
        } elseif (array_key_exists(0, $message) && array_key_exists(1, $message)) {
            $channel = $message[0];
            $data = $message[1];
            if (isset($message[2])) {
                $options = is_array($message[2]) ? $message[2] : array('event' => $message[2]);
            }
        } else {
            throw new CometException('batch entry ' . $key . ' needs a channel and data', CometException::INVALID_ARGUMENT);
        }
        if (is_string($options)) {
            $options = array('event' => $options);
        }
        $event = isset($options['event']) ? $options['event'] : null;
        self::validateChannel($channel);
        self::validateEvent($event);
        $text = self::encodeData($data, $maxBytes);
        return array($channel, $text, $event === null ? '' : (string) $event);
    }

    /**
     * @param mixed $channel
     * @throws CometException INVALID_CHANNEL
     */
    public static function validateChannel($channel)
    {
        if (!is_string($channel)) {
            throw new CometException('channel name must be a string, got ' . gettype($channel), CometException::INVALID_CHANNEL);
        }
        if ($channel === '') {
            throw new CometException('channel name is empty', CometException::INVALID_CHANNEL);
        }
        $length = Bytes::len($channel);
        if ($length > 128) {
            throw new CometException('channel name is ' . $length . ' bytes, at most 128 allowed', CometException::INVALID_CHANNEL);
        }
        if (!preg_match('#^[A-Za-z0-9_.:/=+\-]+\z#', $channel)) {
            throw new CometException('channel name "' . self::printable($channel)
                . '" has characters outside A-Z a-z 0-9 _ . : / = + -', CometException::INVALID_CHANNEL);
        }
    }

    /**
     * @param mixed $event null or '' for none
     * @throws CometException INVALID_EVENT
     */
    public static function validateEvent($event)
    {
        if ($event === null || $event === '') {
            return;
        }
        if (!is_string($event) || !preg_match('#^[A-Za-z0-9_.:\-]{1,64}\z#', $event)) {
            throw new CometException('event name must be 1-64 characters of A-Z a-z 0-9 _ - . :', CometException::INVALID_EVENT);
        }
    }

    /**
     * The wire form of message data: strings as they are, arrays and objects as JSON.
     * @param mixed $data
     * @param int $maxBytes
     * @return string
     * @throws CometException INVALID_DATA, PAYLOAD_TOO_LARGE
     */
    public static function encodeData($data, $maxBytes)
    {
        if (is_string($data)) {
            if (!Bytes::isUtf8($data)) {
                throw new CometException('data is not valid UTF-8', CometException::INVALID_DATA);
            }
            $text = $data;
        } elseif (is_array($data) || is_object($data)) {
            $text = Json::compact($data);
            if ($text === false) {
                throw new CometException('data cannot be encoded as JSON: ' . Json::lastError(), CometException::INVALID_DATA);
            }
        } else {
            throw new CometException('data must be a string, array or object, got ' . gettype($data), CometException::INVALID_DATA);
        }
        $length = Bytes::len($text);
        if ($length > $maxBytes) {
            throw new CometException('data is ' . $length . ' bytes, over the limit of ' . $maxBytes
                . ' (max_message_bytes)', CometException::PAYLOAD_TOO_LARGE);
        }
        return $text;
    }

    /** At most 40 bytes of $s, non-printable bytes as '?', for error messages. */
    public static function printable($s)
    {
        $s = Bytes::len($s) > 40 ? Bytes::sub($s, 0, 40) . '...' : $s;
        return preg_replace('/[^\x21-\x7e]/', '?', $s);
    }
}

} // class_exists
