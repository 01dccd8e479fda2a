<?php

namespace Comet;

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
