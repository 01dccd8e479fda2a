<?php

namespace Comet;

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
