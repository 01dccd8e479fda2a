<?php
/**
 * The comet_* functions: the client's API for plain PHP pages. They never throw; they
 * return false on failure and keep the reason for comet_last_error(). State (options, the
 * client, the last error) lives in Comet\Functions. Composer loads this file up front
 * ("files" autoload: functions cannot be autoloaded); the classes come through PSR-4.
 */

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
