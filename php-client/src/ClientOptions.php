<?php

namespace Comet;

if (!class_exists('Comet\ClientOptions', false)) {

/**
 * The client's options: their names, COMET_* environment variables and built-in
 * defaults, and the checks that turn what the caller or the environment gave (often
 * strings like "250ms" or "64k") into typed values.
 * @internal
 */
class ClientOptions
{
    /** Option name => environment variable giving its default. */
    private static $envNames = array(
        'redis_url' => 'COMET_REDIS_URL',
        'redis_host' => 'COMET_REDIS_HOST',
        'redis_port' => 'COMET_REDIS_PORT',
        'redis_socket' => 'COMET_REDIS_SOCKET',
        'redis_user' => 'COMET_REDIS_USER',
        'redis_password' => 'COMET_REDIS_PASSWORD',
        'redis_db' => 'COMET_REDIS_DB',
        'redis_driver' => 'COMET_REDIS_DRIVER',
        'sentinel_user' => 'COMET_SENTINEL_USER',
        'sentinel_password' => 'COMET_SENTINEL_PASSWORD',
        'persistent' => 'COMET_PERSISTENT',
        'publish_url' => 'COMET_PUBLISH_URL',
        'publish_key' => 'COMET_PUBLISH_KEY',
        // The sidecar's name for the same secret, so one environment serves both.
        'secret' => 'COMET_TOKEN_SECRET',
        'connect_timeout' => 'COMET_CONNECT_TIMEOUT',
        'timeout' => 'COMET_TIMEOUT',
        'fire_and_forget' => 'COMET_FIRE_AND_FORGET',
        'max_message_bytes' => 'COMET_MAX_MESSAGE_BYTES',
        'history_size' => 'COMET_HISTORY_SIZE',
        'key_ttl' => 'COMET_REDIS_KEY_TTL',
        // The sidecar's names too (--webhook-secret; COMET_WEBHOOK_SECRET_FILE below).
        'webhook_secret' => 'COMET_WEBHOOK_SECRET',
    );

    /** Built-in defaults. */
    private static $builtin = array(
        'redis_url' => '',
        'redis_host' => '',
        'redis_port' => 0,
        'redis_socket' => '',
        'redis_user' => '',
        'redis_password' => '',
        'redis_db' => -1,
        'redis_driver' => 'auto',
        'sentinel_user' => '',
        'sentinel_password' => '',
        'persistent' => false,
        'publish_url' => '',
        'publish_key' => '',
        'secret' => '',
        'connect_timeout' => 0.5,
        'timeout' => 0.5,
        'fire_and_forget' => false,
        'max_message_bytes' => 65536,
        'history_size' => 1000,
        'key_ttl' => 0,
        'webhook_secret' => '',
    );

    /**
     * The effective options: $options over the environment over the built-in defaults,
     * checked and normalised (durations in seconds, sizes in bytes, booleans).
     * @param array $options option name => value
     * @return array every option, typed
     * @throws CometException CONFIG for an unknown option or a bad value
     */
    public static function resolve(array $options)
    {
        $merged = self::environmentDefaults();
        foreach ($options as $name => $value) {
            if (!array_key_exists($name, self::$builtin)) {
                throw new CometException('unknown option "' . $name . '" (known: '
                    . implode(', ', array_keys(self::$builtin)) . ')', CometException::CONFIG);
            }
            $merged[$name] = $value;
        }
        return self::normalize($merged);
    }

    /**
     * Options from COMET_* environment variables (getenv, then $_SERVER / $_ENV for
     * Apache SetEnv and FPM env[]), over the built-in defaults. Raw strings, not yet checked.
     * @return array
     */
    public static function environmentDefaults()
    {
        $out = self::$builtin;
        foreach (self::$envNames as $name => $env) {
            $value = getenv($env);
            if ($value === false && isset($_SERVER[$env]) && is_string($_SERVER[$env])) {
                $value = $_SERVER[$env];
            }
            if ($value === false && isset($_ENV[$env]) && is_string($_ENV[$env])) {
                $value = $_ENV[$env];
            }
            if ($value !== false && $value !== '') {
                $out[$name] = $value;
            }
        }
        if ($out['webhook_secret'] === '') {
            $file = getenv('COMET_WEBHOOK_SECRET_FILE');
            if ($file !== false && $file !== '' && is_readable($file)) {
                $out['webhook_secret'] = rtrim((string) file_get_contents($file), "\r\n");
            }
        }
        // COMET_SECRET: the name before the sidecar verified tokens; still read.
        if ($out['secret'] === '') {
            $legacy = getenv('COMET_SECRET');
            if ($legacy !== false && $legacy !== '') {
                $out['secret'] = $legacy;
            }
        }
        return $out;
    }

    /**
     * A boolean option: true/false, 1/0, or the strings 1, true, yes, on / 0, false, no, off, ''.
     * @param mixed $v
     * @param string $name the option, for the error message
     * @return bool
     * @throws CometException CONFIG
     */
    public static function toBool($v, $name)
    {
        if (is_bool($v)) {
            return $v;
        }
        if (is_int($v)) {
            return $v !== 0;
        }
        $s = strtolower(trim((string) $v));
        if (in_array($s, array('1', 'true', 'yes', 'on'), true)) {
            return true;
        }
        if (in_array($s, array('0', 'false', 'no', 'off', ''), true)) {
            return false;
        }
        throw new CometException('option "' . $name . '" must be true or false', CometException::CONFIG);
    }

    private static function normalize(array $o)
    {
        foreach (array('redis_url', 'redis_host', 'redis_socket', 'redis_user', 'redis_password',
                     'publish_url', 'publish_key', 'secret', 'webhook_secret', 'redis_driver', 'sentinel_user', 'sentinel_password') as $name) {
            if ($o[$name] === null || $o[$name] === false) {
                $o[$name] = '';
            }
            if (!is_string($o[$name])) {
                throw new CometException('option "' . $name . '" must be a string', CometException::CONFIG);
            }
        }
        $o['redis_driver'] = strtolower($o['redis_driver']);
        if (!in_array($o['redis_driver'], array('auto', 'socket', 'phpredis', 'predis'), true)) {
            throw new CometException('redis_driver must be auto, socket, phpredis or predis', CometException::CONFIG);
        }
        $o['redis_port'] = self::toInt($o['redis_port'], 'redis_port', 0, 65535);
        $o['redis_db'] = self::toInt($o['redis_db'], 'redis_db', -1, 1000000);
        $o['persistent'] = self::toBool($o['persistent'], 'persistent');
        $o['fire_and_forget'] = self::toBool($o['fire_and_forget'], 'fire_and_forget');
        $o['connect_timeout'] = self::toSeconds($o['connect_timeout'], 'connect_timeout');
        $o['timeout'] = self::toSeconds($o['timeout'], 'timeout');
        $o['max_message_bytes'] = self::toSize($o['max_message_bytes'], 'max_message_bytes');
        $o['history_size'] = self::toInt($o['history_size'], 'history_size', 1, PHP_INT_MAX);
        $ttl = self::toSeconds($o['key_ttl'], 'key_ttl', true);
        $o['key_ttl'] = $ttl > 0 ? max(1, (int) ceil($ttl)) : 0;
        if ($o['publish_key'] !== '' && preg_match('/[\x00-\x1f\x7f]/', $o['publish_key'])) {
            throw new CometException('publish_key has control characters', CometException::CONFIG);
        }
        return $o;
    }

    private static function toInt($v, $name, $min, $max)
    {
        if (is_string($v) && preg_match('/^-?\d+\z/', trim($v))) {
            $v = (int) trim($v);
        }
        if (!is_int($v) || $v < $min || $v > $max) {
            throw new CometException('option "' . $name . '" must be a whole number from ' . $min
                . ($max === PHP_INT_MAX ? ' up' : ' to ' . $max), CometException::CONFIG);
        }
        return $v;
    }

    /** Seconds as a number, or a duration like 250ms, 2s, 5m, 1h. */
    private static function toSeconds($v, $name, $allowZero = false)
    {
        if (is_int($v) || is_float($v)) {
            $seconds = (float) $v;
        } elseif (is_string($v) && preg_match('/^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*\z/', $v, $m)) {
            $scale = array('ms' => 0.001, 's' => 1, 'm' => 60, 'h' => 3600);
            $seconds = (float) $m[1] * (isset($m[2]) && $m[2] !== '' ? $scale[$m[2]] : 1);
        } else {
            throw new CometException('option "' . $name . '" must be seconds (0.5) or a duration (500ms, 2s)', CometException::CONFIG);
        }
        if ($seconds < 0 || (!$allowZero && $seconds <= 0)) {
            throw new CometException('option "' . $name . '" must be ' . ($allowZero ? 'zero or more' : 'more than zero'), CometException::CONFIG);
        }
        return $seconds;
    }

    /** Bytes as a number, or a size like 64k, 1m (as the sidecar's --max-message-bytes). */
    private static function toSize($v, $name)
    {
        if (is_int($v)) {
            $bytes = $v;
        } elseif (is_string($v) && preg_match('/^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib)?\s*\z/i', $v, $m)) {
            $unit = isset($m[2]) ? strtolower($m[2]) : '';
            $scale = $unit === '' || $unit === 'b' ? 1 : ($unit[0] === 'k' ? 1024 : 1048576);
            $bytes = (int) $m[1] * $scale;
        } else {
            throw new CometException('option "' . $name . '" must be a size in bytes (65536, 64k)', CometException::CONFIG);
        }
        if ($bytes < 1) {
            throw new CometException('option "' . $name . '" must be at least 1', CometException::CONFIG);
        }
        return $bytes;
    }
}

} // class_exists
