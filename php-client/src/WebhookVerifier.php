<?php

namespace Comet;

if (!class_exists('Comet\WebhookVerifier', false)) {

/**
 * The app's side of --webhook-url (docs/protocol.md, "Webhooks"): checks that a POST
 * came from a sidecar holding the shared secret, unchanged and recently, and decodes its
 * events. X-Comet-Signature is "sha256=" + hex HMAC-SHA256(secret, timestamp . "." . body)
 * with X-Comet-Timestamp (Unix seconds) as the timestamp.
 * @internal
 */
class WebhookVerifier
{
    /** Seconds a request's timestamp may be away from the clock (replays beyond it are refused). */
    const TOLERANCE = 300;

    /**
     * @param string $secret the sidecar's --webhook-secret
     * @param string $body the raw request body
     * @param array $headers name => value, any case; or $_SERVER-style HTTP_X_COMET_* keys
     * @param int $now Unix seconds
     * @return array array('id' => ..., 'time_ms' => ..., 'events' => array(...))
     * @throws CometException CONFIG without a secret or ext/json, INVALID_ARGUMENT when
     *         the request is not a valid, signed, recent webhook (the message says why)
     */
    public static function verify($secret, $body, array $headers, $now)
    {
        if (!is_string($secret) || $secret === '') {
            throw new CometException('no webhook secret configured (option "webhook_secret" or COMET_WEBHOOK_SECRET)',
                CometException::CONFIG);
        }
        if (!function_exists('json_decode')) {
            throw new CometException('verifying webhooks needs ext/json', CometException::CONFIG);
        }
        if (!is_string($body)) {
            throw new CometException('no webhook body', CometException::INVALID_ARGUMENT);
        }
        $signature = self::header($headers, 'X-Comet-Signature');
        $timestamp = self::header($headers, 'X-Comet-Timestamp');
        if ($signature === null || $timestamp === null) {
            throw new CometException('not a webhook request: no X-Comet-Signature / X-Comet-Timestamp',
                CometException::INVALID_ARGUMENT);
        }
        if (!preg_match('/^\d{1,12}\z/', $timestamp)) {
            throw new CometException('bad X-Comet-Timestamp', CometException::INVALID_ARGUMENT);
        }
        $expected = 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
        // Constant time: a byte-by-byte compare would tell an attacker how much matched.
        if (!self::equals($expected, $signature)) {
            throw new CometException('webhook signature does not match', CometException::INVALID_ARGUMENT);
        }
        // Checked after the signature, so that the timestamp compared is the signed one.
        if (abs($now - (int) $timestamp) > self::TOLERANCE) {
            throw new CometException('webhook timestamp is more than ' . self::TOLERANCE
                . ' s from this clock (a replay, or a clock off)', CometException::INVALID_ARGUMENT);
        }
        $batch = json_decode($body, true);
        if (!is_array($batch) || !isset($batch['events']) || !is_array($batch['events'])) {
            throw new CometException('webhook body is not a batch of events', CometException::INVALID_ARGUMENT);
        }
        $id = self::header($headers, 'X-Comet-Webhook-Id');
        return array(
            'id' => $id === null ? '' : $id,
            'time_ms' => isset($batch['time_ms']) ? $batch['time_ms'] : 0,
            'events' => $batch['events'],
        );
    }

    /**
     * The request's headers as this SAPI shows them: $_SERVER's HTTP_* entries (every
     * SAPI), and getallheaders() where it exists (Apache, FPM, the built-in server).
     * @return array
     */
    public static function requestHeaders()
    {
        $headers = array();
        foreach ($_SERVER as $name => $value) {
            if (is_string($value) && strncmp($name, 'HTTP_', 5) === 0) {
                $headers[$name] = $value;
            }
        }
        if (function_exists('getallheaders')) {
            $all = getallheaders();
            if (is_array($all)) {
                $headers = array_merge($headers, $all);
            }
        }
        return $headers;
    }

    /** A header by its name, case-insensitive, also as $_SERVER's HTTP_NAME; null when absent. */
    private static function header(array $headers, $name)
    {
        $server = 'HTTP_' . strtoupper(str_replace('-', '_', $name));
        foreach ($headers as $key => $value) {
            if (is_string($key) && (strcasecmp($key, $name) === 0 || $key === $server)) {
                return is_array($value) ? (string) reset($value) : trim((string) $value);
            }
        }
        return null;
    }

    private static function equals($known, $given)
    {
        return hash_equals($known, (string) $given);  // PHP 5.6+
    }
}

} // class_exists
