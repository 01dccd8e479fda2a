<?php
/**
 * Copies bridge/lua/publish.lua into php-client/comet.php (Comet\Client::PUBLISH_SCRIPT),
 * byte for byte, between the "@generated-begin publish.lua" and "@generated-end" lines.
 *
 *   php php-client/tools/embed-script.php           rewrite comet.php if it differs
 *   php php-client/tools/embed-script.php --check   exit 1 if it differs, change nothing
 *   options: --script FILE (default bridge/lua/publish.lua), --target FILE (default comet.php)
 *
 * Exit codes: 0 up to date / rewritten, 1 differs (--check), 2 usage or file error.
 */

$here = dirname(__FILE__);
$script = $here . '/../../bridge/lua/publish.lua';
if (realpath($script) !== false) {
    $script = realpath($script);
}
$target = realpath($here . '/..') . '/comet.php';
$check = false;
$args = array_slice($argv, 1);
for ($i = 0; $i < count($args); $i++) {
    if ($args[$i] === '--check') {
        $check = true;
    } elseif ($args[$i] === '--script' && isset($args[$i + 1])) {
        $script = $args[++$i];
    } elseif ($args[$i] === '--target' && isset($args[$i + 1])) {
        $target = $args[++$i];
    } else {
        fwrite(STDERR, "usage: php embed-script.php [--check] [--script FILE] [--target FILE]\n");
        exit(2);
    }
}

$lua = @file_get_contents($script);
$php = @file_get_contents($target);
if ($lua === false || $php === false) {
    fwrite(STDERR, 'embed-script: cannot read ' . ($lua === false ? $script : $target) . "\n");
    exit(2);
}
$delimiter = 'COMET_PUBLISH_LUA';
// A nowdoc ends at a line holding its delimiter (PHP 7.3+ even when indented or followed
// by other text), so the script must not contain one.
if (preg_match('/^\s*' . $delimiter . '\b/m', $lua)) {
    fwrite(STDERR, "embed-script: the script contains a line starting with $delimiter\n");
    exit(2);
}

$begin = '    // @generated-begin publish.lua';
$end = '    // @generated-end publish.lua';
$from = strpos($php, $begin . "\n");
$to = strpos($php, $end . "\n");
if ($from === false || $to === false || $to < $from) {
    fwrite(STDERR, "embed-script: markers not found in $target\n");
    exit(2);
}
// The newline just before the closing delimiter is not part of a nowdoc, hence the extra "\n".
$block = $begin . "\n"
    . "    const PUBLISH_SCRIPT = <<<'" . $delimiter . "'\n"
    . $lua . "\n"
    . $delimiter . ";\n";
$updated = substr($php, 0, $from) . $block . substr($php, $to);

if ($updated === $php) {
    echo "embed-script: $target is up to date\n";
    exit(0);
}
if ($check) {
    fwrite(STDERR, "embed-script: the script embedded in $target differs from $script;"
        . " run php php-client/tools/embed-script.php\n");
    exit(1);
}
if (file_put_contents($target, $updated) === false) {
    fwrite(STDERR, "embed-script: cannot write $target\n");
    exit(2);
}
echo "embed-script: embedded $script into $target\n";
exit(0);
