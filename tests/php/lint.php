<?php
/**
 * CTest php.lint: `php -l` over every PHP file in php-client/, tests/php/ and the
 * shipped PHP pages (deploy/), and the PHP 5.6 compatibility check (Debian php-parser,
 * PHP-5-only mode) over the files a PHP 5.6 install loads: php-client/comet.php,
 * php-client/src/, php-client/tools/ and the demo app (deploy/demo-app/, for XAMPP).
 * Exit 0 when everything passes; prints "N passed, N failed".
 */
require __DIR__ . '/lib/Php5Compat.php';

$root = realpath(__DIR__ . '/../..');
$php = PHP_BINARY;

function php_files($dir)
{
    $out = array();
    $it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS));
    foreach ($it as $f) {
        if ($f->isFile() && substr($f->getFilename(), -4) === '.php' && strpos($f->getPathname(), '/vendor/') === false) {
            $out[] = $f->getPathname();
        }
    }
    sort($out);
    return $out;
}

$passed = 0;
$failed = 0;
$lintFiles = array_merge(php_files("$root/php-client"), php_files("$root/tests/php"), php_files("$root/deploy"));
foreach ($lintFiles as $file) {
    $cmd = escapeshellarg($php) . ' -d display_errors=1 -l ' . escapeshellarg($file) . ' 2>&1';
    exec($cmd, $output, $rc);
    $rel = substr($file, strlen($root) + 1);
    if ($rc === 0) {
        $passed++;
    } else {
        $failed++;
        echo "FAIL php -l $rel\n  " . implode("\n  ", $output) . "\n";
    }
    $output = array();
}
echo 'php -l: ' . count($lintFiles) . " files\n";

if (!CometTest\Php5Compat::available()) {
    echo "FAIL php-parser not installed (Debian package php-parser): PHP 5.6 check not run\n";
    $failed++;
} else {
    $compatFiles = array_merge(array("$root/php-client/comet.php"), php_files("$root/php-client/src"),
        php_files("$root/php-client/tools"), php_files("$root/deploy/demo-app"));
    foreach ($compatFiles as $file) {
        $problems = CometTest\Php5Compat::checkFile($file);
        $rel = substr($file, strlen($root) + 1);
        if ($problems) {
            $failed++;
            echo "FAIL PHP 5.6 compatibility: $rel\n  " . implode("\n  ", $problems) . "\n";
        } else {
            $passed++;
            echo "ok   PHP 5.6 compatible: $rel\n";
        }
    }
}
echo "$passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
