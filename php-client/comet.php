<?php
/**
 * Comet Sidecar PHP client: push messages to browsers through the Comet Sidecar, issue
 * tokens for private channels, and answer the sidecar's --auth-url questions.
 *
 * GENERATED FILE, do not edit: php-client/tools/build.php joins the sources in
 * php-client/src/ (one class per file, and comet_functions.php) into this file. Edit
 * those, then run `php php-client/tools/build.php` (tests/php fails while this file is
 * not what the sources build).
 *
 * One includable file with no required extension, for PHP 5.6 to 8.x:
 *
 *     require __DIR__ . '/comet.php';
 *     comet_configure(array('redis_url' => 'redis://127.0.0.1:6379'));
 *     comet_publish('news', array('title' => 'Hello'));
 *
 * Two APIs over the same code:
 *   - functions comet_configure(), comet_publish(), comet_publish_many(), comet_token(),
 *     comet_authorize(), comet_last_error(): they return false on failure, and
 *     comet_last_error() says why;
 *   - class Comet\Client (the Composer package autoloads it from src/): the same
 *     operations, throwing Comet\CometException on failure.
 *
 * Publishing runs the sidecar's shared Lua script (bridge/lua/publish.lua, embedded below)
 * on Redis with EVALSHA, falling back to EVAL on NOSCRIPT, over the built-in RESP client
 * (stream_socket_client), phpredis or Predis. Without Redis, or when Redis cannot be
 * reached, it posts to the sidecar's POST /pub/<channel> (plain sockets, no cURL).
 * README.md beside this file documents the options, errors and the token format.
 *
 * Each class is declared only when it does not exist yet, and the functions only when
 * comet_publish() does not: including this file twice, or next to the Composer package,
 * declares nothing twice.
 *
 * Keep the sources PHP 5.6 compatible: no scalar or return type declarations, no ??, no
 * <=>, no PHP 7 syntax (tests/php checks them with php-parser in PHP 5 mode).
 */

