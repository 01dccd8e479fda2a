<?php
/**
 * Builds php-client/comet.php, the single file XAMPP users copy, from php-client/src/:
 * the class files inside `namespace Comet { ... }`, then comet_functions.php inside
 * `namespace { ... }`, each copied verbatim. Before that it copies bridge/lua/publish.lua
 * into src/PublishScript.php (ScriptEmbedder), so one command follows a script change.
 * tools/build.php is the command line; tests/php runs it with --check.
 */

namespace CometTools;

require_once __DIR__ . '/ScriptEmbedder.php';

final class Builder
{
    /**
     * The class files in comet.php's order: the public API first, then what it uses.
     * Every src/*.php must be listed here or be FUNCTIONS_FILE: the build refuses others,
     * so a new class cannot be left out of comet.php.
     */
    private static $classes = array(
        'CometException', 'Client',
        'ClientOptions', 'Targets', 'MessageValidator', 'TokenSigner', 'Authorizer',
        'PublishScript', 'RedisPublisher', 'RedisDrivers', 'SocketDriver', 'ClusterDriver', 'SentinelDriver',
        'PhpRedisDriver', 'PredisDriver',
        'RespReader', 'RedisError', 'HttpPublisher', 'HttpQuery', 'PresenceReader', 'WebhookVerifier', 'Wire', 'Bytes',
        'Json', 'Functions',
    );

    /** The global comet_* functions (Composer's "files" autoload). */
    const FUNCTIONS_FILE = 'comet_functions.php';

    /**
     * Embeds the script into the sources, then builds comet.php from them; with $check,
     * changes nothing and reports what is out of date. Prints what it did.
     * @param string $clientDir the php-client directory
     * @param string $scriptFile bridge/lua/publish.lua
     * @param bool $check
     * @return int exit code: 0 up to date or rewritten, 1 out of date (with $check), 2 error
     */
    public static function run($clientDir, $scriptFile, $check)
    {
        $name = basename($clientDir);
        $scriptSource = "$clientDir/src/PublishScript.php";
        $target = "$clientDir/comet.php";
        $stale = array();
        try {
            $source = self::read($scriptSource);
            $embedded = ScriptEmbedder::embed($source, self::read($scriptFile));
            if ($embedded !== $source) {
                if ($check) {
                    $stale[] = "$name/src/PublishScript.php embeds a different " . self::shown($scriptFile, $clientDir);
                } else {
                    self::write($scriptSource, $embedded);
                    echo "build: copied " . self::shown($scriptFile, $clientDir) . " into $name/src/PublishScript.php\n";
                }
            }
            $built = self::build("$clientDir/src");
            $current = is_file($target) ? self::read($target) : '';
            if ($built === $current) {
                echo "build: $name/comet.php is up to date\n";
            } elseif ($check) {
                $stale[] = "$name/comet.php is not what $name/src/ builds (first difference at line "
                    . self::firstDifferentLine($current, $built) . ')';
            } else {
                self::write($target, $built);
                echo "build: wrote $name/comet.php (" . substr_count($built, "\n") . " lines)\n";
            }
        } catch (\RuntimeException $e) {
            fwrite(STDERR, 'build: ' . $e->getMessage() . "\n");
            return 2;
        }
        if ($stale) {
            fwrite(STDERR, 'build: out of date: ' . implode('; ', $stale)
                . ". Run: php $name/tools/build.php\n");
            return 1;
        }
        return 0;
    }

    /**
     * comet.php as the sources build it.
     * @param string $srcDir php-client/src
     * @return string
     * @throws \RuntimeException for a missing, unlisted or malformed source
     */
    public static function build($srcDir)
    {
        $unlisted = array();
        foreach (glob("$srcDir/*.php") as $file) {
            $base = basename($file);
            if ($base !== self::FUNCTIONS_FILE && !in_array(basename($base, '.php'), self::$classes, true)) {
                $unlisted[] = $base;
            }
        }
        if ($unlisted) {
            throw new \RuntimeException('src/' . implode(', src/', $unlisted)
                . ' not in the class list of tools/Builder.php (add it where it belongs in comet.php)');
        }
        $out = self::header() . "\nnamespace Comet {\n";
        foreach (self::$classes as $class) {
            $out .= "\n// ---- src/$class.php ----\n\n" . self::classCode($srcDir, $class);
        }
        $out .= "\n} // namespace Comet\n\nnamespace {\n";
        $out .= "\n// ---- src/" . self::FUNCTIONS_FILE . " ----\n\n" . self::functionsCode($srcDir);
        return $out . "\n} // namespace\n";
    }

