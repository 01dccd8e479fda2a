<?php

namespace Comet;

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
