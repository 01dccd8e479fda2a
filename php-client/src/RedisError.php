<?php

namespace Comet;

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