    /** A class file's code after its namespace line; checks the shape the build relies on. */
    private static function classCode($srcDir, $class)
    {
        $file = "src/$class.php";
        $code = self::code($srcDir . '/' . $class . '.php', $file);
        $namespace = "namespace Comet;\n\n";
        if (strncmp($code, $namespace, strlen($namespace)) !== 0) {
            throw new \RuntimeException("$file must start with <?php, an optional file comment, then `namespace Comet;`"
                . ' and a blank line');
        }
        $code = substr($code, strlen($namespace));
        // In comet.php an import would apply to every class after it, and an import
        // cannot sit inside the class_exists() guard anyway.
        if (preg_match('/^use\s/m', $code)) {
            throw new \RuntimeException("$file has a use import: no use imports, write \\Name or Name instead");
        }
        // Declared only when missing, so comet.php and the Composer sources can both be loaded.
        $guard = "if (!class_exists('Comet\\" . $class . "', false)) {\n";
        if (strncmp($code, $guard, strlen($guard)) !== 0 || !self::endsWith($code, "\n} // class_exists\n")) {
            throw new \RuntimeException("$file must wrap its class in $guard ... } // class_exists");
        }
        preg_match_all('/^(?:final |abstract )?(?:class|interface|trait) (\w+)/m', $code, $m);
        if ($m[1] !== array($class)) {
            throw new \RuntimeException("$file must declare one class, $class (PSR-4), found: " . implode(', ', $m[1]));
        }
        return $code;
    }

    private static function functionsCode($srcDir)
    {
        $file = 'src/' . self::FUNCTIONS_FILE;
        $code = self::code($srcDir . '/' . self::FUNCTIONS_FILE, $file);
        $guard = "if (!function_exists('comet_publish')) {\n";
        if (strncmp($code, $guard, strlen($guard)) !== 0 || !self::endsWith($code, "\n} // function_exists\n")
            || preg_match('/^namespace\b/m', $code)) {
            throw new \RuntimeException("$file must be global code wrapped in $guard ... } // function_exists");
        }
        return $code;
    }

    /** A source's code: without its opening tag and file comment (comet.php has its own). */
    private static function code($path, $file)
    {
        $text = self::read($path);
        if (strpos($text, "\r") !== false) {
            throw new \RuntimeException("$file has CR line endings");
        }
        if (!preg_match('#\A<\?php\n(?:/\*\*.*?\*/\n)?\n*#s', $text, $m) || preg_match('/\?>\s*\z/', $text)) {
            throw new \RuntimeException("$file must start with <?php and not end with ?>");
        }
        return substr($text, strlen($m[0]));
    }

    private static function header()
    {
        return <<<'COMET_HEADER'
<?php
/**
 * Comet Sidecar PHP client: push messages to browsers through the Comet Sidecar, issue
 * tokens for private channels, and answer the sidecar's --auth-url questions.
 *
 * GENERATED FILE, do not edit: php-client/tools/build.php joins the sources in
 * php-client/src/ (one class per file, and comet_functions.php) into this file. Edit
 * those, then run `php php-client/tools/build.php` (tests/php fails while this file is
 * not what the sources build).
 *
 * One includable file with no required extension, for PHP 5.6 to 8.x:
 *
 *     require __DIR__ . '/comet.php';
 *     comet_configure(array('redis_url' => 'redis://127.0.0.1:6379'));
 *     comet_publish('news', array('title' => 'Hello'));
 *
 * Two APIs over the same code:
 *   - functions comet_configure(), comet_publish(), comet_publish_many(), comet_token(),
 *     comet_authorize(), comet_last_error(): they return false on failure, and
 *     comet_last_error() says why;
 *   - class Comet\Client (the Composer package autoloads it from src/): the same
 *     operations, throwing Comet\CometException on failure.
 *
 * Publishing runs the sidecar's shared Lua script (bridge/lua/publish.lua, embedded below)
 * on Redis with EVALSHA, falling back to EVAL on NOSCRIPT, over the built-in RESP client
 * (stream_socket_client), phpredis or Predis. Without Redis, or when Redis cannot be
 * reached, it posts to the sidecar's POST /pub/<channel> (plain sockets, no cURL).
 * README.md beside this file documents the options, errors and the token format.
 *
 * Each class is declared only when it does not exist yet, and the functions only when
 * comet_publish() does not: including this file twice, or next to the Composer package,
 * declares nothing twice.
 *
 * Keep the sources PHP 5.6 compatible: no scalar or return type declarations, no ??, no
 * <=>, no PHP 7 syntax (tests/php checks them with php-parser in PHP 5 mode).
 */

COMET_HEADER;
    }

    private static function firstDifferentLine($a, $b)
    {
        $a = explode("\n", $a);
        $b = explode("\n", $b);
        $n = min(count($a), count($b));
        for ($i = 0; $i < $n && $a[$i] === $b[$i]; $i++) {
        }
        return $i + 1;
    }

    /** $path relative to the directory holding php-client, when it is below it. */
    private static function shown($path, $clientDir)
    {
        $real = realpath($path);
        $top = dirname(realpath($clientDir)) . '/';
        return $real !== false && strncmp($real, $top, strlen($top)) === 0 ? substr($real, strlen($top)) : $path;
    }

    private static function endsWith($s, $suffix)
    {
        return substr($s, -strlen($suffix)) === $suffix;
    }

    private static function read($path)
    {
        $text = is_file($path) ? @file_get_contents($path) : false;
        if ($text === false) {
            throw new \RuntimeException("cannot read $path");
        }
        return $text;
    }

    private static function write($path, $text)
    {
        if (@file_put_contents($path, $text) === false) {
            throw new \RuntimeException("cannot write $path");
        }
    }
}
