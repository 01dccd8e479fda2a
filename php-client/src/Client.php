<?php

namespace Comet;

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