namespace Comet {

// ---- src/CometException.php ----

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

// ---- src/Client.php ----

if (!class_exists('Comet\Client', false)) {

/**
 * Publishes messages, issues tokens and answers the sidecar's --auth-url questions.
 * Cheap to construct; connects on first use and keeps the connection until close() or
 * the end of the request.
 *
 * The work is done by small helpers: ClientOptions (options and environment), Targets
 * (Redis address, publish URL), MessageValidator, TokenSigner, Authorizer, RedisPublisher
 * (with RedisDrivers choosing phpredis, Predis or the built-in client) and HttpPublisher.
 */
class Client
{
    const VERSION = '0.1.0';

    /** bridge/lua/publish.lua, byte for byte (see PublishScript). */
    const PUBLISH_SCRIPT = PublishScript::LUA;

    /**
     * The sidecar's publish listener (--publish-listen, default 127.0.0.1:8081): used when
     * neither Redis nor publish_url is set. It is the only listener that takes a publish
     * without a key; the public one (--listen, 8080) needs publish_key.
     */
    const DEFAULT_PUBLISH_URL = 'http://127.0.0.1:8081';

    private $options;
    /** @var array|null parsed Redis address, null = no Redis */
    private $redisAddress = null;
    /** @var array|null parsed publish_url, null = no HTTP publishing */
    private $httpTarget = null;
    /** @var RedisPublisher|null null = no Redis */
    private $redis = null;
    /** @var RedisDrivers|null the publisher's connections, for the presence queries */
    private $redisDrivers = null;
    private $lastResults = array();

    /**
     * @param array $options see README.md; unset options come from COMET_* environment
     *                       variables, else built-in defaults
     * @throws CometException CONFIG for unknown options or bad values
     */
    public function __construct(array $options = array())
    {
        $this->options = ClientOptions::resolve($options);
        $this->redisAddress = Targets::redisAddress($this->options);
        $url = $this->options['publish_url'];
        if ($url === '' && $this->redisAddress === null) {
            $url = self::DEFAULT_PUBLISH_URL;
        }
        $this->httpTarget = $url === '' ? null : Targets::parsePublishUrl($url);
        if ($this->redisAddress !== null) {
            $this->redisDrivers = new RedisDrivers($this->redisAddress, $this->options);
            $this->redis = new RedisPublisher($this->redisDrivers, $this->options);
        }
    }

    public function __destruct()
    {
        $this->close();
    }

    /**
     * Options from COMET_* environment variables (getenv, then $_SERVER / $_ENV for
     * Apache SetEnv and FPM env[]), over the built-in defaults. Raw strings, not yet checked.
     * @return array
     */
    public static function environmentDefaults()
    {
        return ClientOptions::environmentDefaults();
    }

    /**
     * The effective value of an option (after environment defaults and normalisation).
     * @param string $name
     * @return mixed
     * @throws CometException CONFIG for an unknown option
     */
    public function getOption($name)
    {
        if (!array_key_exists($name, $this->options)) {
            throw new CometException('unknown option "' . $name . '"', CometException::CONFIG);
        }
        return $this->options[$name];
    }

    /** @return array all effective options */
    public function getOptions()
    {
        return $this->options;
    }

    /** @return string 'redis', 'http' or 'redis+http' (Redis first, HTTP when Redis cannot be reached) */
    public function getTransport()
    {
        if ($this->redisAddress === null) {
            return 'http';
        }
        return $this->httpTarget === null ? 'redis' : 'redis+http';
    }

    /**
     * Publishes one message.
     *
     * @param string $channel 1-128 bytes of A-Z a-z 0-9 _ . : / = + -
     * @param string|array|object $data strings are sent as they are (must be UTF-8);
     *        arrays and objects are JSON-encoded
     * @param array|string $options 'event' => name, 'fire_and_forget' => bool; a string
     *        is taken as the event name
     * @return int|bool the message id; true in fire-and-forget mode (id unknown)
     * @throws CometException
     */
    public function publish($channel, $data, $options = array())
    {
        $results = $this->publishMany(array(array($channel, $data, $options)), self::fireAndForgetOf($options));
        return $results[0];
    }

    /**
     * Publishes a batch in one round trip (Redis pipeline, or pipelined HTTP requests).
     * Everything is validated before anything is sent.
     *
     * @param array $messages entries like array('channel' => 'a', 'data' => ..., 'event' => 'x')
     *        ('ch' works for 'channel') or array('a', $data) / array('a', $data, 'event')
     *        / array('a', $data, array('event' => 'x')); keys are kept in the result
     * @param bool|null $fireAndForget null = the client's fire_and_forget option
     * @return array message ids with the keys of $messages (true values in fire-and-forget mode)
     * @throws CometException on failure; getResults() then tells which were published
     */
    public function publishMany(array $messages, $fireAndForget = null)
    {
        $this->lastResults = array();
        $prepared = array();
        foreach ($messages as $key => $message) {
            $prepared[$key] = MessageValidator::prepare($message, $key, $this->options['max_message_bytes']);
        }
        if (!$prepared) {
            return array();
        }
        $ff = $fireAndForget === null ? $this->options['fire_and_forget'] : (bool) $fireAndForget;
        if ($this->redis !== null) {
            try {
                return $this->redis->publish($prepared, $ff, $this->lastResults);
            } catch (CometException $e) {
                // Fall back only when nothing reached Redis, so nothing is published twice
                // (with a cluster, part of a batch may be published on the nodes that answered).
                if ($e->getCode() !== CometException::CONNECT || $this->httpTarget === null
                    || array_filter($e->getResults(), 'is_int')) {
                    throw $e;
                }
            }
        }
        return $this->publishHttp($prepared, $ff);
    }

    /**
     * Details of the last publish() / publishMany(): per input key, array('ch' => ...,
     * 'id' => ..., 'epoch' => ..., 'prev' => ...) (empty in fire-and-forget mode).
     * @return array
     */
    public function getLastResults()
    {
        return $this->lastResults;
    }

    /**
     * A JWT (HS256, signed with the `secret` option) granting the listed channels until
     * time() + $ttl. Payload: {"channels":[...],"exp":...,"iat":...} plus $claims.
     *
     * @param string|array $channels one entry, a comma-separated list, or an array (at
     *        most 256); an entry is a channel name, a prefix ending in `*`
     *        ('private:user/7/*' covers every channel starting with 'private:user/7/'),
     *        or '*' alone (every channel)
     * @param int $ttl lifetime in seconds (> 0)
     * @param array $claims extra claims; may not set channels, exp, iat. 'sub' => the user
     *        id (an int or a 1-256 byte string; presence uses it), 'nbf' => not before (Unix
     *        seconds, an int not after exp); others are added as given
     * @return string
     * @throws CometException CONFIG without a secret, INVALID_CHANNEL, INVALID_ARGUMENT
     */
    public function token($channels, $ttl, array $claims = array())
    {
        $secret = (string) $this->options['secret'];
        if ($secret === '') {
            throw new CometException('no secret configured (option "secret" or COMET_TOKEN_SECRET)', CometException::CONFIG);
        }
        return TokenSigner::sign($secret, $channels, $ttl, $claims, time());
    }

    /**
     * The token builder without a client. $now is the issue time (Unix seconds).
     * @param string $secret
     * @param string|array $channels
     * @param int $ttl
     * @param array $claims
     * @param int|null $now null for time()
     * @return string
     * @throws CometException CONFIG, INVALID_CHANNEL, INVALID_ARGUMENT
     */
    public static function signToken($secret, $channels, $ttl, array $claims = array(), $now = null)
    {
        return TokenSigner::sign($secret, $channels, $ttl, $claims, $now);
    }

    /**
     * Answers the sidecar's --auth-url question in the app's endpoint (docs/protocol.md,
     * "Authorization by the app"): which of the asked channels the session's user may
     * subscribe to. Static: it needs none of the client's options.
     *
     * Asked channels: $_POST['channels'] (comma-separated). The user: $_SESSION['user_id']
     * (the session is started read-only when not active). $allow($channel, $user) is called
     * for each asked channel with the user id as a string; a truthy result allows it.
     * Without a user nothing is allowed and $allow is not called (unless 'guests').
     *
     * @param callable $allow function ($channel, $user) { return bool; }
     * @param array $options
     *        'channels' => 'a,b' or array: the asked channels instead of $_POST['channels'];
     *        'session' => false: do not start the PHP session;
     *        'user' => string|int|null, or a closure returning one: instead of
     *                  $_SESSION['user_id'] (null, false and '' mean no user);
     *        'info' => array (or a closure ($user) returning one): public member info;
     *        'ttl' => 1-86400: seconds the sidecar may keep the answer (default 60);
     *        'guests' => true: ask $allow with a null user too;
     *        'send' => false: only return the answer (default: send it as the HTTP response)
     * @return array the answer body: array('allow' => [...], 'user' => '7', 'info' => [...],
     *         'ttl' => 60) (no 'user' / 'info' when there are none); for a question without
     *         valid channels array('error' => ..., 'status' => 400), sent with status 400
     * @throws CometException INVALID_ARGUMENT for bad options, CONFIG when the session
     *         cannot be started; and what $allow throws. With 'send' on, a 500 JSON error
     *         has then been sent (the sidecar refuses, fail closed)
     */
    public static function authorize($allow, array $options = array())
    {
        return Authorizer::answer($allow, $options);
    }

    /**
     * The members of a presence channel. With Redis (a Cluster too), read from Redis,
     * where every sidecar started with --redis keeps them (docs/protocol.md, "Presence
     * across sidecars (Redis)"); else (or when Redis cannot be reached and publish_url is
     * set) asked from the sidecar: GET /presence/<channel> on publish_url, else the
     * publish listener 127.0.0.1:8081 (publish_key is sent when set).
     * @param string $channel
     * @return array list of array('id' => '7', 'info' => array(...))
     * @throws CometException INVALID_CHANNEL, CONNECT, TIMEOUT, IO, REDIS, HTTP
     */
    public function presence($channel)
    {
        MessageValidator::validateChannel($channel);
        if ($this->presenceInRedis()) {
            try {
                return PresenceReader::members($this->redisDrivers, $channel);
            } catch (CometException $e) {
                if ($e->getCode() !== CometException::CONNECT || $this->httpTarget === null) {
                    throw $e;
                }
            }
        }
        $answer = HttpQuery::get($this->queryTarget(), $this->options, '/presence/' . rawurlencode($channel));
        return isset($answer['members']) && is_array($answer['members']) ? $answer['members'] : array();
    }

    /**
     * How many members presence channels have: from Redis as presence() reads it, else
     * GET /occupancy?ch=... on the sidecar.
     * @param string|array $channels one channel, or several (an array)
     * @return int|array the count for one channel; channel => count for an array
     * @throws CometException INVALID_CHANNEL, CONNECT, TIMEOUT, IO, HTTP
     */
    public function occupancy($channels)
    {
        $list = is_array($channels) ? array_values($channels) : array($channels);
        foreach ($list as $channel) {
            MessageValidator::validateChannel($channel);
        }
        $counts = array();
        if ($list && $this->presenceInRedis()) {
            try {
                $counts = PresenceReader::counts($this->redisDrivers, $list);
            } catch (CometException $e) {
                if ($e->getCode() !== CometException::CONNECT || $this->httpTarget === null) {
                    throw $e;
                }
            }
        }
        if ($list && !$counts) {
            $answer = HttpQuery::get($this->queryTarget(), $this->options,
                '/occupancy?ch=' . rawurlencode(implode(',', $list)));
            foreach ($list as $channel) {
                $counts[$channel] = isset($answer['channels'][$channel]['members'])
                    ? (int) $answer['channels'][$channel]['members'] : 0;
            }
        }
        return is_array($channels) ? $counts : $counts[$channels];
    }

    /**
     * Verifies a webhook request from the sidecar (--webhook-url, docs/protocol.md,
     * "Webhooks") with the webhook_secret option, and decodes it.
     * @param string|null $body the raw body; null reads php://input
     * @param array|null $headers name => value; null reads this request's headers
     * @param int|null $now Unix seconds, null for time()
     * @return array array('id' => batch id, 'time_ms' => ..., 'events' => array(...))
     * @throws CometException CONFIG without a secret, INVALID_ARGUMENT for a request that
     *         is not signed with it, is more than 300 s old, or is not a batch
     */
    public function verifyWebhook($body = null, $headers = null, $now = null)
    {
        return self::verifyWebhookWith($this->options['webhook_secret'], $body, $headers, $now);
    }

    /**
     * verifyWebhook() with a given secret, without a client.
     * @param string $secret
     * @param string|null $body
     * @param array|null $headers
     * @param int|null $now
     * @return array
     * @throws CometException CONFIG, INVALID_ARGUMENT
     */
    public static function verifyWebhookWith($secret, $body = null, $headers = null, $now = null)
    {
        return WebhookVerifier::verify((string) $secret,
            $body === null ? (string) file_get_contents('php://input') : $body,
            $headers === null ? WebhookVerifier::requestHeaders() : (array) $headers,
            $now === null ? time() : (int) $now);
    }

    /** Closes the connections this client opened (persistent ones are kept for reuse). */
    public function close()
    {
        if ($this->redis !== null) {
            $this->redis->close();
        }
    }

    /**
     * @param mixed $channel
     * @throws CometException INVALID_CHANNEL
     */
    public static function validateChannel($channel)
    {
        MessageValidator::validateChannel($channel);
    }

    /**
     * @param mixed $event null or '' for none
     * @throws CometException INVALID_EVENT
     */
    public static function validateEvent($event)
    {
        MessageValidator::validateEvent($event);
    }

    /**
     * The wire form of message data: strings as they are, arrays and objects as JSON.
     * @param mixed $data
     * @param int $maxBytes
     * @return string
     * @throws CometException INVALID_DATA, PAYLOAD_TOO_LARGE
     */
    public static function encodeData($data, $maxBytes = 65536)
    {
        return MessageValidator::encodeData($data, $maxBytes);
    }

    /** @return string the SHA-1 of the publish script, as EVALSHA wants it */
    public static function scriptSha()
    {
        return PublishScript::sha();
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
        return Targets::parseRedisUrl($url);
    }

    /**
     * @param string $s
     * @return bool whether $s is valid UTF-8
     */
    public static function isUtf8($s)
    {
        return Bytes::isUtf8($s);
    }

    /**
     * JSON without escaped slashes or Unicode.
     * @param mixed $value
     * @return string|bool false on failure
     */
    public static function jsonEncode($value)
    {
        return Json::compact($value);
    }

    /**
     * Whether presence is read from Redis: sidecars started with --redis keep it there
     * (standalone, Sentinel and Cluster: the channel's keys share its hash tag).
     */
    private function presenceInRedis()
    {
        return $this->redisDrivers !== null;
    }

    /** Where the presence queries go over HTTP: publish_url, else the publish listener. */
    private function queryTarget()
    {
        if ($this->httpTarget !== null) {
            return $this->httpTarget;
        }
        return Targets::parsePublishUrl($this->options['publish_url'] !== ''
            ? $this->options['publish_url'] : self::DEFAULT_PUBLISH_URL);
    }

    /** The per-publish fire_and_forget option, or null to use the client's. */
    private static function fireAndForgetOf($options)
    {
        if (is_array($options) && array_key_exists('fire_and_forget', $options)) {
            return ClientOptions::toBool($options['fire_and_forget'], 'fire_and_forget');
        }
        return null;
    }

    private function publishHttp(array $prepared, $ff)
    {
        $publisher = new HttpPublisher($this->httpTarget, $this->options);
        $results = $publisher->publish($prepared, $ff);
        if (!$ff) {
            foreach ($results as $key => $result) {
                $this->lastResults[$key] = $result;
            }
        }
        $ids = array();
        foreach ($prepared as $key => $unused) {
            $ids[$key] = $ff ? true : $results[$key]['id'];
        }
        return $ids;
    }
}

} // class_exists

// ---- src/ClientOptions.php ----

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

// ---- src/Targets.php ----

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

// ---- src/MessageValidator.php ----

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

// ---- src/TokenSigner.php ----

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

// ---- src/Authorizer.php ----

if (!class_exists('Comet\Authorizer', false)) {

/**
 * The app's side of --auth-url (docs/protocol.md, "Authorization by the app"): the
 * sidecar POSTs channels=a,b with the browser's Cookie header; the answer says which of
 * them the session's user may subscribe to, as
 * {"allow":[...],"user":"7","info":{...},"ttl":60}.
 * @internal
 */
class Authorizer
{
    const DEFAULT_TTL = 60;
    const MAX_TTL = 86400;
    /** The longest user id the sidecar keeps (as for a token's `sub`). */
    const MAX_USER_BYTES = 256;

    private static $optionNames = array('channels', 'session', 'user', 'info', 'ttl', 'guests', 'send');

    /**
     * Answers the sidecar's question (see Client::authorize() for the options).
     * @param callable $allow function ($channel, $user): truthy when $user may subscribe
     * @param array $options
     * @return array the answer body: array('allow' => [...], 'user' => ..., 'info' => ...,
     *         'ttl' => ...), or array('error' => ..., 'status' => 400) for a malformed question
     * @throws CometException INVALID_ARGUMENT for bad options, CONFIG when the session
     *         cannot be started; and whatever $allow or a 'user'/'info' closure throws
     */
    public static function answer($allow, array $options = array())
    {
        // Known before anything can fail, so that a failure is still answered (500).
        $send = self::boolOption($options, 'send', true);
        try {
            $answer = self::decide($allow, $options);
            $json = self::encode($answer);
        } catch (\Exception $e) {
            self::failed($send);
            throw $e;
        } catch (\Throwable $e) {
            self::failed($send);
            throw $e;
        }
        if ($send) {
            self::send(isset($answer['status']) ? $answer['status'] : 200, $json);
        }
        return $answer;
    }

    private static function decide($allow, array $options)
    {
        foreach ($options as $name => $unused) {
            if (!in_array($name, self::$optionNames, true)) {
                throw new CometException('unknown comet_authorize option "' . $name . '" (known: '
                    . implode(', ', self::$optionNames) . ')', CometException::INVALID_ARGUMENT);
            }
        }
        if (!is_callable($allow)) {
            throw new CometException('comet_authorize needs a callable: function ($channel, $user) { return bool; }',
                CometException::INVALID_ARGUMENT);
        }
        $ttl = self::ttlOption($options);
        $guests = self::boolOption($options, 'guests', false);
        $useSession = self::boolOption($options, 'session', true);
        $info = array_key_exists('info', $options) ? $options['info'] : null;
        if ($info !== null && !is_array($info) && !self::isClosure($info)) {
            throw new CometException('option "info" must be an array, a closure returning one, or null',
                CometException::INVALID_ARGUMENT);
        }

        $channels = self::askedChannels($options);
        if (is_string($channels)) {
            return array('error' => $channels, 'status' => 400);
        }
        if ($useSession) {
            self::readSession();
        }
        $user = self::user($options);
        $answer = array('allow' => array());
        // No user, no private channel: $allow is not even asked.
        if ($user === null && !$guests) {
            $answer['ttl'] = $ttl;
            return $answer;
        }
        foreach ($channels as $channel) {
            if (call_user_func($allow, $channel, $user)) {
                $answer['allow'][] = $channel;
            }
        }
        if ($user !== null) {
            $answer['user'] = $user;
        }
        if (self::isClosure($info)) {
            $info = call_user_func($info, $user);
            if ($info !== null && !is_array($info)) {
                throw new CometException('the "info" closure must return an array or null', CometException::INVALID_ARGUMENT);
            }
        }
        if ($info) {
            $answer['info'] = $info;
        }
        $answer['ttl'] = $ttl;
        return $answer;
    }

    /**
     * The channels asked about: the 'channels' option (a comma-separated string or an
     * array), else $_POST['channels'].
     * @return array|string the names (duplicates dropped), or why the question is malformed
     */
    private static function askedChannels(array $options)
    {
        if (array_key_exists('channels', $options)) {
            $asked = $options['channels'];
        } else {
            $asked = isset($_POST['channels']) ? $_POST['channels'] : null;
            if (is_array($asked)) {
                return 'channels must be one comma-separated string';
            }
        }
        if ($asked === null || $asked === '' || $asked === array()) {
            return 'no channels asked (expected a POST field channels=a,b)';
        }
        if (is_string($asked)) {
            $asked = explode(',', $asked);
        } elseif (!is_array($asked)) {
            return 'channels must be a comma-separated string or an array';
        }
        $channels = array();
        foreach ($asked as $channel) {
            try {
                MessageValidator::validateChannel($channel);
            } catch (CometException $e) {
                return $e->getMessage();
            }
            $channels[$channel] = true;
        }
        return array_map('strval', array_keys($channels));
    }

    /**
     * Starts the session read-only, so its lock is released before $allow runs (other
     * requests of the same user are not held up). An active session is used as it is.
     */
    private static function readSession()
    {
        if (!function_exists('session_status') || session_status() === PHP_SESSION_DISABLED) {
            throw new CometException('PHP sessions are disabled: pass the options session => false and user',
                CometException::CONFIG);
        }
        if (session_status() === PHP_SESSION_ACTIVE) {
            return;
        }
        if (PHP_VERSION_ID >= 70000) {
            $started = session_start(array('read_and_close' => true));
        } else {
            // PHP 5.6 has no read_and_close: read, then release the lock at once.
            $started = session_start();
            if ($started) {
                session_write_close();
            }
        }
        if (!$started) {
            throw new CometException('cannot start the PHP session (output already sent?)', CometException::CONFIG);
        }
    }

    /** @return string|null the user id, from the 'user' option or $_SESSION['user_id'] */
    private static function user(array $options)
    {
        if (array_key_exists('user', $options)) {
            $user = $options['user'];
            if (self::isClosure($user)) {
                $user = call_user_func($user);
            }
            return self::userId($user, 'the user (option "user")');
        }
        $user = isset($_SESSION['user_id']) ? $_SESSION['user_id'] : null;
        return self::userId($user, '$_SESSION[\'user_id\']');
    }

    /**
     * @param mixed $user null, false or '' for none; an int; a string
     * @param string $what for the error message
     * @return string|null
     * @throws CometException INVALID_ARGUMENT
     */
    private static function userId($user, $what)
    {
        if ($user === null || $user === false || $user === '') {
            return null;
        }
        if (is_int($user)) {
            return (string) $user;
        }
        if (!is_string($user) || Bytes::len($user) > self::MAX_USER_BYTES || !Bytes::isUtf8($user)) {
            throw new CometException($what . ' must be an int or a UTF-8 string of at most ' . self::MAX_USER_BYTES
                . ' bytes, got ' . gettype($user), CometException::INVALID_ARGUMENT);
        }
        return $user;
    }

    private static function ttlOption(array $options)
    {
        if (!array_key_exists('ttl', $options)) {
            return self::DEFAULT_TTL;
        }
        $ttl = $options['ttl'];
        if (is_string($ttl) && preg_match('/^\d+\z/', $ttl)) {
            $ttl = (int) $ttl;
        }
        if (!is_int($ttl) || $ttl < 1 || $ttl > self::MAX_TTL) {
            throw new CometException('option "ttl" must be 1-' . self::MAX_TTL . ' seconds', CometException::INVALID_ARGUMENT);
        }
        return $ttl;
    }

    private static function boolOption(array $options, $name, $default)
    {
        if (!array_key_exists($name, $options)) {
            return $default;
        }
        if (!is_bool($options[$name])) {
            throw new CometException('option "' . $name . '" must be true or false', CometException::INVALID_ARGUMENT);
        }
        return $options[$name];
    }

    /** Closures and invokable objects only: a string such as 'max' is a user id, not a function. */
    private static function isClosure($value)
    {
        return is_object($value) && is_callable($value);
    }

    /** The answer as JSON; `info` always as an object. */
    private static function encode(array $answer)
    {
        if (isset($answer['info'])) {
            $answer['info'] = (object) $answer['info'];
        }
        $json = Json::compact($answer);
        if ($json === false) {
            throw new CometException('the answer cannot be encoded as JSON: ' . Json::lastError(), CometException::INVALID_ARGUMENT);
        }
        return $json;
    }

    /** Fail closed, and say so: a clear 500 rather than an empty 200 or a PHP error page. */
    private static function failed($send)
    {
        if ($send) {
            self::send(500, Json::compact(array('error' => 'comet_authorize failed in the app', 'status' => 500)));
        }
    }

    private static function send($status, $json)
    {
        if (!headers_sent()) {
            http_response_code($status);
            header('Content-Type: application/json');
            header('Cache-Control: no-store');
        }
        echo $json;
    }
}

} // class_exists

// ---- src/PublishScript.php ----

if (!class_exists('Comet\PublishScript', false)) {

/**
 * The sidecar's publish script (bridge/lua/publish.lua): it assigns the channel's next
 * id, appends to the channel's stream and publishes, atomically. Every publisher runs
 * this same script, so ids are the ones every sidecar hands out.
 * @internal
 */
class PublishScript
{
    /**
     * bridge/lua/publish.lua, byte for byte (its SHA-1 must be the one the sidecar loads).
     * Generated: `php php-client/tools/build.php` copies it here after the .lua changes,
     * and tests/php fails while the two differ.
     */
    // @generated-begin publish.lua
    const LUA = <<<'COMET_PUBLISH_LUA'
-- Comet Sidecar publish script: assigns the next id in a channel, appends the message
-- to the channel's stream and publishes it, atomically. Used by the sidecar's
-- POST /pub and by php-client's comet_publish(); any Redis client may call it.
--
-- KEYS[1] comet:{<channel>}:seq     integer sequence (INCR)
-- KEYS[2] comet:{<channel>}:epoch   the sequence's epoch token
-- KEYS[3] comet:{<channel>}:log     stream of messages, entry id "<seq>-0"
-- ARGV[1] pub/sub channel: comet:{<channel>}
-- ARGV[2] data (UTF-8 text)
-- ARGV[3] event name, or ""
-- ARGV[4] history length kept in the stream (MAXLEN ~), e.g. 1000
-- ARGV[5] key expiry in seconds, or 0 for none
-- ARGV[6] optional: "s" publishes with SPUBLISH (sharded pub/sub, Redis >= 7: on a
--         Redis Cluster only the channel's shard carries it); absent or "" = PUBLISH
-- Returns { id, epoch, prev }.

local id = redis.call('INCR', KEYS[1])
local epoch = redis.call('GET', KEYS[2])
if id == 1 or not epoch then
  -- A new sequence, or part of the channel's keys was lost: ids are not comparable
  -- with anything a client saw before, so start a new epoch (from the server clock,
  -- which never repeats for one Redis) and drop stream entries of the old one.
  local t = redis.call('TIME')
  epoch = string.format('%x%06x', tonumber(t[1]), tonumber(t[2]))
  redis.call('SET', KEYS[2], epoch)
  redis.call('DEL', KEYS[3])
end
local ts = redis.call('TIME')
local ms = tonumber(ts[1]) * 1000 + math.floor(tonumber(ts[2]) / 1000)
local prev = id - 1
redis.call('XADD', KEYS[3], 'MAXLEN', '~', tonumber(ARGV[4]), id .. '-0',
           'data', ARGV[2], 'event', ARGV[3], 'epoch', epoch, 'prev', prev, 'ts', ms)
local ttl = tonumber(ARGV[5])
if ttl and ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
local payload = 'comet/1 ' .. cjson.encode({id = id, prev = prev, epoch = epoch,
                                              event = ARGV[3], data = ARGV[2], ts = ms})
if ARGV[6] == 's' then
  redis.call('SPUBLISH', ARGV[1], payload)
else
  redis.call('PUBLISH', ARGV[1], payload)
end
return { id, epoch, prev }

COMET_PUBLISH_LUA;
    // @generated-end publish.lua

    private static $sha = null;

    /** @return string the SHA-1 of the script, as EVALSHA wants it */
    public static function sha()
    {
        if (self::$sha === null) {
            self::$sha = sha1(self::LUA);
        }
        return self::$sha;
    }

    /**
     * The command running the script for one message.
     * @param string $verb 'EVALSHA', or 'EVAL' (sends the script itself and loads it)
     * @param array $m array(channel, data text, event or '')
     * @param string $history stream length kept (history_size)
     * @param string $ttl key expiry in seconds, '0' for none (key_ttl)
     * @return array the command's arguments
     */
    public static function command($verb, array $m, $history, $ttl)
    {
        $ch = $m[0];
        return array($verb, $verb === 'EVAL' ? self::LUA : self::sha(), '3',
            'comet:{' . $ch . '}:seq', 'comet:{' . $ch . '}:epoch', 'comet:{' . $ch . '}:log',
            'comet:{' . $ch . '}', $m[1], $m[2], $history, $ttl);
    }
}

} // class_exists

// ---- src/RedisPublisher.php ----

if (!class_exists('Comet\RedisPublisher', false)) {

/**
 * Publishes through Redis with the publish script: a batch is one pipeline of EVALSHA
 * (EVAL for what Redis answers NOSCRIPT), or CLIENT REPLY SKIP + EVAL pairs in
 * fire-and-forget mode.
 * @internal
 */
class RedisPublisher
{
    /** @var RedisDrivers */
    private $drivers;
    private $options;
    /** @var bool the publish script's ARGV[6] = "s" (SPUBLISH): through a Redis Cluster */
    private $sharded;

    /**
     * @param RedisDrivers $drivers
     * @param array $options normalised options (history_size, key_ttl)
     */
    public function __construct(RedisDrivers $drivers, array $options)
    {
        $this->drivers = $drivers;
        $this->options = $options;
        $this->sharded = $drivers->sharded();
    }

    /**
     * PublishScript::command(), with ARGV[6] = "s" through a Redis Cluster: the script
     * then publishes with SPUBLISH, which only the channel's shard carries (the sidecar
     * subscribes there with SSUBSCRIBE). Elsewhere ARGV[6] is left out: PUBLISH, which
     * Redis before 7 has too. Decided by the URL, without asking Redis.
     */
    private function command($verb, array $m, $history, $ttl)
    {
        $args = PublishScript::command($verb, $m, $history, $ttl);
        if ($this->sharded) {
            $args[] = 's';
        }
        return $args;
    }

    /**
     * @param array $prepared key => array(channel, data text, event), see MessageValidator::prepare()
     * @param bool $ff fire-and-forget: send without reading the replies
     * @param array $details receives, per key of a published message, array('ch', 'id',
     *        'epoch', 'prev'), also when this throws (nothing in fire-and-forget mode)
     * @return array key => message id (true in fire-and-forget mode)
     * @throws CometException with getResults(): the ids known to be published, null for the others
     */
    public function publish(array $prepared, $ff, array &$details)
    {
        $driver = $this->drivers->get($ff);
        $history = (string) $this->options['history_size'];
        $ttl = (string) $this->options['key_ttl'];
        $keys = array_keys($prepared);
        try {
            if ($ff) {
                // CLIENT REPLY SKIP: Redis sends no reply to the next command, so nothing is
                // left unread on the connection. EVAL, not EVALSHA: a NOSCRIPT would go unseen.
                $commands = array();
                foreach ($prepared as $m) {
                    $commands[] = array('CLIENT', 'REPLY', 'SKIP');
                    $commands[] = $this->command('EVAL', $m, $history, $ttl);
                }
                $driver->execute($commands, false);
                return array_fill_keys($keys, true);
            }
            $commands = array();
            foreach ($prepared as $m) {
                $commands[] = $this->command('EVALSHA', $m, $history, $ttl);
            }
            $replies = $driver->execute($commands, true);
            $retry = array();
            foreach ($replies as $i => $reply) {
                if ($reply instanceof RedisError && strncmp($reply->message, 'NOSCRIPT', 8) === 0) {
                    $retry[] = $i;
                }
            }
            if ($retry) {
                // Not in Redis's script cache (restarted, SCRIPT FLUSH): the first EVAL loads
                // it, the rest of the batch can keep using EVALSHA.
                $commands = array();
                foreach ($retry as $n => $i) {
                    $commands[] = $this->command($n === 0 ? 'EVAL' : 'EVALSHA', $prepared[$keys[$i]], $history, $ttl);
                }
                try {
                    $again = $driver->execute($commands, true);
                } catch (CometException $e) {
                    // Known replies: the first round's, but those of the retried commands.
                    $known = $replies;
                    foreach ($retry as $n => $i) {
                        $known[$i] = null;
                    }
                    foreach ($e->getResults() as $n => $reply) {
                        if (isset($retry[$n])) {
                            $known[$retry[$n]] = $reply;
                        }
                    }
                    throw new CometException($e->getMessage(), $e->getCode(), $e, $known);
                }
                foreach ($retry as $n => $i) {
                    $replies[$i] = $again[$n];
                }
            }
        } catch (CometException $e) {
            if ($e->getCode() !== CometException::REDIS) {
                $this->drivers->drop($driver);
            }
            // Nothing is known to be published, except what a cluster node or the master
            // confirmed before the failure (the driver's results, by command index).
            $ids = array_fill_keys($keys, null);
            if (!$ff) {
                foreach ($e->getResults() as $i => $reply) {
                    if (isset($keys[$i]) && is_array($reply) && count($reply) >= 3 && is_numeric($reply[0])) {
                        $ids[$keys[$i]] = (int) $reply[0];
                        $details[$keys[$i]] = array('ch' => $prepared[$keys[$i]][0], 'id' => (int) $reply[0],
                            'epoch' => (string) $reply[1], 'prev' => (int) $reply[2]);
                    }
                }
            }
            throw new CometException($e->getMessage(), $e->getCode(), $e, $ids);
        }
        $ids = array();
        $firstError = null;
        foreach ($keys as $i => $key) {
            $reply = $replies[$i];
            if (is_array($reply) && count($reply) >= 3 && is_numeric($reply[0])) {
                $ids[$key] = (int) $reply[0];
                $details[$key] = array('ch' => $prepared[$key][0], 'id' => (int) $reply[0],
                    'epoch' => (string) $reply[1], 'prev' => (int) $reply[2]);
            } else {
                $ids[$key] = null;
                if ($firstError === null) {
                    $firstError = $reply instanceof RedisError ? $reply->message : 'unexpected reply to EVALSHA';
                }
            }
        }
        if ($firstError !== null) {
            throw new CometException('Redis refused the publish: ' . $firstError, CometException::REDIS, null, $ids);
        }
        return $ids;
    }

    /** Closes the connections (persistent ones are kept for the next request). */
    public function close()
    {
        $this->drivers->closeAll();
    }
}

} // class_exists

// ---- src/RedisDrivers.php ----

if (!class_exists('Comet\RedisDrivers', false)) {

/**
 * Chooses the Redis driver (redis_driver: auto = phpredis if loaded, else Predis if
 * loadable, else the built-in client) and keeps the ones opened, one per kind, for the
 * client's later publishes.
 * @internal
 */
class RedisDrivers
{
    private $address;
    private $options;
    /** @var array driver name => SocketDriver|PhpRedisDriver|PredisDriver */
    private $open = array();

    /**
     * @param array $address Targets::redisAddress()
     * @param array $options normalised options
     */
    /**
     * @param array $address Targets::redisAddress()
     * @param array $options normalised options
     * @throws CometException CONFIG for phpredis or Predis with a cluster or sentinel URL
     */
    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
        $mode = isset($address['mode']) ? $address['mode'] : 'single';
        if ($mode !== 'single' && $options['redis_driver'] !== 'auto' && $options['redis_driver'] !== 'socket') {
            throw new CometException('redis+' . $mode . ':// URLs need the built-in client: set redis_driver to socket (or auto), not '
                . $options['redis_driver'], CometException::CONFIG);
        }
    }

    /**
     * Whether publishes go through a Redis Cluster (a redis+cluster:// URL), where the
     * publish script is asked to SPUBLISH: sharded pub/sub stays on the channel's shard
     * (where the sidecar SSUBSCRIBEs), while a PUBLISH would be copied to every node.
     * Standalone and Sentinel keep PUBLISH (SPUBLISH needs Redis 7).
     * @return bool
     */
    public function sharded()
    {
        return isset($this->address['mode']) && $this->address['mode'] === 'cluster';
    }

    /**
     * The driver for the next publish (created on first use; it connects when it runs).
     * @param bool $fireAndForget only the built-in client can send without waiting for the reply
     * @return SocketDriver|PhpRedisDriver|PredisDriver|ClusterDriver|SentinelDriver
     * @throws CometException CONFIG when the configured driver's library is not loaded
     */
    public function get($fireAndForget)
    {
        $mode = isset($this->address['mode']) ? $this->address['mode'] : 'single';
        if ($mode !== 'single') {
            // Redis Cluster and Sentinel: the built-in client only, in every mode.
            if (!isset($this->open[$mode])) {
                $this->open[$mode] = $mode === 'cluster' ? new ClusterDriver($this->address, $this->options)
                    : new SentinelDriver($this->address, $this->options);
            }
            return $this->open[$mode];
        }
        $name = $this->options['redis_driver'];
        if ($name === 'auto') {
            if (class_exists('Redis', false) && extension_loaded('redis')) {
                $name = 'phpredis';
            } elseif (class_exists('Predis\Client')) {
                $name = 'predis';
            } else {
                $name = 'socket';
            }
        }
        if ($fireAndForget) {
            $name = 'socket';
        }
        if (!isset($this->open[$name])) {
            if ($name === 'phpredis') {
                if (!class_exists('Redis', false)) {
                    throw new CometException('redis_driver "phpredis" needs the redis extension', CometException::CONFIG);
                }
                $this->open[$name] = new PhpRedisDriver($this->address, $this->options);
            } elseif ($name === 'predis') {
                if (!class_exists('Predis\Client')) {
                    throw new CometException('redis_driver "predis" needs Predis (predis/predis) loaded', CometException::CONFIG);
                }
                $this->open[$name] = new PredisDriver($this->address, $this->options);
            } else {
                $this->open[$name] = new SocketDriver($this->address, $this->options);
            }
        }
        return $this->open[$name];
    }

    /**
     * Closes and forgets a driver after a failure: its connection's state is unknown, so
     * the next publish starts over (a persistent connection is closed too).
     * @param object $driver one get() returned
     */
    public function drop($driver)
    {
        foreach ($this->open as $name => $d) {
            if ($d === $driver) {
                $d->close(true);
                unset($this->open[$name]);
            }
        }
    }

    /** Closes every driver (persistent connections are kept for the next request). */
    public function closeAll()
    {
        foreach ($this->open as $driver) {
            $driver->close();
        }
        $this->open = array();
    }
}

} // class_exists

// ---- src/SocketDriver.php ----

if (!class_exists('Comet\SocketDriver', false)) {

/**
 * The built-in Redis client: RESP over stream_socket_client, commands pipelined.
 * @internal
 */
class SocketDriver
{
    private $address;
    private $options;
    /** @var Wire|null */
    private $wire = null;
    /**
     * Replies of earlier commands may still be on their way (fire-and-forget sends, or a
     * persistent socket inherited from an earlier request): the next exchange starts with
     * an ECHO and skips everything before its answer.
     */
    private $dirty = false;

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
    }

    /**
     * @param array $commands arrays of arguments
     * @param bool $wantReplies false: send only (the commands must produce no reply)
     * @return array replies, in order
     */
    public function execute(array $commands, $wantReplies)
    {
        if ($this->wire !== null && !empty($this->address['probe']) && !$this->wire->idle()) {
            // Cluster and Sentinel nodes: a connection the node closed since the last use is
            // reported before anything is sent (CONNECT: safe to retry elsewhere), not
            // reopened here: the caller decides where to go (Sentinel: ask again, check ROLE).
            $this->close(true);
            throw new CometException('connection to Redis at ' . $this->address['address'] . ' was closed',
                CometException::CONNECT);
        }
        if ($this->wire === null) {
            $a = $this->address;
            // Persistent TCP sockets are keyed by credentials and database too, so a reused
            // one is already set up; a Unix socket cannot be keyed and is set up every time.
            $this->wire = new Wire($a['address'], $this->options['connect_timeout'], $this->options['persistent'],
                'Redis', 'comet-php-' . substr(sha1($a['user'] . "\0" . $a['password'] . "\0" . $a['db']), 0, 12));
            $reused = $this->wire->reused();
            $this->dirty = $reused;
            $setup = array();
            if ($a['password'] !== '') {
                $setup[] = $a['user'] !== '' ? array('AUTH', $a['user'], $a['password']) : array('AUTH', $a['password']);
            }
            if ($a['db'] > 0) {
                $setup[] = array('SELECT', $a['db']);
            }
            if ($setup && (!$reused || $a['socket'] !== '')) {
                // A round trip of its own: pipelined with the publish, a failed AUTH or
                // SELECT could leave the message published somewhere else, or by an
                // earlier login on a persistent socket, while we report an error.
                try {
                    $this->exchange($setup, array(), true);
                } catch (CometException $e) {
                    $this->close(true);
                    throw $e;
                }
            }
        }
        $replies = $this->exchange(array(), $commands, $wantReplies);
        if (!$wantReplies) {
            $this->dirty = true;
        }
        return $replies;
    }

    /**
     * Sends $setup (AUTH, SELECT) and $commands in one write; with $wait, returns the
     * replies to $commands once all arrived.
     */
    private function exchange(array $setup, array $commands, $wait)
    {
        $out = '';
        foreach ($setup as $args) {
            $out .= RespReader::encode($args);
        }
        $marker = null;
        if ($this->dirty && $wait) {
            $marker = 'comet-sync-' . mt_rand() . '-' . mt_rand();
            $out .= RespReader::encode(array('ECHO', $marker));
        }
        foreach ($commands as $args) {
            $out .= RespReader::encode($args);
        }
        $want = $wait ? ($marker === null ? count($setup) : 0) + count($commands) : 0;
        $reader = new RespReader($want, $marker);
        $this->wire->pump($out, $reader, $this->options['timeout']);
        if (!$wait) {
            return array();
        }
        $this->dirty = false;
        if ($marker !== null) {
            // Replies before the marker: stale ones, then those of $setup.
            $setupReplies = $setup ? array_slice($reader->skipped, -count($setup)) : array();
            $replies = $reader->replies;
        } else {
            $setupReplies = array_slice($reader->replies, 0, count($setup));
            $replies = array_slice($reader->replies, count($setup));
        }
        // A failed AUTH or SELECT makes every following reply an error: report the cause.
        foreach ($setupReplies as $i => $reply) {
            if ($reply instanceof RedisError) {
                $this->close(true);
                throw new CometException('Redis ' . $setup[$i][0] . ' failed: ' . $reply->message, CometException::REDIS);
            }
        }
        return $replies;
    }

    /** @param bool $force close a persistent socket too */
    public function close($force = false)
    {
        if ($this->wire !== null) {
            if ($force) {
                $this->wire->broken = true;
            }
            $this->wire->close();
            $this->wire = null;
        }
    }
}

} // class_exists

