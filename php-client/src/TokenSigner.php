<?php

namespace Comet;

if (!class_exists('Comet\TokenSigner', false)) {

/**
 * Tokens for private channels: a JWT (RFC 7519) signed with HMAC-SHA256, payload
 * {"channels":[...],"exp":...,"iat":...} plus extra claims. README.md ("Tokens for
 * private channels") specifies the format for verifiers.
 * @internal
 */
class TokenSigner
{
    /**
     * @param string $secret the HMAC key
     * @param string|array $channels one channel, a comma-separated list, or an array
     * @param int|string $ttl lifetime in seconds (> 0)
     * @param array $claims extra claims; may not set channels, exp, iat
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
        $list = array();
        foreach ($channels as $channel) {
            MessageValidator::validateChannel($channel);
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
        if (!function_exists('hash_hmac')) {
            throw new CometException('comet_token needs hash_hmac() (the hash extension)', CometException::CONFIG);
        }
        $header = self::base64Url(Json::compact(array('alg' => 'HS256', 'typ' => 'JWT')));
        $body = Json::compact($payload);
        if ($body === false) {
            throw new CometException('claims cannot be encoded as JSON (invalid UTF-8?)', CometException::INVALID_ARGUMENT);
        }
        $signingInput = $header . '.' . self::base64Url($body);
        return $signingInput . '.' . self::base64Url(hash_hmac('sha256', $signingInput, $secret, true));
    }

    /** base64url without padding (RFC 7515 section 2). */
    private static function base64Url($bytes)
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }
}

} // class_exists
