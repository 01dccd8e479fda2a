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
     * @return array|null mode (single, cluster, sentinel), host, port, socket, user,
     *         password, db, and address (tcp://... or unix://..., or the URL without
     *         credentials for cluster and sentinel); cluster and sentinel add seeds (list of
     *         array(host, port)); sentinel adds master (the master's name),
     *         sentinel_user, sentinel_password
     * @throws CometException CONFIG for a bad redis_url
     */
    public static function redisAddress(array $o)
    {
        if ($o['redis_url'] === '' && $o['redis_host'] === '' && $o['redis_socket'] === '') {
            return null;
        }
        $a = $o['redis_url'] !== '' ? self::parseRedisUrl($o['redis_url'])
            : array('mode' => 'single', 'host' => '127.0.0.1', 'port' => 6379, 'socket' => '', 'user' => '',
                'password' => '', 'db' => 0);
        if ($a['mode'] !== 'single') {
            return self::multiNodeAddress($a, $o);
        }
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
            $a['address'] = 'tcp://' . self::hostPort($a['host'], $a['port']);
        }
        return $a;
    }

    /**
     * A node's address as host:port, with an IPv6 host in brackets.
     * @param string $host
     * @param int $port
     * @return string
     */
    public static function hostPort($host, $port)
    {
        return (strpos($host, ':') !== false ? '[' . $host . ']' : $host) . ':' . $port;
    }

    /**
     * The address of one data node of a cluster or sentinel set-up (what SocketDriver
     * connects to), with the credentials and database of $a.
     * @param array $a a cluster or sentinel address (redisAddress())
     * @param string $host
     * @param int $port
     * @return array
     */
    public static function nodeAddress(array $a, $host, $port)
    {
        return array('mode' => 'single', 'host' => $host, 'port' => (int) $port, 'socket' => '',
            'user' => $a['user'], 'password' => $a['password'], 'db' => $a['db'],
            'address' => 'tcp://' . self::hostPort($host, $port), 'probe' => true);
    }

    /** The redis_* options over a redis+cluster:// or redis+sentinel:// URL. */
    private static function multiNodeAddress(array $a, array $o)
    {
        $scheme = 'redis+' . $a['mode'] . '://';
        if ($o['redis_socket'] !== '' || $o['redis_host'] !== '' || $o['redis_port'] > 0) {
            throw new CometException('redis_host, redis_port and redis_socket cannot be combined with a ' . $scheme
                . ' URL: list the nodes in the URL', CometException::CONFIG);
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
        if ($a['mode'] === 'cluster' && $a['db'] !== 0) {
            throw new CometException('Redis Cluster has only database 0 (redis_db or the URL asks for '
                . $a['db'] . ')', CometException::CONFIG);
        }
        if ($a['mode'] === 'sentinel') {
            if (isset($o['sentinel_user']) && $o['sentinel_user'] !== '') {
                $a['sentinel_user'] = $o['sentinel_user'];
            }
            if (isset($o['sentinel_password']) && $o['sentinel_password'] !== '') {
                $a['sentinel_password'] = $o['sentinel_password'];
            }
        }
        $nodes = array();
        foreach ($a['seeds'] as $seed) {
            $nodes[] = self::hostPort($seed[0], $seed[1]);
        }
        $a['address'] = $scheme . implode(',', $nodes) . ($a['mode'] === 'sentinel' ? '/' . rawurlencode($a['master']) : '');
        return $a;
    }

    /**
     * Parses a Redis URL: redis://[[user]:password@]host[:port][/db] or
     * unix://[[user]:password@]/path/redis.sock[?db=N] (the sidecar's forms), and
     * redis+cluster://[[user]:password@]host:port[,host:port...][?options] and
     * redis+sentinel://[[user]:password@]host:port[,host:port...]/MASTER_NAME[?options].
     * @param string $url
     * @return array mode (single, cluster, sentinel), host, port, socket, user, password,
     *         db; cluster and sentinel add seeds, sentinel adds master, sentinel_user,
     *         sentinel_password
     * @throws CometException CONFIG
     */
    public static function parseRedisUrl($url)
    {
        $url = (string) $url;
        $out = array('mode' => 'single', 'host' => '127.0.0.1', 'port' => 6379, 'socket' => '', 'user' => '',
            'password' => '', 'db' => 0);
        if (preg_match('#^redis\+(cluster|sentinel)://#i', $url, $m)) {
            return self::parseMultiNodeUrl(strtolower($m[1]), Bytes::sub($url, Bytes::len($m[0])), $url, $out);
        }
        if (preg_match('#^unix://(?:([^@]*)@)?(/[^?]*)(?:\?db=(\d+))?\z#', $url, $m)) {
            self::takeCredentials(isset($m[1]) ? $m[1] : '', $out);
            $out['socket'] = $m[2];
            $out['host'] = '';
            $out['db'] = isset($m[3]) && $m[3] !== '' ? (int) $m[3] : 0;
            return $out;
        }
        if (!preg_match('#^redis://(?:(.*)@)?(\[[0-9A-Fa-f:.]+\]|[^:/\[\]@]*)(?::(\d+))?(?:/(\d*))?\z#', $url, $m)) {
            throw new CometException('bad Redis URL "' . self::redact($url)
                . '": expected redis://[[user]:password@]host[:port][/db], unix:///path/redis.sock[?db=N], '
                . 'redis+cluster://host:port[,host:port...] or redis+sentinel://host:port[,host:port...]/MASTER_NAME',
                CometException::CONFIG);
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
     * redis+cluster:// and redis+sentinel:// after the scheme.
     * Options (the query, as the sidecar's parser takes them): db=N (sentinel; a cluster
     * has only 0), sentinel_username=, sentinel_password= (sentinel: AUTH for the
     * sentinels; the credentials before @ are the data nodes').
     */
    private static function parseMultiNodeUrl($mode, $rest, $url, array $out)
    {
        $scheme = 'redis+' . $mode . '://';
        $bad = function ($why) use ($url, $scheme, $mode) {
            return new CometException('bad Redis URL "' . Targets::redact($url) . '": ' . $why . '; expected ' . $scheme
                . '[[user]:password@]host:port[,host:port...]' . ($mode === 'sentinel' ? '/MASTER_NAME' : '')
                . ($mode === 'sentinel' ? '[?db=N&sentinel_password=...]' : ''), CometException::CONFIG);
        };
        $out['mode'] = $mode;
        $out['seeds'] = array();
        if ($mode === 'sentinel') {
            $out['master'] = '';
            $out['sentinel_user'] = '';
            $out['sentinel_password'] = '';
        }
        $query = '';
        $q = strpos($rest, '?');
        if ($q !== false) {
            $query = (string) substr($rest, $q + 1);
            $rest = (string) substr($rest, 0, $q);
        }
        $at = strrpos($rest, '@');
        if ($at !== false) {
            self::takeCredentials((string) substr($rest, 0, $at), $out);
            $rest = (string) substr($rest, $at + 1);
        }
        $path = '';
        $slash = strpos($rest, '/');
        if ($slash !== false) {
            $path = (string) substr($rest, $slash + 1);
            $rest = (string) substr($rest, 0, $slash);
        }
        if ($rest === '') {
            throw $bad('no host');
        }
        foreach (explode(',', $rest) as $node) {
            // The port is required (as the sidecar's parser requires it): sentinels listen
            // on 26379, cluster nodes anywhere.
            if (!preg_match('#^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d+)\z#', $node, $m)) {
                throw $bad('bad host:port "' . $node . '" (the port is required)');
            }
            $port = (int) $m[2];
            if ($port < 1 || $port > 65535) {
                throw $bad('bad port in "' . $node . '"');
            }
            $out['seeds'][] = array($m[1][0] === '[' ? substr($m[1], 1, -1) : $m[1], $port);
        }
        if ($mode === 'sentinel') {
            $name = rawurldecode($path);
            if ($path === '' || $name === '' || preg_match('/[\x00-\x1f\x7f\/]/', $name)) {
                throw $bad($path === '' ? 'no master name' : 'bad master name');
            }
            $out['master'] = $name;
        } elseif ($path !== '' && $path !== '0') {
            throw $bad('a path is not allowed (Redis Cluster has only database 0)');
        }
        if ($query !== '') {
            foreach (explode('&', $query) as $pair) {
                $eq = strpos($pair, '=');
                $key = $eq === false ? $pair : (string) substr($pair, 0, $eq);
                $value = $eq === false ? '' : rawurldecode((string) substr($pair, $eq + 1));
                if ($key === 'db' && $mode === 'sentinel') {
                    if (!preg_match('/^\d{1,7}\z/', $value)) {
                        throw $bad('db must be a number');
                    }
                    $out['db'] = (int) $value;
                } elseif ($key === 'sentinel_password' && $mode === 'sentinel') {
                    $out['sentinel_password'] = $value;
                } elseif ($key === 'sentinel_username' && $mode === 'sentinel') {
                    $out['sentinel_user'] = $value;
                } else {
                    throw $bad('unknown option "' . $key . '" (' . ($mode === 'sentinel'
                        ? 'known: db, sentinel_username, sentinel_password' : 'a redis+cluster:// URL takes none') . ')');
                }
            }
        }
        $out['host'] = $out['seeds'][0][0];
        $out['port'] = $out['seeds'][0][1];
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

    /**
     * A URL with its credentials (and a sentinel_password option) hidden, for error messages.
     * @param string $url
     * @return string
     */
    public static function redact($url)
    {
        $url = preg_replace('#//[^/@]*@#', '//***@', (string) $url);
        return preg_replace('#([?&]sentinel_password=)[^&]*#', '$1***', $url);
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
