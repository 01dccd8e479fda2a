<?php

namespace Comet;

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
