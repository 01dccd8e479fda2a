<?php

namespace Comet;

if (!class_exists('Comet\Targets', false)) {

/**
 * Where messages go: the Redis address (from redis_url and the redis_* options that
 * override parts of it) and the sidecar's publish_url, parsed into what the drivers and
 * HttpPublisher connect to.
 * @internal
 */
class Targets
{
    /**
     * The Redis address the options name, or null when they name none.
     * @param array $o normalised options (ClientOptions::resolve())
     * @return array|null host, port, socket, user, password, db, and address (tcp://... or unix://...)
     * @throws CometException CONFIG for a bad redis_url
     */
    public static function redisAddress(array $o)
    {
        if ($o['redis_url'] === '' && $o['redis_host'] === '' && $o['redis_socket'] === '') {
            return null;
        }
        $a = $o['redis_url'] !== '' ? self::parseRedisUrl($o['redis_url'])
            : array('host' => '127.0.0.1', 'port' => 6379, 'socket' => '', 'user' => '', 'password' => '', 'db' => 0);
        if ($o['redis_socket'] !== '') {
            $a['socket'] = $o['redis_socket'];
        } elseif ($o['redis_host'] !== '') {
            $a['host'] = $o['redis_host'];
            $a['socket'] = '';
        }
        if ($o['redis_port'] > 0) {
            $a['port'] = $o['redis_port'];
        }
        if ($o['redis_user'] !== '') {
            $a['user'] = $o['redis_user'];
        }
        if ($o['redis_password'] !== '') {
            $a['password'] = $o['redis_password'];
        }
        if ($o['redis_db'] >= 0) {
            $a['db'] = $o['redis_db'];
        }
        if ($a['socket'] !== '') {
            $a['address'] = 'unix://' . $a['socket'];
        } else {
            $host = strpos($a['host'], ':') !== false ? '[' . $a['host'] . ']' : $a['host'];
            $a['address'] = 'tcp://' . $host . ':' . $a['port'];
        }
        return $a;
    }

    /**
     * Parses a Redis URL like the sidecar does: redis://[[user]:password@]host[:port][/db]
     * or unix://[[user]:password@]/path/redis.sock[?db=N].
     * @param string $url
     * @return array host, port, socket, user, password, db
     * @throws CometException CONFIG
     */
    public static function parseRedisUrl($url)
    {
        $out = array('host' => '127.0.0.1', 'port' => 6379, 'socket' => '', 'user' => '', 'password' => '', 'db' => 0);
        if (preg_match('#^unix://(?:([^@]*)@)?(/[^?]*)(?:\?db=(\d+))?\z#', $url, $m)) {
            self::takeCredentials(isset($m[1]) ? $m[1] : '', $out);
            $out['socket'] = $m[2];
            $out['host'] = '';
            $out['db'] = isset($m[3]) && $m[3] !== '' ? (int) $m[3] : 0;
            return $out;
        }
        if (!preg_match('#^redis://(?:(.*)@)?(\[[0-9A-Fa-f:.]+\]|[^:/\[\]@]*)(?::(\d+))?(?:/(\d*))?\z#', $url, $m)) {
            throw new CometException('bad Redis URL "' . self::redact($url)
                . '": expected redis://[[user]:password@]host[:port][/db] or unix:///path/redis.sock[?db=N]', CometException::CONFIG);
        }
        self::takeCredentials($m[1], $out);
        if ($m[2] !== '') {
            $out['host'] = $m[2][0] === '[' ? substr($m[2], 1, -1) : $m[2];
        }
        if (isset($m[3]) && $m[3] !== '') {
            $out['port'] = (int) $m[3];
            if ($out['port'] < 1 || $out['port'] > 65535) {
                throw new CometException('bad port in Redis URL', CometException::CONFIG);
            }
        }
        if (isset($m[4]) && $m[4] !== '') {
            $out['db'] = (int) $m[4];
        }
        return $out;
    }

    /**
     * Parses publish_url, http[s]://host[:port][/prefix].
     * @param string $url
     * @return array address (tcp:// or tls://), host (the Host header), prefix (path before /pub), tls
     * @throws CometException CONFIG
     */
    public static function parsePublishUrl($url)
    {
        $parts = @parse_url($url);
        if (!is_array($parts) || !isset($parts['scheme']) || !isset($parts['host'])
            || !in_array(strtolower($parts['scheme']), array('http', 'https'), true)) {
            throw new CometException('bad publish_url "' . self::redact($url)
                . '": expected http://host[:port][/prefix]', CometException::CONFIG);
        }
        $tls = strtolower($parts['scheme']) === 'https';
        $host = $parts['host'];
        $bare = trim($host, '[]');
        $port = isset($parts['port']) ? (int) $parts['port'] : ($tls ? 443 : 80);
        $defaultPort = $port === ($tls ? 443 : 80);
        $hostHeader = (strpos($bare, ':') !== false ? '[' . $bare . ']' : $bare) . ($defaultPort ? '' : ':' . $port);
        $address = ($tls ? 'tls://' : 'tcp://') . (strpos($bare, ':') !== false ? '[' . $bare . ']' : $bare) . ':' . $port;
        $prefix = isset($parts['path']) ? rtrim($parts['path'], '/') : '';
        return array('address' => $address, 'host' => $hostHeader, 'prefix' => $prefix, 'tls' => $tls);
    }

    /** A URL with its credentials hidden, for error messages. */
    private static function redact($url)
    {
        return preg_replace('#//[^/@]*@#', '//***@', (string) $url);
    }

    /** [user:]password, percent-decoded, into $out. */
    private static function takeCredentials($userinfo, array &$out)
    {
        if ($userinfo === '') {
            return;
        }
        $colon = strpos($userinfo, ':');
        if ($colon === false) {
            $out['password'] = rawurldecode($userinfo);
        } else {
            $out['user'] = rawurldecode(substr($userinfo, 0, $colon));
            $out['password'] = rawurldecode((string) substr($userinfo, $colon + 1));
        }
    }
}

} // class_exists