// ---- src/ClusterDriver.php ----

if (!class_exists('Comet\ClusterDriver', false)) {

/**
 * Redis Cluster (redis+cluster://) over the built-in client: one SocketDriver per node,
 * each command sent to the master owning its key's slot.
 *
 * * The slot map comes from CLUSTER SHARDS (Redis 7), else CLUSTER SLOTS, asked of the
 *   seeds in order on first use; it lives as long as this driver (the client).
 * * MOVED: the slot is recorded as the new owner's and the command sent there. ASK: sent
 *   once to the named node after ASKING, the map unchanged. TRYAGAIN, CLUSTERDOWN: sent
 *   again after a short pause, at most 3 tries within `timeout`. NOSCRIPT: SCRIPT LOAD
 *   on that node, then sent again. None of these ran the command, so nothing is
 *   published twice.
 * * A node that cannot be connected to (or closed an idle connection): the map is asked
 *   again of another node, and the commands meant for it are sent once more. A connection
 *   lost or a timeout after sending is reported (TIMEOUT, IO): the command may have run.
 * @internal
 */
class ClusterDriver
{
    const SLOTS = 16384;
    const MAX_REDIRECTS = 16;
    const BUSY_TRIES = 3;

    private $address;
    private $options;
    /** @var array "host:port" => SocketDriver */
    private $nodes = array();
    /** @var array|null sorted list of array(first slot, last slot, "host:port") */
    private $ranges = null;
    /** @var array slot => "host:port", learned from MOVED since the map was read */
    private $moved = array();
    /** @var array "host:port" => array(host, port): every node heard of, seeds first */
    private $known = array();
    private static $crcTable = null;

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
        foreach ($address['seeds'] as $seed) {
            $this->known[Targets::hostPort($seed[0], $seed[1])] = array($seed[0], $seed[1]);
        }
    }

    /**
     * The hash slot of a key: CRC16 (XMODEM) of its hash tag (the part between the first
     * { and the next }, when not empty) or of the whole key, modulo 16384.
     * @param string $key
     * @return int
     */
    public static function slot($key)
    {
        $key = (string) $key;
        $open = Bytes::pos($key, '{');
        if ($open !== false) {
            $close = Bytes::pos($key, '}', $open + 1);
            if ($close !== false && $close > $open + 1) {
                $key = Bytes::sub($key, $open + 1, $close - $open - 1);
            }
        }
        return self::crc16($key) % self::SLOTS;
    }

    /**
     * CRC16-XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster uses.
     * @param string $s
     * @return int
     */
    public static function crc16($s)
    {
        if (self::$crcTable === null) {
            $table = array();
            for ($i = 0; $i < 256; $i++) {
                $c = $i << 8;
                for ($b = 0; $b < 8; $b++) {
                    $c = ($c & 0x8000) ? (($c << 1) ^ 0x1021) : ($c << 1);
                }
                $table[$i] = $c & 0xFFFF;
            }
            self::$crcTable = $table;
        }
        $crc = 0;
        $n = Bytes::len($s);
        for ($i = 0; $i < $n; $i++) {
            $crc = (($crc << 8) & 0xFFFF) ^ self::$crcTable[(($crc >> 8) ^ ord($s[$i])) & 0xFF];
        }
        return $crc;
    }

    /**
     * The key a command is routed by: the first key of EVAL/EVALSHA, else the first argument.
     * @return string|null null for a command without a key
     */
    private static function keyOf(array $args)
    {
        $verb = strtoupper((string) $args[0]);
        if ($verb === 'EVAL' || $verb === 'EVALSHA' || $verb === 'EVAL_RO' || $verb === 'EVALSHA_RO') {
            return isset($args[2], $args[3]) && (int) $args[2] > 0 ? (string) $args[3] : null;
        }
        if ($verb === 'CLIENT' || $verb === 'ASKING' || $verb === 'PING' || $verb === 'ECHO') {
            return null;
        }
        return isset($args[1]) ? (string) $args[1] : null;
    }

    /**
     * Runs commands, each on its slot's master (a batch: one pipeline per node).
     * @param array $commands arrays of arguments; without replies, a keyless command (CLIENT
     *        REPLY SKIP) goes with the command after it
     * @param bool $wantReplies
     * @return array replies in the order of $commands (errors other than redirections as RedisError)
     * @throws CometException CONNECT (no node reachable, nothing sent), TIMEOUT / IO (a node
     *         stopped answering: getResults() has the replies known, by command index)
     */
    public function execute(array $commands, $wantReplies)
    {
        $deadline = microtime(true) + $this->options['timeout'];
        if ($this->ranges === null) {
            $this->refreshMap(null);
        }
        // Units: a keyed command with the keyless ones before it.
        $units = array();
        $prefix = array();
        foreach (array_values($commands) as $i => $args) {
            $key = self::keyOf($args);
            if ($key === null && !$wantReplies) {
                $prefix[] = $args;
                continue;
            }
            $units[$i] = array('cmds' => array_merge($prefix, array($args)),
                'slot' => $key === null ? 0 : self::slot($key), 'ask' => null, 'busy' => 0, 'redirects' => 0,
                'loaded' => array());
            $prefix = array();
        }
        $replies = array();
        $pending = array_keys($units);
        $reconnected = false;
        while ($pending) {
            $groups = array();
            foreach ($pending as $i) {
                $node = $units[$i]['ask'] !== null ? $units[$i]['ask'] : $this->ownerOf($units[$i]['slot']);
                $groups[$node][] = $i;
            }
            $next = array();
            $load = array();
            $busy = 0;
            foreach ($groups as $node => $group) {
                $send = array();
                foreach ($group as $i) {
                    if ($units[$i]['ask'] !== null) {
                        $send[] = array('ASKING');
                    }
                    foreach ($units[$i]['cmds'] as $args) {
                        $send[] = $args;
                    }
                }
                try {
                    $got = $this->node($node)->execute($send, $wantReplies);
                } catch (CometException $e) {
                    if ($e->getCode() === CometException::CONNECT && !$reconnected) {
                        // Nothing was sent: ask another node for the map, then send again.
                        $reconnected = true;
                        $this->dropNode($node);
                        try {
                            $this->refreshMap($node);
                        } catch (CometException $again) {
                            throw $this->failure($again, $replies);
                        }
                        foreach ($group as $i) {
                            $units[$i]['ask'] = null;
                            $next[] = $i;
                        }
                        continue;
                    }
                    if ($e->getCode() !== CometException::REDIS) {
                        $this->dropNode($node);
                    }
                    throw $this->failure($e, $replies);
                }
                if (!$wantReplies) {
                    continue;
                }
                $n = 0;
                foreach ($group as $i) {
                    if ($units[$i]['ask'] !== null) {
                        $n++;   // ASKING's +OK
                    }
                    $reply = $got[$n++];
                    $asked = $units[$i]['ask'];
                    $units[$i]['ask'] = null;
                    if (!($reply instanceof RedisError)) {
                        $replies[$i] = $reply;
                        continue;
                    }
                    $words = explode(' ', $reply->message);
                    $kind = $words[0];
                    if (($kind === 'MOVED' || $kind === 'ASK') && count($words) >= 3
                        && ++$units[$i]['redirects'] <= self::MAX_REDIRECTS) {
                        $target = $this->learn($words[2], $node);
                        if ($kind === 'MOVED') {
                            $this->moved[(int) $words[1]] = $target;
                        } else {
                            $units[$i]['ask'] = $target;
                        }
                        $next[] = $i;
                    } elseif (($kind === 'TRYAGAIN' || $kind === 'CLUSTERDOWN')
                        && ++$units[$i]['busy'] < self::BUSY_TRIES && microtime(true) < $deadline) {
                        $busy = max($busy, $units[$i]['busy']);
                        $next[] = $i;
                    } elseif ($kind === 'NOSCRIPT' && !isset($units[$i]['loaded'][$node])) {
                        $units[$i]['loaded'][$node] = true;
                        $units[$i]['ask'] = $asked;
                        $load[$node] = true;
                        $next[] = $i;
                    } else {
                        $replies[$i] = $reply;
                    }
                }
            }
            foreach (array_keys($load) as $node) {
                // Not in this node's script cache (a new node, a restart, SCRIPT FLUSH).
                try {
                    $got = $this->node($node)->execute(array(array('SCRIPT', 'LOAD', PublishScript::LUA)), true);
                } catch (CometException $e) {
                    if ($e->getCode() !== CometException::REDIS) {
                        $this->dropNode($node);
                    }
                    throw $this->failure($e, $replies);
                }
                if ($got[0] instanceof RedisError) {
                    throw $this->failure(new CometException('Redis SCRIPT LOAD failed on ' . $node . ': '
                        . $got[0]->message, CometException::REDIS), $replies);
                }
            }
            if ($busy) {
                // A slot being migrated (TRYAGAIN) or the cluster failing over (CLUSTERDOWN).
                // 25 ms, then 50 ms, never past half the time left.
                $left = $deadline - microtime(true);
                usleep((int) (max(0.0, min($left / 2, 0.025 * $busy)) * 1000000));
            }
            $pending = $next;
        }
        if (!$wantReplies) {
            return array();
        }
        ksort($replies);
        return array_values($replies);
    }

    /** A failure with the replies known so far (by command index) as its results. */
    private function failure(CometException $e, array $replies)
    {
        return new CometException($e->getMessage(), $e->getCode(), $e, $replies);
    }

    /** The node owning a slot: from MOVED, else the map; a slot nobody serves goes to a seed. */
    private function ownerOf($slot)
    {
        if (isset($this->moved[$slot])) {
            return $this->moved[$slot];
        }
        $lo = 0;
        $hi = count($this->ranges) - 1;
        while ($lo <= $hi) {
            $mid = ($lo + $hi) >> 1;
            $r = $this->ranges[$mid];
            if ($slot < $r[0]) {
                $hi = $mid - 1;
            } elseif ($slot > $r[1]) {
                $lo = $mid + 1;
            } else {
                return $r[2];
            }
        }
        reset($this->known);
        return key($this->known);
    }

    /** "host:port" from a redirection (an empty host: the node that answered) -> node key. */
    private function learn($endpoint, $from)
    {
        $colon = strrpos($endpoint, ':');
        $host = (string) substr($endpoint, 0, (int) $colon);
        $port = (int) substr($endpoint, (int) $colon + 1);
        if ($colon === false || $host === '' || $host === '?') {
            $host = $this->known[$from][0];
        }
        $host = trim($host, '[]');
        $key = Targets::hostPort($host, $port);
        if (!isset($this->known[$key])) {
            $this->known[$key] = array($host, $port);
        }
        return $key;
    }

    /** @return SocketDriver the connection to a node (opened when it is used) */
    private function node($key)
    {
        if (!isset($this->nodes[$key])) {
            $hp = $this->known[$key];
            $this->nodes[$key] = new SocketDriver(Targets::nodeAddress($this->address, $hp[0], $hp[1]), $this->options);
        }
        return $this->nodes[$key];
    }

    private function dropNode($key)
    {
        if (isset($this->nodes[$key])) {
            $this->nodes[$key]->close(true);
            unset($this->nodes[$key]);
        }
    }

    /**
     * Reads the slot map from the first node that answers: the seeds in order, then every
     * other node heard of; $skip (a node that just failed) last.
     * @param string|null $skip
     * @throws CometException CONNECT when no node could be reached, REDIS when none gave a map
     */
    private function refreshMap($skip)
    {
        $order = array();
        foreach (array_keys($this->known) as $key) {
            if ($key !== $skip) {
                $order[] = $key;
            }
        }
        if ($skip !== null) {
            $order[] = $skip;
        }
        $errors = array();
        $connectOnly = true;
        foreach ($order as $key) {
            try {
                $ranges = $this->readMap($key);
            } catch (CometException $e) {
                $this->dropNode($key);
                $errors[] = $e->getMessage();
                if ($e->getCode() !== CometException::CONNECT) {
                    $connectOnly = false;
                }
                continue;
            }
            $this->ranges = $ranges;
            $this->moved = array();
            return;
        }
        throw new CometException('no Redis Cluster node answered with the slot map (' . $this->address['address'] . '): '
            . implode('; ', $errors), $connectOnly ? CometException::CONNECT : CometException::REDIS);
    }

    /** CLUSTER SHARDS (Redis 7), else CLUSTER SLOTS, of one node, as sorted ranges. */
    private function readMap($key)
    {
        $driver = $this->node($key);
        $reply = $driver->execute(array(array('CLUSTER', 'SHARDS')), true);
        $reply = $reply[0];
        $ranges = array();
        $host = $this->known[$key][0];
        if ($reply instanceof RedisError && preg_match('/unknown (sub)?command|wrong number/i', $reply->message)) {
            $reply = $driver->execute(array(array('CLUSTER', 'SLOTS')), true);
            $reply = $reply[0];
            if (is_array($reply)) {
                foreach ($reply as $entry) {
                    if (is_array($entry) && count($entry) >= 3 && is_array($entry[2]) && count($entry[2]) >= 2) {
                        $ranges[] = array((int) $entry[0], (int) $entry[1],
                            $this->nodeKey((string) $entry[2][0], (int) $entry[2][1], $host));
                    }
                }
            }
        } elseif (is_array($reply)) {
            foreach ($reply as $shard) {
                $shard = self::pairs($shard);
                if (!isset($shard['slots'], $shard['nodes']) || !is_array($shard['slots']) || !is_array($shard['nodes'])) {
                    continue;
                }
                $master = null;
                foreach ($shard['nodes'] as $n) {
                    $n = self::pairs($n);
                    if (isset($n['role']) && $n['role'] === 'master'
                        && ($master === null || (isset($n['health']) && $n['health'] === 'online'))) {
                        $master = $n;
                    }
                }
                if ($master === null) {
                    continue;
                }
                $endpoint = isset($master['endpoint']) ? (string) $master['endpoint'] : '';
                if ($endpoint === '' || $endpoint === '?') {
                    $endpoint = isset($master['ip']) ? (string) $master['ip'] : '';
                }
                $port = isset($master['port']) ? (int) $master['port'] : (isset($master['tls-port']) ? (int) $master['tls-port'] : 0);
                $node = $this->nodeKey($endpoint, $port, $host);
                for ($j = 0; $j + 1 < count($shard['slots']); $j += 2) {
                    $ranges[] = array((int) $shard['slots'][$j], (int) $shard['slots'][$j + 1], $node);
                }
            }
        }
        if ($reply instanceof RedisError) {
            throw new CometException('Redis at ' . $key . ' gave no slot map (is it a cluster node?): ' . $reply->message,
                CometException::REDIS);
        }
        if (!$ranges) {
            throw new CometException('Redis at ' . $key . ' serves no slots', CometException::REDIS);
        }
        usort($ranges, function ($a, $b) {
            return $a[0] - $b[0];
        });
        return $ranges;
    }

    private function nodeKey($host, $port, $fallbackHost)
    {
        if ($host === '' || $host === '?') {
            $host = $fallbackHost;
        }
        $key = Targets::hostPort($host, $port);
        if (!isset($this->known[$key])) {
            $this->known[$key] = array($host, (int) $port);
        }
        return $key;
    }

    /** A RESP2 flat list of names and values as an array. */
    private static function pairs($list)
    {
        $out = array();
        if (is_array($list)) {
            for ($i = 0; $i + 1 < count($list); $i += 2) {
                $out[(string) $list[$i]] = $list[$i + 1];
            }
        }
        return $out;
    }

    /** @param bool $force close persistent connections too */
    public function close($force = false)
    {
        foreach ($this->nodes as $driver) {
            $driver->close($force);
        }
        $this->nodes = array();
    }
}

} // class_exists

