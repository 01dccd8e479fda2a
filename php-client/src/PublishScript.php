<?php

namespace Comet;

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
