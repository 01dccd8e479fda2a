<?php
/**
 * Loads the client under test (the single-file build, as XAMPP users include it), the
 * test servers, and Predis when Debian's php-predis is installed (for the Predis driver
 * tests; they are skipped without it, as the phpredis ones are without ext-redis).
 */
error_reporting(-1);
require __DIR__ . '/../../php-client/comet.php';
require __DIR__ . '/lib/Servers.php';
require __DIR__ . '/lib/RedisTopologies.php';
require __DIR__ . '/lib/CometTestCase.php';
require __DIR__ . '/lib/Php5Compat.php';
if (!class_exists('Predis\Client') && is_file('/usr/share/php/Predis/Autoloader.php')) {
    require_once '/usr/share/php/Predis/Autoloader.php';
    Predis\Autoloader::register();
}