// ---- src/SentinelDriver.php ----

if (!class_exists('Comet\SentinelDriver', false)) {

/**
 * Redis behind Sentinel (redis+sentinel://) over the built-in client.
 *
 * * The master: `SENTINEL get-master-addr-by-name NAME`, asked of the sentinels in the
 *   URL's order (the first that answers wins), then `ROLE` on that address: only a node
 *   answering "master" is published to; otherwise the next sentinel is asked.
 * * READONLY or LOADING from the master (it was demoted, or is loading its data), or a
 *   connection it closed while idle, or no master found yet: the master is looked up
 *   again and the commands that did not run are sent again, with pauses (50 ms doubling),
 *   for at most `timeout`. A master found more than a second ago is confirmed with the
 *   sentinels before it is used again (a long-running client). A connection lost or a timeout after sending is reported
 *   (TIMEOUT, IO): the command may have run, so it is not sent twice.
 * @internal
 */
class SentinelDriver
{
    private $address;
    private $options;
    /** @var SocketDriver|null the master, checked with ROLE */
    private $master = null;
    private $masterAt = '';
    /** when the sentinels last named $masterAt (microtime) */
    private $checkedAt = 0.0;
    /**
     * Seconds a master found is used without asking the sentinels again. A master demoted
     * by a failover may keep accepting writes until the sentinels reconfigure it (split
     * brain): a long-running client (a worker) asks again before using it after this long.
     */
    const RECHECK_AFTER = 1.0;
    /** @var array "host:port" => SocketDriver, connections to the sentinels */
    private $sentinels = array();

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
    }

    /** @return string host:port of the master in use, '' before one was found */
    public function masterAddress()
    {
        return $this->masterAt;
    }

    /**
     * @param array $commands arrays of arguments
     * @param bool $wantReplies
     * @return array replies, in order
     * @throws CometException CONNECT (no master found: nothing sent), TIMEOUT, IO, REDIS
     */
    public function execute(array $commands, $wantReplies)
    {
        $deadline = microtime(true) + $this->options['timeout'];
        $pause = 0.05;
        $replies = array();
        $todo = array_keys($commands);
        while (true) {
            $retry = false;
            $why = null;
            try {
                if ($this->master !== null && microtime(true) - $this->checkedAt > self::RECHECK_AFTER) {
                    $this->recheck();
                }
                if ($this->master === null) {
                    $this->findMaster();
                }
                $send = array();
                foreach ($todo as $i) {
                    $send[] = $commands[$i];
                }
                $got = $this->master->execute($send, $wantReplies);
            } catch (CometException $e) {
                if ($e->getCode() !== CometException::REDIS || $this->master !== null) {
                    $this->dropMaster();
                }
                // CONNECT: nothing was sent (no master yet, or its connection closed while idle).
                if ($e->getCode() !== CometException::CONNECT || $e->getPrevious() instanceof CometException
                    || microtime(true) + $pause > $deadline) {
                    throw new CometException($e->getMessage(), $e->getCode(), $e, $replies);
                }
                $retry = true;
                $why = $e;
                $got = array();
            }
            if (!$retry) {
                if (!$wantReplies) {
                    return array();
                }
                $again = array();
                foreach ($todo as $n => $i) {
                    $reply = $got[$n];
                    $replies[$i] = $reply;
                    if ($reply instanceof RedisError && preg_match('/^(READONLY|LOADING|MASTERDOWN)\b/', $reply->message)) {
                        // Refused, not run: the node is a replica now, or not ready.
                        $again[] = $i;
                    }
                }
                if (!$again) {
                    ksort($replies);
                    return array_values($replies);
                }
                $this->dropMaster();
                if (microtime(true) + $pause > $deadline) {
                    ksort($replies);
                    return array_values($replies);
                }
                $todo = $again;
            }
            usleep((int) ($pause * 1000000));
            $pause = min($pause * 2, 0.4);
        }
    }

    /**
     * Asks the sentinels in order for the master and checks it with ROLE.
     * @throws CometException CONNECT: no sentinel named a reachable master (its previous
     *         exception is a CometException when no sentinel could be reached at all, so
     *         waiting is pointless), REDIS: a sentinel refused (wrong password)
     */
    private function findMaster()
    {
        $a = $this->address;
        $problems = array();
        $reached = false;
        foreach ($a['seeds'] as $seed) {
            $at = Targets::hostPort($seed[0], $seed[1]);
            try {
                $reply = $this->sentinel($at, $seed)->execute(
                    array(array('SENTINEL', 'get-master-addr-by-name', $a['master'])), true);
            } catch (CometException $e) {
                $this->dropSentinel($at);
                $problems[] = 'sentinel ' . $at . ': ' . $e->getMessage();
                if ($e->getCode() !== CometException::CONNECT) {
                    $reached = true;
                }
                continue;
            }
            $reached = true;
            $reply = $reply[0];
            if ($reply instanceof RedisError) {
                $problems[] = 'sentinel ' . $at . ': ' . $reply->message;
                continue;
            }
            if (!is_array($reply) || count($reply) < 2) {
                $problems[] = 'sentinel ' . $at . ' does not know master "' . $a['master'] . '"';
                continue;
            }
            $host = (string) $reply[0];
            $port = (int) $reply[1];
            $node = Targets::hostPort($host, $port);
            $driver = new SocketDriver(Targets::nodeAddress($a, $host, $port), $this->options);
            try {
                $role = $driver->execute(array(array('ROLE')), true);
            } catch (CometException $e) {
                $driver->close(true);
                if ($e->getCode() === CometException::REDIS) {
                    throw $e;   // AUTH or SELECT refused: the configuration, not the failover
                }
                $problems[] = 'master ' . $node . ' (from sentinel ' . $at . '): ' . $e->getMessage();
                continue;
            }
            $role = $role[0];
            if (is_array($role) && isset($role[0]) && $role[0] === 'master') {
                $this->master = $driver;
                $this->masterAt = $node;
                $this->checkedAt = microtime(true);
                return;
            }
            $driver->close(true);
            $problems[] = $node . ' (from sentinel ' . $at . ') is not a master: ROLE '
                . ($role instanceof RedisError ? $role->message : (is_array($role) && isset($role[0]) ? $role[0] : '?'));
        }
        $none = new CometException('no sentinel could be reached', CometException::CONNECT);
        throw new CometException('no Redis master "' . $a['master'] . '" found through ' . $a['address'] . ': '
            . implode('; ', $problems), CometException::CONNECT, $reached ? null : $none);
    }

    /**
     * Asks the sentinels whether the master in use is still theirs; forgets it when the
     * first one that answers names another (no answer: keep using it).
     */
    private function recheck()
    {
        foreach ($this->address['seeds'] as $seed) {
            $at = Targets::hostPort($seed[0], $seed[1]);
            try {
                $reply = $this->sentinel($at, $seed)->execute(
                    array(array('SENTINEL', 'get-master-addr-by-name', $this->address['master'])), true);
            } catch (CometException $e) {
                $this->dropSentinel($at);
                continue;
            }
            $reply = $reply[0];
            if (!is_array($reply) || count($reply) < 2) {
                continue;
            }
            if (Targets::hostPort((string) $reply[0], (int) $reply[1]) === $this->masterAt) {
                $this->checkedAt = microtime(true);
            } else {
                $this->dropMaster();
            }
            return;
        }
    }

    private function sentinel($at, array $seed)
    {
        if (!isset($this->sentinels[$at])) {
            $a = $this->address;
            $address = Targets::nodeAddress(array('user' => $a['sentinel_user'], 'password' => $a['sentinel_password'],
                'db' => 0), $seed[0], $seed[1]);
            $this->sentinels[$at] = new SocketDriver($address, $this->options);
        }
        return $this->sentinels[$at];
    }

    private function dropSentinel($at)
    {
        if (isset($this->sentinels[$at])) {
            $this->sentinels[$at]->close(true);
            unset($this->sentinels[$at]);
        }
    }

    private function dropMaster()
    {
        if ($this->master !== null) {
            $this->master->close(true);
            $this->master = null;
            $this->masterAt = '';
        }
    }

    /** @param bool $force close persistent connections too */
    public function close($force = false)
    {
        if ($this->master !== null) {
            $this->master->close($force);
            $this->master = null;
            $this->masterAt = '';
        }
        foreach ($this->sentinels as $driver) {
            $driver->close($force);
        }
        $this->sentinels = array();
    }
}

} // class_exists

