<?php

use Comet\Client;
use CometTest\CometTestCase;
use CometTest\Paths;

/**
 * The sources in php-client/src/ run on their own, loaded as Composer loads them (PSR-4
 * for Comet\ => src/, plus the "files" entry src/comet_functions.php) without comet.php;
 * and they can be loaded next to comet.php in either order without declaring anything
 * twice. Each case runs in a child PHP process, since this one has comet.php loaded.
 */
class SourcesTest extends CometTestCase
{
    public function testSourcesPublishAndSignWithoutTheBuiltFile()
    {
        $ch = self::channel('src');
        $code = self::composerAutoload() . '
            $out = array();
            $out["configured"] = comet_configure(array("redis_url" => ' . var_export(static::$redis->url(), true) . ',
                "secret" => "s3cret", "timeout" => 2));
            $out["redis"] = comet_publish(' . var_export($ch, true) . ', array("via" => "redis"), "ev");
            $out["error"] = comet_last_error();
            $out["batch"] = comet_publish_many(array(array(' . var_export($ch, true) . ', "b1"), "k" => array(' . var_export($ch, true) . ', "b2")));
            $http = new Comet\Client(array("publish_url" => "' . static::$sidecar->publishUrl() . '", "timeout" => 2));
            $out["transport"] = $http->getTransport();
            $out["http"] = $http->publish(' . var_export($ch, true) . ', "via http");
            $out["token"] = comet_token(array("private:x"), 60, array("sub" => "7"));
            $out["signed"] = Comet\Client::signToken("s3cret", "a,b", 60, array(), 1700000000);
            $out["files"] = get_included_files();
            echo json_encode($out);';
        $out = self::runPhp($code);
        $got = json_decode($out, true);
        $this->assertIsArray($got, $out);

        $this->assertTrue($got['configured']);
        $this->assertSame(1, $got['redis']);
        $this->assertNull($got['error']);
        $this->assertSame(array(0 => 2, 'k' => 3), $got['batch']);
        $this->assertSame('http', $got['transport']);
        $this->assertSame(4, $got['http']);
        $this->assertPolled($ch, array(array(1, '{"via":"redis"}', 'ev'), array(2, 'b1', null), array(3, 'b2', null),
            array(4, 'via http', null)));

        // The same token as the built file signs, and a valid one for the secret.
        $this->assertSame(Client::signToken('s3cret', 'a,b', 60, array(), 1700000000), $got['signed']);
        $parts = explode('.', $got['token']);
        $this->assertCount(3, $parts);
        $payload = json_decode(base64_decode(strtr($parts[1], '-_', '+/')), true);
        $this->assertSame(array('private:x'), $payload['channels']);
        $this->assertSame('7', $payload['sub']);
        $this->assertSame(60, $payload['exp'] - $payload['iat']);
        $this->assertSame(rtrim(strtr(base64_encode(hash_hmac('sha256', $parts[0] . '.' . $parts[1], 's3cret', true)), '+/', '-_'), '='),
            $parts[2]);

        // Only the sources were loaded, each class from its own file.
        $src = Paths::root() . '/php-client/src/';
        $loaded = array();
        foreach ($got['files'] as $file) {
            $this->assertStringStartsWith($src, $file, 'loaded from outside src/');
            $loaded[] = substr($file, strlen($src));
        }
        foreach (array('comet_functions.php', 'Client.php', 'ClientOptions.php', 'Targets.php', 'MessageValidator.php',
                     'RedisPublisher.php', 'RedisDrivers.php', 'PublishScript.php', 'HttpPublisher.php', 'Wire.php',
                     'TokenSigner.php', 'Functions.php') as $file) {
            $this->assertContains($file, $loaded);
        }
    }

    /** @return array the two orders */
    public function loadOrders()
    {
        return array('sources first' => array(true), 'comet.php first' => array(false));
    }

    /** @dataProvider loadOrders */
    public function testSourcesAndBuiltFileLoadTogether($sourcesFirst)
    {
        $root = var_export(Paths::root() . '/php-client', true);
        $requireAll = 'foreach (glob(' . $root . ' . "/src/*.php") as $f) { require_once $f; }';
        if ($sourcesFirst) {
            // Some classes autoloaded from src/, then comet.php declares the others.
            $code = self::composerAutoload() . '
                $c = new Comet\Client(array("publish_url" => "http://127.0.0.1:1"));
                require ' . $root . ' . "/comet.php";
                $from = array("Client" => "src/Client.php", "Json" => "comet.php");';
        } else {
            // comet.php first; a Composer autoloader loaded later finds everything declared.
            $code = 'require ' . $root . ' . "/comet.php";' . self::composerAutoload() . $requireAll . '
                $from = array("Client" => "comet.php", "Json" => "comet.php");';
        }
        $code .= '
            foreach ($from as $class => $file) {
                $r = new ReflectionClass("Comet\\\\" . $class);
                if (substr($r->getFileName(), -strlen($file)) !== $file) {
                    echo "$class from ", $r->getFileName(), "\n";
                }
            }
            echo Comet\Json::encode(array("x")), comet_token("a", 5) === false ? " no secret" : " token", "\n";';
        $this->assertSame("[\"x\"] no secret\n", self::runPhp($code));
    }

    /** PHP code registering a PSR-4 autoloader for src/ and loading comet_functions.php, as Composer would. */
    private static function composerAutoload()
    {
        $src = var_export(Paths::root() . '/php-client/src', true);
        return '
            spl_autoload_register(function ($class) {
                $prefix = "Comet\\\\";
                if (strncmp($class, $prefix, strlen($prefix)) === 0) {
                    $file = ' . $src . ' . "/" . str_replace("\\\\", "/", substr($class, strlen($prefix))) . ".php";
                    if (is_file($file)) {
                        require $file;
                    }
                }
            });
            require ' . $src . ' . "/comet_functions.php";';
    }

    /**
     * Runs $code in a child PHP with every error shown and no COMET_* variables (which
     * would change its options). @return string its output
     */
    private static function runPhp($code)
    {
        $cmd = escapeshellarg(PHP_BINARY) . ' -d error_reporting=-1 -d display_errors=1 -r ' . escapeshellarg($code) . ' 2>&1';
        $p = proc_open($cmd, array(1 => array('pipe', 'w')), $pipes, null, Paths::childEnv());
        $out = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        proc_close($p);
        return (string) $out;
    }
}
