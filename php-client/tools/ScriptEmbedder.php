<?php
/**
 * Puts bridge/lua/publish.lua, byte for byte, into a PHP file: the lines between
 * "// @generated-begin publish.lua" and "// @generated-end publish.lua" become
 * `const LUA = <<<'COMET_PUBLISH_LUA'` ... (a nowdoc: no escaping, nothing interpolated).
 * src/PublishScript.php holds that block, and so does comet.php, which is built from it.
 */

namespace CometTools;

final class ScriptEmbedder
{
    const BEGIN = '    // @generated-begin publish.lua';
    const END = '    // @generated-end publish.lua';
    const DELIMITER = 'COMET_PUBLISH_LUA';

    /**
     * $php with the block between the markers replaced by $lua.
     * @param string $php the file's text
     * @param string $lua the script
     * @return string unchanged when the block already holds $lua
     * @throws \RuntimeException when the markers are missing or $lua would end the nowdoc early
     */
    public static function embed($php, $lua)
    {
        // A nowdoc ends at a line holding its delimiter (PHP 7.3+ even when indented or
        // followed by other text), so the script must not contain one.
        if (preg_match('/^\s*' . self::DELIMITER . '\b/m', $lua)) {
            throw new \RuntimeException('the script contains a line starting with ' . self::DELIMITER);
        }
        $from = strpos($php, self::BEGIN . "\n");
        $to = strpos($php, self::END . "\n");
        if ($from === false || $to === false || $to < $from) {
            throw new \RuntimeException('the "@generated-begin publish.lua" / "@generated-end" markers are missing');
        }
        // The newline just before the closing delimiter is not part of a nowdoc, hence the extra "\n".
        $block = self::BEGIN . "\n"
            . "    const LUA = <<<'" . self::DELIMITER . "'\n"
            . $lua . "\n"
            . self::DELIMITER . ";\n";
        return substr($php, 0, $from) . $block . substr($php, $to);
    }
}