// ---- src/PhpRedisDriver.php ----

if (!class_exists('Comet\PhpRedisDriver', false)) {

/**
 * Redis through the phpredis extension (class Redis), for single commands. Batches go
 * through the built-in client: a phpredis pipeline whose server stops answering waits out
 * the read timeout once per queued reply (phpredis 5.3: 1,000 messages x 0.5 s).
 * @internal
 */
class PhpRedisDriver
{
    private $address;
    private $options;
    private $redis = null;
    private $broken = false;
    /** @var SocketDriver|null */
    private $pipeline = null;

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
    }

    private function connect()
    {
        $a = $this->address;
        $o = $this->options;
        $redis = new \Redis();
        $where = $a['socket'] !== '' ? $a['socket'] : $a['host'];
        $port = $a['socket'] !== '' ? 0 : $a['port'];
        try {
            $ok = $o['persistent'] ? $redis->pconnect($where, $port, $o['connect_timeout'],
                    'comet-php-' . substr(sha1($a['user'] . "\0" . $a['password'] . "\0" . $a['db']), 0, 12))
                : $redis->connect($where, $port, $o['connect_timeout']);
        } catch (\Exception $e) {
            throw new CometException('cannot connect to Redis at ' . $a['address'] . ': ' . $e->getMessage(), CometException::CONNECT, $e);
        }
        if (!$ok) {
            throw new CometException('cannot connect to Redis at ' . $a['address'], CometException::CONNECT);
        }
        try {
            $redis->setOption(\Redis::OPT_READ_TIMEOUT, $o['timeout']);
            if ($a['password'] !== '' && !$redis->auth($a['user'] !== '' ? array($a['user'], $a['password']) : $a['password'])) {
                throw new CometException('Redis AUTH failed: ' . $redis->getLastError(), CometException::REDIS);
            }
            if ($a['db'] > 0 && !$redis->select($a['db'])) {
                throw new CometException('Redis SELECT failed: ' . $redis->getLastError(), CometException::REDIS);
            }
        } catch (\RedisException $e) {
            $this->broken = true;
            throw new CometException('Redis: ' . $e->getMessage(), self::codeOf($e, null, 0), $e);
        }
        $this->redis = $redis;
    }

    public function execute(array $commands, $wantReplies)
    {
        if (count($commands) !== 1) {
            if ($this->pipeline === null) {
                $this->pipeline = new SocketDriver($this->address, $this->options);
            }
            return $this->pipeline->execute($commands, $wantReplies);
        }
        if ($this->redis === null) {
            $this->connect();
        }
        $redis = $this->redis;
        $start = microtime(true);
        try {
            $redis->clearLastError();
            $results = array(call_user_func_array(array($redis, 'rawCommand'), $commands[0]));
        } catch (\RedisException $e) {
            $this->broken = true;
            throw new CometException('Redis: ' . $e->getMessage(), self::codeOf($e, $start, $this->options['timeout']), $e);
        }
        // phpredis reports an error reply as false, the message apart.
        $error = $redis->getLastError();
        foreach ($results as $i => $result) {
            if ($result === false) {
                $results[$i] = new RedisError($error !== null && $error !== '' ? $error : 'error');
            }
        }
        return $results;
    }

    /** phpredis's messages do not tell a timeout from a lost connection: the clock does. */
    private static function codeOf(\Exception $e, $start, $timeout)
    {
        if (preg_match('/^(WRONGPASS|NOAUTH|NOPERM|ERR)/', $e->getMessage())) {
            return CometException::REDIS;
        }
        if (stripos($e->getMessage(), 'timed out') !== false
            || ($start !== null && microtime(true) - $start >= $timeout * 0.9)) {
            return CometException::TIMEOUT;
        }
        return CometException::IO;
    }

    /** @param bool $force close a persistent connection too */
    public function close($force = false)
    {
        if ($this->redis !== null && ($force || $this->broken || !$this->options['persistent'])) {
            try {
                $this->redis->close();
            } catch (\Exception $e) {
            }
        }
        $this->redis = null;
        if ($this->pipeline !== null) {
            $this->pipeline->close($force);
            $this->pipeline = null;
        }
    }
}

} // class_exists

