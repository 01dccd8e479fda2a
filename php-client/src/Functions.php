<?php

namespace Comet;

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
