<?php
/**
 * Builds php-client/comet.php (the single file XAMPP users copy) from php-client/src/,
 * after copying bridge/lua/publish.lua into src/PublishScript.php. See Builder.php.
 *
 *   php php-client/tools/build.php           rewrite what is out of date
 *   php php-client/tools/build.php --check   exit 1 if anything is out of date, change nothing
 *   option: --script FILE (default bridge/lua/publish.lua)
 *
 * Exit codes: 0 up to date / rewritten, 1 out of date (--check), 2 usage, file or source error.
 */

require_once dirname(__FILE__) . '/Builder.php';

$clientDir = realpath(dirname(__FILE__) . '/..');
$script = $clientDir . '/../bridge/lua/publish.lua';
$check = false;
$args = array_slice($argv, 1);
for ($i = 0; $i < count($args); $i++) {
    if ($args[$i] === '--check') {
        $check = true;
    } elseif ($args[$i] === '--script' && isset($args[$i + 1])) {
        $script = $args[++$i];
    } else {
        fwrite(STDERR, "usage: php build.php [--check] [--script FILE]\n");
        exit(2);
    }
}
exit(CometTools\Builder::run($clientDir, $script, $check));