// ---- src/PredisDriver.php ----

if (!class_exists('Comet\PredisDriver', false)) {

/**
 * Redis through Predis (predis/predis 1.x or 2.x, loaded by the application).
 * @internal
 */
class PredisDriver
{
    private $address;
    private $options;
    private $client = null;
    private $broken = false;

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
    }

    private function connect()
    {
        $a = $this->address;
        $o = $this->options;
        $params = array('timeout' => $o['connect_timeout'], 'read_write_timeout' => $o['timeout'],
            'persistent' => $o['persistent']);
        if ($o['persistent'] && $a['socket'] === '') {
            // A persistent id per credentials and database (Predis appends it to the address).
            $params['persistent'] = 'comet-php-' . substr(sha1($a['user'] . "\0" . $a['password'] . "\0" . $a['db']), 0, 12);
        }
        if ($a['socket'] !== '') {
            $params['scheme'] = 'unix';
            $params['path'] = $a['socket'];
        } else {
            $params['scheme'] = 'tcp';
            $params['host'] = $a['host'];
            $params['port'] = $a['port'];
        }
        if ($a['password'] !== '') {
            $params['password'] = $a['password'];
            if ($a['user'] !== '') {
                $params['username'] = $a['user'];
            }
        }
        if ($a['db'] > 0) {
            $params['database'] = $a['db'];
        }
        $client = new \Predis\Client($params, array('exceptions' => false));
        try {
            $client->connect();
        } catch (\Exception $e) {
            throw new CometException('cannot connect to Redis at ' . $a['address'] . ': ' . $e->getMessage(), CometException::CONNECT, $e);
        }
        $this->client = $client;
    }

    public function execute(array $commands, $wantReplies)
    {
        if ($this->client === null) {
            $this->connect();
        }
        $start = microtime(true);
        try {
            if (count($commands) === 1) {
                $isError = false;
                $reply = $this->client->executeRaw($commands[0], $isError);
                $results = array($isError ? new RedisError($reply) : $reply);
            } else {
                $pipe = $this->client->pipeline();
                foreach ($commands as $args) {
                    $pipe->executeCommand(call_user_func_array(array('Predis\Command\RawCommand', 'create'), $args));
                }
                $results = $pipe->execute();
            }
        } catch (\Exception $e) {
            $this->broken = true;
            // Predis says "Error while reading line" for a timeout and a lost connection alike.
            $timeout = stripos($e->getMessage(), 'timed out') !== false
                || microtime(true) - $start >= $this->options['timeout'] * 0.9;
            throw new CometException('Redis: ' . $e->getMessage(), $timeout ? CometException::TIMEOUT : CometException::IO, $e);
        }
        foreach ($results as $i => $result) {
            if ($result instanceof \Predis\Response\ErrorInterface) {
                $results[$i] = new RedisError($result->getMessage());
            } elseif (is_object($result) && !($result instanceof RedisError)) {
                $results[$i] = (string) $result;
            }
        }
        return $results;
    }

    /** @param bool $force close a persistent connection too */
    public function close($force = false)
    {
        if ($this->client !== null && ($force || $this->broken || !$this->options['persistent'])) {
            try {
                $this->client->disconnect();
            } catch (\Exception $e) {
            }
        }
        $this->client = null;
    }
}

} // class_exists

// ---- src/RespReader.php ----

