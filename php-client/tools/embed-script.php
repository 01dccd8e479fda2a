<?php
/**
 * Copies bridge/lua/publish.lua, byte for byte, into the "@generated-begin publish.lua" /
 * "@generated-end" block of a PHP file (ScriptEmbedder.php).
 *
 *   php php-client/tools/embed-script.php           into src/PublishScript.php, then rebuild
 *                                                   comet.php: the same as tools/build.php
 *   php php-client/tools/embed-script.php --check   exit 1 if either is out of date, change nothing
 *   options: --script FILE (default bridge/lua/publish.lua),
 *            --target FILE (only that file, e.g. a copy of comet.php; no rebuild)
 *
 * Exit codes: 0 up to date / rewritten, 1 differs (--check), 2 usage or file error.
 */

require_once dirname(__FILE__) . '/Builder.php';

$clientDir = realpath(dirname(__FILE__) . '/..');
$script = $clientDir . '/../bridge/lua/publish.lua';
if (realpath($script) !== false) {
    $script = realpath($script);
}
$target = null;
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
if ($target === null) {
    exit(CometTools\Builder::run($clientDir, $script, $check));
}

$lua = @file_get_contents($script);
$php = @file_get_contents($target);
if ($lua === false || $php === false) {
    fwrite(STDERR, 'embed-script: cannot read ' . ($lua === false ? $script : $target) . "\n");
    exit(2);
}
try {
    $updated = CometTools\ScriptEmbedder::embed($php, $lua);
} catch (RuntimeException $e) {
    fwrite(STDERR, "embed-script: $target: " . $e->getMessage() . "\n");
    exit(2);
}
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
