<?php

namespace Comet;

if (!class_exists('Comet\TokenSigner', false)) {

/**
 * Tokens for private channels: a JWT (RFC 7519) signed with HMAC-SHA256, payload
 * {"channels":[...],"exp":...,"iat":...} plus extra claims. README.md ("Tokens for
 * private channels") and docs/protocol.md ("Tokens") specify the format.
 * @internal
 */
class TokenSigner
{
    /** The sidecar refuses a token with more channel entries than this. */
    const MAX_CHANNELS = 256;
    /** ... or longer than this, in bytes. */
    const MAX_TOKEN_BYTES = 4096;
    /** ... or whose `sub` string is longer than this. */
    const MAX_SUB_BYTES = 256;

    /**
     * @param string $secret the HMAC key
     * @param string|array $channels one entry, a comma-separated list, or an array; an
     *        entry is a channel name, a prefix ending in `*` (`private:user/7/*` covers
     *        every channel starting with `private:user/7/`), or `*` alone (every channel)
     * @param int|string $ttl lifetime in seconds (> 0)
     * @param array $claims extra claims; may not set channels, exp, iat. `sub` (the user
     *        id: an int, or a string of 1-256 bytes) and `nbf` (Unix seconds, an int not
     *        after exp) are checked, the others added as given
     * @param int|null $now the issue time (Unix seconds), null for time()
     * @return string
     * @throws CometException CONFIG, INVALID_CHANNEL, INVALID_ARGUMENT
     */
    public static function sign($secret, $channels, $ttl, array $claims = array(), $now = null)
    {
        if (!is_string($secret) || $secret === '') {
            throw new CometException('token secret must be a non-empty string', CometException::CONFIG);
        }
        if (is_string($channels)) {
            $channels = explode(',', $channels);
        }
        if (!is_array($channels) || !$channels) {
            throw new CometException('channels must be a channel name or a non-empty array of them', CometException::INVALID_CHANNEL);
        }
        if (count($channels) > self::MAX_CHANNELS) {
            throw new CometException('a token holds at most ' . self::MAX_CHANNELS . ' channels, got ' . count($channels),
                CometException::INVALID_CHANNEL);
        }
        $list = array();
        foreach ($channels as $channel) {
            self::validatePattern($channel);
            $list[] = $channel;
        }
        if (!(is_int($ttl) || (is_string($ttl) && preg_match('/^\d+\z/', $ttl))) || (int) $ttl <= 0) {
            throw new CometException('ttl must be a positive number of seconds', CometException::INVALID_ARGUMENT);
        }
        $now = $now === null ? time() : (int) $now;
        $payload = array('channels' => $list, 'exp' => $now + (int) $ttl, 'iat' => $now);
        foreach ($claims as $name => $value) {
            if (!is_string($name) || $name === '') {
                throw new CometException('claims must be an array of name => value', CometException::INVALID_ARGUMENT);
            }
            if (array_key_exists($name, $payload)) {
                throw new CometException('claim "' . $name . '" is set by comet_token itself', CometException::INVALID_ARGUMENT);
            }
            $payload[$name] = $value;
        }
        self::validateClaims($payload);
        if (!function_exists('hash_hmac')) {
            throw new CometException('comet_token needs hash_hmac() (the hash extension)', CometException::CONFIG);
        }
        $header = self::base64Url(Json::compact(array('alg' => 'HS256', 'typ' => 'JWT')));
        $body = Json::compact($payload);
        if ($body === false) {
            throw new CometException('claims cannot be encoded as JSON (invalid UTF-8?)', CometException::INVALID_ARGUMENT);
        }
        $signingInput = $header . '.' . self::base64Url($body);
        $token = $signingInput . '.' . self::base64Url(hash_hmac('sha256', $signingInput, $secret, true));
        if (strlen($token) > self::MAX_TOKEN_BYTES) {
            throw new CometException('the token is ' . strlen($token) . ' bytes, the sidecar takes at most '
                . self::MAX_TOKEN_BYTES . ' (grant a prefix ending in * instead of many names)', CometException::INVALID_ARGUMENT);
        }
        return $token;
    }

    /**
     * A channel entry of a token: a channel name, a prefix ending in `*`, or `*` alone.
     * @param mixed $pattern
     * @throws CometException INVALID_CHANNEL
     */
    public static function validatePattern($pattern)
    {
        if ($pattern === '*') {
            return;
        }
        if (!is_string($pattern)) {
            MessageValidator::validateChannel($pattern);
        }
        $isPrefix = Bytes::sub($pattern, -1) === '*';
        $name = $isPrefix ? Bytes::sub($pattern, 0, -1) : $pattern;
        if (Bytes::pos($name, '*') !== false) {
            throw new CometException('token channel "' . MessageValidator::printable($pattern)
                . '": * may only end a prefix (like private:user/7/*) or stand alone', CometException::INVALID_CHANNEL);
        }
        if (!$isPrefix) {
            MessageValidator::validateChannel($name);
            return;
        }
        try {
            MessageValidator::validateChannel($name);
        } catch (CometException $e) {
            throw new CometException('token channel prefix "' . MessageValidator::printable($pattern) . '": '
                . $e->getMessage(), CometException::INVALID_CHANNEL, $e);
        }
    }

    /**
     * The registered claims the sidecar reads: `sub` an int or a 1-256 byte string, `nbf`
     * whole Unix seconds no later than `exp` (else the token would never be valid).
     * @throws CometException INVALID_ARGUMENT
     */
    private static function validateClaims(array $payload)
    {
        if (array_key_exists('sub', $payload)) {
            $sub = $payload['sub'];
            if (!is_int($sub) && !(is_string($sub) && $sub !== '' && Bytes::len($sub) <= self::MAX_SUB_BYTES)) {
                throw new CometException('claim "sub" (the user id) must be an int or a string of 1-'
                    . self::MAX_SUB_BYTES . ' bytes', CometException::INVALID_ARGUMENT);
            }
        }
        if (array_key_exists('nbf', $payload)) {
            $nbf = $payload['nbf'];
            if (!is_int($nbf) || $nbf < 0) {
                throw new CometException('claim "nbf" must be Unix seconds (a non-negative int)', CometException::INVALID_ARGUMENT);
            }
            if ($nbf > $payload['exp']) {
                throw new CometException('claim "nbf" is after the expiry (' . $payload['exp']
                    . '): the token would never be valid', CometException::INVALID_ARGUMENT);
            }
        }
    }

    /** base64url without padding (RFC 7515 section 2). */
    private static function base64Url($bytes)
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }
}

} // class_exists