if (!class_exists('Comet\RespReader', false)) {

/**
 * Collects RESP replies (RESP2) into PHP values; error replies become RedisError.
 * @internal
 */
class RespReader
{
    public $replies = array();
    /** replies dropped while looking for the marker */
    public $skipped = array();
    private $want;
    private $buf = '';
    private $pos = 0;
    private $marker;

    /**
     * @param int $want replies to collect
     * @param string|null $marker when set, replies are dropped until one equal to it
     *        (the answer to an ECHO sent first): they were left by earlier commands
     */
    public function __construct($want, $marker = null)
    {
        $this->want = $want;
        $this->marker = $marker;
    }

    public static function encode(array $args)
    {
        $out = '*' . count($args) . "\r\n";
        foreach ($args as $arg) {
            $arg = (string) $arg;
            $out .= '$' . Bytes::len($arg) . "\r\n" . $arg . "\r\n";
        }
        return $out;
    }

    public function feed($bytes)
    {
        $this->buf .= $bytes;
        while ($this->marker !== null || count($this->replies) < $this->want) {
            $parsed = $this->parse($this->pos, 0);
            if ($parsed === null) {
                break;
            }
            $this->pos = $parsed[1];
            if ($this->marker !== null) {
                if ($parsed[0] === $this->marker) {
                    $this->marker = null;
                } elseif ($parsed[0] instanceof RedisError && preg_match('/^(NOAUTH|WRONGPASS)/', $parsed[0]->message)) {
                    // Not authenticated: the ECHO fails too and the marker never comes.
                    throw new CometException('Redis AUTH failed: ' . $parsed[0]->message, CometException::REDIS);
                } else {
                    $this->skipped[] = $parsed[0];
                }
                continue;
            }
            $this->replies[] = $parsed[0];
        }
        if ($this->pos > 65536) {
            $this->buf = Bytes::sub($this->buf, $this->pos);
            $this->pos = 0;
        }
        if ($this->done() && $this->pos < Bytes::len($this->buf)) {
            throw new CometException('Redis sent more than expected (connection out of step)', CometException::IO);
        }
    }

    public function done()
    {
        return $this->marker === null && count($this->replies) >= $this->want;
    }

    public function more()
    {
        return '';
    }

    public function eof()
    {
    }

    /** @return array|null array(value, next position), null when incomplete */
    private function parse($pos, $depth)
    {
        $eol = Bytes::pos($this->buf, "\r\n", $pos);
        if ($eol === false) {
            return null;
        }
        $type = $this->buf[$pos];
        $line = Bytes::sub($this->buf, $pos + 1, $eol - $pos - 1);
        $next = $eol + 2;
        switch ($type) {
            case '+':
                return array($line, $next);
            case '-':
                return array(new RedisError($line), $next);
            case ':':
                return array((int) $line, $next);
            case '$':
                $length = (int) $line;
                if ($length < 0) {
                    return array(null, $next);
                }
                if (Bytes::len($this->buf) < $next + $length + 2) {
                    return null;
                }
                return array(Bytes::sub($this->buf, $next, $length), $next + $length + 2);
            case '*':
                $count = (int) $line;
                if ($count < 0) {
                    return array(null, $next);
                }
                if ($depth > 16) {
                    break;
                }
                $items = array();
                for ($i = 0; $i < $count; $i++) {
                    $item = $this->parse($next, $depth + 1);
                    if ($item === null) {
                        return null;
                    }
                    $items[] = $item[0];
                    $next = $item[1];
                }
                return array($items, $next);
        }
        throw new CometException('garbled answer from Redis', CometException::IO);
    }
}

} // class_exists

// ---- src/RedisError.php ----

if (!class_exists('Comet\RedisError', false)) {

/** @internal an error reply from Redis */
class RedisError
{
    public $message;

    public function __construct($message)
    {
        $this->message = (string) $message;
    }
}

} // class_exists

// ---- src/HttpPublisher.php ----

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

// ---- src/HttpQuery.php ----

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

// ---- src/PresenceReader.php ----

if (!class_exists('Comet\PresenceReader', false)) {

/**
 * Presence read from Redis, where sidecars started with --redis keep it
 * (docs/protocol.md, "Presence across sidecars (Redis)"): per channel C, the hash
 * comet:{C}:presence:info (user => info JSON text, "" for none) holds the members, and
 * comet:{C}:presence:count (user => number of sidecars with an entry) one field per member.
 * @internal
 */
class PresenceReader
{
    /**
     * @param RedisDrivers $drivers
     * @param string $channel a valid channel name
     * @return array list of array('id' => ..., 'info' => array(...))
     * @throws CometException CONNECT, TIMEOUT, IO, REDIS
     */
    public static function members(RedisDrivers $drivers, $channel)
    {
        $replies = self::run($drivers, array(array('HGETALL', 'comet:{' . $channel . '}:presence:info')));
        $flat = is_array($replies[0]) ? array_values($replies[0]) : array();
        $members = array();
        for ($i = 0; $i + 1 < count($flat); $i += 2) {
            $info = $flat[$i + 1] === '' || !function_exists('json_decode') ? null : json_decode($flat[$i + 1], true);
            $members[] = array('id' => (string) $flat[$i], 'info' => is_array($info) ? $info : array());
        }
        return $members;
    }

    /**
     * @param RedisDrivers $drivers
     * @param array $channels valid channel names
     * @return array channel => number of members
     * @throws CometException CONNECT, TIMEOUT, IO, REDIS
     */
    public static function counts(RedisDrivers $drivers, array $channels)
    {
        $commands = array();
        foreach ($channels as $channel) {
            $commands[] = array('HLEN', 'comet:{' . $channel . '}:presence:count');
        }
        $replies = self::run($drivers, $commands);
        $counts = array();
        foreach (array_values($channels) as $i => $channel) {
            $counts[$channel] = (int) $replies[$i];
        }
        return $counts;
    }

    private static function run(RedisDrivers $drivers, array $commands)
    {
        $driver = $drivers->get(false);
        try {
            $replies = $driver->execute($commands, true);
        } catch (CometException $e) {
            if ($e->getCode() !== CometException::REDIS) {
                $drivers->drop($driver);  // its connection's state is unknown
            }
            throw $e;
        }
        foreach ($replies as $reply) {
            if ($reply instanceof RedisError) {
                throw new CometException('Redis refused the presence query: ' . $reply->message, CometException::REDIS);
            }
        }
        return $replies;
    }
}

} // class_exists

// ---- src/WebhookVerifier.php ----

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

// ---- src/Wire.php ----

if (!class_exists('Comet\Wire', false)) {

/**
 * A non-blocking socket with an inactivity timeout: pump() writes its output and feeds
 * what it reads to a reader until the reader is satisfied, and fails when nothing moves
 * for `timeout` seconds.
 * @internal
 */
class Wire
{
    public $stream;
    public $label;
    public $broken = false;
    private $persistent;

    /**
     * Connects (blocking, at most $connectTimeout), then switches to non-blocking.
     * @param string $address tcp://host:port, tls://host:port or unix:///path
     * @param float $connectTimeout seconds
     * @param bool $persistent reuse a socket across requests (STREAM_CLIENT_PERSISTENT)
     * @param string $label who is at the other end, for error messages
     * @param string $persistentId for persistent TCP sockets: PHP keys them by address, and
     *        this suffix keeps ours apart from other libraries' and other credentials'
     * @throws CometException CONNECT
     */
    public function __construct($address, $connectTimeout, $persistent, $label, $persistentId = 'comet-php')
    {
        $this->label = $label;
        $this->persistent = (bool) $persistent;
        $flags = STREAM_CLIENT_CONNECT | ($persistent ? STREAM_CLIENT_PERSISTENT : 0);
        $shown = $address;
        if ($persistent && strncmp($address, 'tcp://', 6) === 0) {
            $address .= '/' . $persistentId;
        }
        $context = stream_context_create(strncmp($address, 'unix:', 5) === 0 ? array()
            : array('socket' => array('tcp_nodelay' => true)));
        $errno = 0;
        $errstr = '';
        $stream = @stream_socket_client($address, $errno, $errstr, $connectTimeout, $flags, $context);
        if (!$stream) {
            if ($errstr === '') {
                $last = error_get_last();
                $errstr = $last ? $last['message'] : 'unknown error';
            }
            throw new CometException('cannot connect to ' . $label . ' at ' . $shown . ': ' . $errstr
                . ($errno ? ' (errno ' . $errno . ')' : ''), CometException::CONNECT);
        }
        stream_set_blocking($stream, false);
        if ($persistent) {
            // A reused persistent socket must have nothing unread (left by a request that
            // gave up waiting) and must still be open; otherwise open a fresh one.
            $stale = @fread($stream, 8192);
            if ($stale === false || $stale !== '' || feof($stream)) {
                @fclose($stream);
                $stream = @stream_socket_client($address, $errno, $errstr, $connectTimeout, $flags, $context);
                if (!$stream) {
                    throw new CometException('cannot connect to ' . $label . ' at ' . $shown . ': ' . $errstr,
                        CometException::CONNECT);
                }
                stream_set_blocking($stream, false);
            }
        }
        $this->stream = $stream;
    }

    /**
     * @param string $out bytes to send
     * @param object $reader feed($bytes), done(), more() (bytes to send next, may be ''),
     *                       eof() (the peer closed)
     * @param float $timeout inactivity timeout, seconds
     * @throws CometException TIMEOUT, IO
     */
    public function pump($out, $reader, $timeout)
    {
        $deadline = microtime(true) + $timeout;
        $zeroWrites = 0;
        // Read only once select() said so (an answer cannot come before the request left).
        $canRead = $out === '';
        while (true) {
            $progress = false;
            if ($out !== '') {
                $n = @fwrite($this->stream, $out);
                if ($n === false) {
                    $this->fail('connection to ' . $this->label . ' lost while sending', CometException::IO);
                }
                if ($n > 0) {
                    $out = Bytes::sub($out, $n);
                    $progress = true;
                    $zeroWrites = 0;
                }
            }
            $closed = false;
            while ($canRead) {
                $chunk = @fread($this->stream, 65536);
                if ($chunk === false) {
                    $closed = true;
                    break;
                }
                if ($chunk === '') {
                    $closed = feof($this->stream);
                    break;
                }
                try {
                    $reader->feed($chunk);
                } catch (CometException $e) {
                    $this->broken = true;
                    throw $e;
                }
                $progress = true;
                if ($reader->done()) {
                    break;
                }
            }
            $more = $reader->more();
            if ($more !== '') {
                $out .= $more;
            }
            if ($out === '' && $reader->done()) {
                return;
            }
            if ($closed) {
                $reader->eof();
                if ($out === '' && $reader->done()) {
                    return;
                }
                $this->fail('connection closed by ' . $this->label . ' before it answered', CometException::IO);
            }
            $now = microtime(true);
            if ($progress) {
                $deadline = $now + $timeout;
            }
            $left = $deadline - $now;
            if ($left <= 0) {
                $this->fail('no answer from ' . $this->label . ' within ' . $timeout . ' s', CometException::TIMEOUT);
            }
            $r = array($this->stream);
            $w = $out !== '' ? array($this->stream) : null;
            $e = null;
            $ready = @stream_select($r, $w, $e, (int) $left, (int) (($left - (int) $left) * 1000000));
            if ($ready === false) {
                // Interrupted by a signal: go round again, the deadline still holds.
                usleep(1000);
                $canRead = true;
                continue;
            }
            $canRead = !empty($r);
            if ($w && $out !== '') {
                // Writable, yet the last write took nothing: a 0 from fwrite() is how old
                // PHP versions report a failed write.
                if (!$progress && ++$zeroWrites > 100) {
                    $this->fail('connection to ' . $this->label . ' lost while sending', CometException::IO);
                }
            }
        }
    }

    private function fail($message, $code)
    {
        $this->broken = true;
        throw new CometException($message, $code);
    }

    /**
     * Whether the socket is still open with nothing unread, checked without waiting: a
     * peer that closed it (a node killed or restarted, a master demoted by Sentinel, which
     * kills its clients) shows here, before anything is sent on it.
     * @return bool
     */
    public function idle()
    {
        if (!is_resource($this->stream)) {
            return false;
        }
        $chunk = @fread($this->stream, 1);
        if ($chunk === false || $chunk !== '' || feof($this->stream)) {
            $this->broken = true;
            return false;
        }
        return true;
    }

    /** @return bool a persistent socket that was used before (PHP counts its bytes in ftell) */
    public function reused()
    {
        return $this->persistent && @ftell($this->stream) > 0;
    }

    /** @return resource the socket, which this object no longer closes */
    public function detach()
    {
        $stream = $this->stream;
        $this->stream = null;
        return $stream;
    }

    /** Closes the socket; a healthy persistent one stays open for the next request. */
    public function close()
    {
        if (is_resource($this->stream)) {
            if (!$this->persistent || $this->broken) {
                @fclose($this->stream);
            } else {
                // Hand it back as PHP made it (blocking), in case other code shares it.
                @stream_set_blocking($this->stream, true);
            }
        }
        $this->stream = null;
    }
}

} // class_exists

// ---- src/Bytes.php ----

if (!class_exists('Comet\Bytes', false)) {

/**
 * String functions that count bytes even under mbstring.func_overload (PHP 5 and 7),
 * and the UTF-8 check.
 * @internal
 */
class Bytes
{
    private static $overloaded = null;

    private static function overloaded()
    {
        if (self::$overloaded === null) {
            self::$overloaded = function_exists('mb_strlen') && ((int) ini_get('mbstring.func_overload') & 2) !== 0;
        }
        return self::$overloaded;
    }

    public static function len($s)
    {
        return self::overloaded() ? mb_strlen($s, '8bit') : strlen($s);
    }

    public static function sub($s, $start, $length = null)
    {
        if (self::overloaded()) {
            return (string) mb_substr($s, $start, $length === null ? mb_strlen($s, '8bit') : $length, '8bit');
        }
        return (string) ($length === null ? substr($s, $start) : substr($s, $start, $length));
    }

    public static function pos($haystack, $needle, $offset = 0)
    {
        return self::overloaded() ? mb_strpos($haystack, $needle, $offset, '8bit') : strpos($haystack, $needle, $offset);
    }

    /** @return bool whether $s is valid UTF-8 */
    public static function isUtf8($s)
    {
        return $s === '' || preg_match('//u', $s) === 1;
    }
}

} // class_exists

// ---- src/Json.php ----

if (!class_exists('Comet\Json', false)) {

/**
 * JSON as the sidecar and tokens want it: slashes and Unicode not escaped. Uses
 * json_encode() when ext/json is there, else its own encoder (PHP 5 builds without
 * ext/json are rare, but exist).
 * @internal
 */
class Json
{
    /**
     * json_encode($value, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), or encode()
     * without ext/json.
     * @param mixed $value
     * @return string|bool false on failure
     */
    public static function compact($value)
    {
        if (function_exists('json_encode')) {
            return json_encode($value, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
        }
        return self::encode($value);
    }

    /** @return string why the last compact() failed */
    public static function lastError()
    {
        if (function_exists('json_last_error_msg')) {
            return json_last_error_msg();
        }
        return 'invalid value';
    }

    /**
     * The encoder for PHP builds without ext/json: like json_encode(...,
     * JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES).
     * @param mixed $value
     * @param int $depth nesting level (false beyond 512)
     * @return string|bool false for values JSON cannot hold (invalid UTF-8, NAN, INF)
     */
    public static function encode($value, $depth = 0)
    {
        if ($depth > 512) {
            return false;
        }
        if ($value === null) {
            return 'null';
        }
        if (is_bool($value)) {
            return $value ? 'true' : 'false';
        }
        if (is_int($value)) {
            return (string) $value;
        }
        if (is_float($value)) {
            if (is_nan($value) || is_infinite($value)) {
                return false;
            }
            $text = var_export($value, true);
            return $text;
        }
        if (is_string($value)) {
            if (!Bytes::isUtf8($value)) {
                return false;
            }
            $map = array('"' => '\"', '\\' => '\\\\', "\n" => '\n', "\r" => '\r', "\t" => '\t',
                "\x08" => '\b', "\x0c" => '\f');
            for ($c = 0; $c < 0x20; $c++) {
                if (!isset($map[chr($c)])) {
                    $map[chr($c)] = sprintf('\u%04x', $c);
                }
            }
            return '"' . strtr($value, $map) . '"';
        }
        if (is_object($value)) {
            if ($value instanceof \JsonSerializable) {
                return self::encode($value->jsonSerialize(), $depth + 1);
            }
            $value = get_object_vars($value);
            $isList = false;
        } elseif (is_array($value)) {
            $isList = $value === array() || array_keys($value) === range(0, count($value) - 1);
        } else {
            return false;
        }
        $parts = array();
        foreach ($value as $k => $v) {
            $item = self::encode($v, $depth + 1);
            if ($item === false) {
                return false;
            }
            if ($isList) {
                $parts[] = $item;
            } else {
                $key = self::encode((string) $k, $depth + 1);
                if ($key === false) {
                    return false;
                }
                $parts[] = $key . ':' . $item;
            }
        }
        return $isList ? '[' . implode(',', $parts) . ']' : '{' . implode(',', $parts) . '}';
    }
}

} // class_exists

// ---- src/Functions.php ----

if (!class_exists('Comet\Functions', false)) {

/**
 * State behind the comet_* functions.
 * @internal
 */
class Functions
{
    /** @var Client|null */
    public static $client = null;
    public static $options = array();
    public static $lastError = null;
    /** @var CometException|null */
    public static $lastException = null;

    /** @return Client */
    public static function client()
    {
        if (self::$client === null) {
            self::$client = new Client(self::$options);
        }
        return self::$client;
    }

    /**
     * Records a failure for comet_last_error() / comet_last_exception().
     * @param \Exception|\Throwable $e anything not a CometException is kept as an IO one
     * @return bool false, what the functions return on failure
     */
    public static function fail($e)
    {
        self::$lastException = $e instanceof CometException ? $e
            : new CometException($e->getMessage(), CometException::IO, $e);
        self::$lastError = $e->getMessage();
        return false;
    }

    /** Clears the last error after a successful call. */
    public static function ok()
    {
        self::$lastError = null;
        self::$lastException = null;
    }
}

} // class_exists

} // namespace Comet

namespace {

// ---- src/comet_functions.php ----

if (!function_exists('comet_publish')) {

/**
 * Sets options for the comet_* functions (see README.md). Options not given keep their
 * current value: at first the COMET_* environment variables, else the defaults.
 * @param array $options
 * @return bool false on a bad option (see comet_last_error())
 */
function comet_configure(array $options)
{
    try {
        $merged = array_merge(\Comet\Functions::$options, $options);
        $client = new \Comet\Client($merged);
        if (\Comet\Functions::$client !== null) {
            \Comet\Functions::$client->close();
        }
        \Comet\Functions::$options = $merged;
        \Comet\Functions::$client = $client;
        \Comet\Functions::ok();
        return true;
    } catch (\Exception $e) {
        return \Comet\Functions::fail($e);
    } catch (\Throwable $e) {
        return \Comet\Functions::fail($e);
    }
}

/**
 * Publishes one message to a channel.
 * @param string $channel
 * @param string|array|object $data strings as they are; arrays and objects as JSON
 * @param array|string $options 'event' => name, 'fire_and_forget' => bool (a string = event name)
 * @return int|bool the message id (true in fire-and-forget mode), false on failure
 */
function comet_publish($channel, $data, $options = array())
{
    try {
        $id = \Comet\Functions::client()->publish($channel, $data, $options);
        \Comet\Functions::ok();
        return $id;
    } catch (\Exception $e) {
        return \Comet\Functions::fail($e);
    } catch (\Throwable $e) {
        return \Comet\Functions::fail($e);
    }
}

/**
 * Publishes a batch in one round trip.
 * @param array $messages array('channel' => ..., 'data' => ..., 'event' => ...) or array($channel, $data[, $event])
 * @return array|bool message ids with the keys of $messages, false on failure
 */
function comet_publish_many(array $messages)
{
    try {
        $ids = \Comet\Functions::client()->publishMany($messages);
        \Comet\Functions::ok();
        return $ids;
    } catch (\Exception $e) {
        return \Comet\Functions::fail($e);
    } catch (\Throwable $e) {
        return \Comet\Functions::fail($e);
    }
}

/**
 * A token (JWT, HS256) for private channels: {"channels":[...],"exp":...,"iat":...} + $claims.
 * @param string|array $channels channel names, prefixes ending in * ('private:user/7/*'),
 *        or '*' (every channel): one, a comma-separated list, or an array
 * @param int $ttl seconds
 * @param array $claims e.g. 'sub' => the user id (int or string), 'nbf' => Unix seconds
 * @return string|bool false on failure
 */
function comet_token($channels, $ttl, $claims = array())
{
    try {
        $token = \Comet\Functions::client()->token($channels, $ttl, is_array($claims) ? $claims : array());
        \Comet\Functions::ok();
        return $token;
    } catch (\Exception $e) {
        return \Comet\Functions::fail($e);
    } catch (\Throwable $e) {
        return \Comet\Functions::fail($e);
    }
}

/**
 * The app's --auth-url endpoint: answers the sidecar with the asked channels
 * ($_POST['channels']) that $allow($channel, $user) allows for the session's user
 * ($_SESSION['user_id']; nothing is allowed without one). Sends the JSON answer and
 * returns it. Options: see Comet\Client::authorize() ('user', 'info', 'ttl', 'guests',
 * 'session' => false, 'channels', 'send' => false).
 * @param callable $allow function ($channel, $user) { return bool; }
 * @param array $options
 * @return array|bool the answer body (array('allow' => [...], ...), or array('error' => ...,
 *         'status' => 400) for a malformed question); false on failure (a bad option, the
 *         session not starting, $allow throwing), after sending a 500 JSON error
 */
function comet_authorize($allow, $options = array())
{
    try {
        $answer = \Comet\Client::authorize($allow, is_array($options) ? $options : array());
        \Comet\Functions::ok();
        return $answer;
    } catch (\Exception $e) {
        return \Comet\Functions::fail($e);
    } catch (\Throwable $e) {
        return \Comet\Functions::fail($e);
    }
}

/**
 * The members of a presence channel, asked from the sidecar (GET /presence/<channel>).
 * @param string $channel e.g. 'presence:room'
 * @return array|bool list of array('id' => '7', 'info' => array(...)), false on failure
 */
function comet_presence($channel)
{
    try {
        $members = \Comet\Functions::client()->presence($channel);
        \Comet\Functions::ok();
        return $members;
    } catch (\Exception $e) {
        return \Comet\Functions::fail($e);
    } catch (\Throwable $e) {
        return \Comet\Functions::fail($e);
    }
}

/**
 * How many members a presence channel has (GET /occupancy?ch=...).
 * @param string|array $channel one channel, or an array of them
 * @return int|array|bool the count (channel => count for an array), false on failure
 */
function comet_occupancy($channel)
{
    try {
        $count = \Comet\Functions::client()->occupancy($channel);
        \Comet\Functions::ok();
        return $count;
    } catch (\Exception $e) {
        return \Comet\Functions::fail($e);
    } catch (\Throwable $e) {
        return \Comet\Functions::fail($e);
    }
}

/**
 * The events of a webhook request from the sidecar (--webhook-url), once its signature
 * (X-Comet-Signature, HMAC-SHA256 under the shared secret) and its timestamp (within
 * 300 s) check out. comet_last_error() says why a request was refused.
 * @param string|null $secret null for the webhook_secret option (COMET_WEBHOOK_SECRET)
 * @param string|null $body null reads php://input
 * @param array|null $headers null reads this request's headers
 * @return array|bool the events (array('name' => 'member_added', 'channel' => ...,
 *         'user_id' => ..., 'info' => ..., 'time_ms' => ...), ...), false when not verified
 */
function comet_webhook_events($secret = null, $body = null, $headers = null)
{
    $batch = comet_webhook_batch($secret, $body, $headers);
    return $batch === false ? false : $batch['events'];
}

/**
 * Like comet_webhook_events(), with the batch around them: array('id' => the
 * X-Comet-Webhook-Id, the same on every retry of a batch, so a batch seen before can be
 * skipped; 'time_ms' => ..., 'events' => array(...)).
 * @param string|null $secret
 * @param string|null $body
 * @param array|null $headers
 * @return array|bool false when not verified
 */
function comet_webhook_batch($secret = null, $body = null, $headers = null)
{
    try {
        if ($secret === null) {
            $secret = \Comet\Functions::client()->getOption('webhook_secret');
        }
        $batch = \Comet\Client::verifyWebhookWith($secret, $body, $headers);
        \Comet\Functions::ok();
        return $batch;
    } catch (\Exception $e) {
        return \Comet\Functions::fail($e);
    } catch (\Throwable $e) {
        return \Comet\Functions::fail($e);
    }
}

/**
 * Why the last comet_* call failed, or null when it succeeded.
 * @return string|null
 */
function comet_last_error()
{
    return \Comet\Functions::$lastError;
}

/**
 * The exception behind comet_last_error() (its getCode() is a CometException constant).
 * @return \Comet\CometException|null
 */
function comet_last_exception()
{
    return \Comet\Functions::$lastException;
}

/**
 * The Comet\Client behind the functions.
 * @return \Comet\Client|bool false on a bad configuration
 */
function comet_client()
{
    try {
        return \Comet\Functions::client();
    } catch (\Exception $e) {
        return \Comet\Functions::fail($e);
    } catch (\Throwable $e) {
        return \Comet\Functions::fail($e);
    }
}

} // function_exists

} // namespace
