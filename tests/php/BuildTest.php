<?php

use CometTest\Paths;
use PHPUnit\Framework\TestCase;

/**
 * php-client/comet.php is built from php-client/src/ by tools/build.php: the committed
 * file must be what the sources build, and --check must notice when it is not (a changed
 * source, a changed publish.lua) while the build repairs it. Edits are made on a copy of
 * php-client/ and bridge/lua/ in a temp dir.
 */
class BuildTest extends TestCase
{
    private $dir = null;

    protected function tearDown(): void
    {
        if ($this->dir !== null) {
            Paths::removeDir($this->dir);
            $this->dir = null;
        }
    }

    public function testCommittedFileIsWhatTheSourcesBuild()
    {
        list($rc, $out) = self::build(Paths::root(), '--check');
        $this->assertSame(0, $rc, "php-client/comet.php is stale: run php php-client/tools/build.php\n$out");
        $this->assertStringContainsString('php-client/comet.php is up to date', $out);
    }

    public function testBuiltFileHoldsEverySourceVerbatim()
    {
        $root = Paths::root() . '/php-client';
        $built = file_get_contents("$root/comet.php");
        $this->assertStringStartsWith("<?php\n/**\n * Comet Sidecar PHP client", $built);
        $this->assertStringContainsString('GENERATED FILE, do not edit', $built);
        $classes = strpos($built, "\nnamespace Comet {\n");
        $functions = strpos($built, "\nnamespace {\n");
        $this->assertNotFalse($classes);
        $this->assertGreaterThan($classes, $functions);
        $sources = glob("$root/src/*.php");
        $this->assertGreaterThan(10, count($sources));
        foreach ($sources as $file) {
            $code = preg_replace('#\A<\?php\n(/\*\*.*?\*/\n)?\n*(namespace Comet;\n\n)?#s', '', file_get_contents($file));
            $at = strpos($built, $code);
            $this->assertNotFalse($at, basename($file) . ' is not in comet.php as it is');
            $this->assertSame(basename($file) === 'comet_functions.php', $at > $functions, basename($file) . ' in the wrong namespace block');
        }
    }

    public function testCheckFailsOnAChangedSourceAndTheBuildRepairsIt()
    {
        $root = $this->copyOfTheClient();
        $built = file_get_contents("$root/php-client/comet.php");
        $client = "$root/php-client/src/Client.php";
        file_put_contents($client, str_replace("const VERSION = '0.1.0';", "const VERSION = '9.9.9';", file_get_contents($client)));

        list($rc, $out) = self::build($root, '--check');
        $this->assertSame(1, $rc, $out);
        $this->assertStringContainsString('php-client/comet.php is not what php-client/src/ builds', $out);
        $this->assertStringContainsString('Run: php php-client/tools/build.php', $out);
        $this->assertSame($built, file_get_contents("$root/php-client/comet.php"), '--check changes nothing');

        list($rc, $out) = self::build($root);
        $this->assertSame(0, $rc, $out);
        list($rc, $out) = self::build($root, '--check');
        $this->assertSame(0, $rc, $out);
        $this->assertSame('9.9.9', self::runPhp("require '$root/php-client/comet.php'; echo Comet\\Client::VERSION;"));
    }

    public function testCheckFailsOnAChangedScriptAndTheBuildCopiesIt()
    {
        $root = $this->copyOfTheClient();
        $lua = "-- changed\nreturn { 1, 'e', 0 }\n";
        file_put_contents("$root/bridge/lua/publish.lua", $lua);

        list($rc, $out) = self::build($root, '--check');
        $this->assertSame(1, $rc, $out);
        $this->assertStringContainsString('php-client/src/PublishScript.php embeds a different bridge/lua/publish.lua', $out);
        // embed-script.php without --target is the same check.
        exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg("$root/php-client/tools/embed-script.php") . ' --check 2>&1', $lines, $rc);
        $this->assertSame(1, $rc, implode("\n", $lines));

        list($rc, $out) = self::build($root);
        $this->assertSame(0, $rc, $out);
        foreach (array('comet.php', 'src/PublishScript.php') as $file) {
            $this->assertSame(base64_encode($lua), self::runPhp("require '$root/php-client/$file';"
                . ' echo base64_encode(Comet\\' . ($file === 'comet.php' ? 'Client::PUBLISH_SCRIPT' : 'PublishScript::LUA') . ');'), $file);
        }
        list($rc, $out) = self::build($root, '--check');
        $this->assertSame(0, $rc, $out);
    }

    public function testBuildRefusesSourcesItCannotJoin()
    {
        $root = $this->copyOfTheClient();
        $src = "$root/php-client/src";
        $bad = array(
            'Extra.php' => array("<?php\n\nnamespace Comet;\n\nif (!class_exists('Comet\\Extra', false)) {\n\nclass Extra\n{\n}\n\n} // class_exists\n",
                'src/Extra.php not in the class list'),
            'Bytes.php' => array("<?php\n\nnamespace Comet;\n\nuse Exception;\n\nclass Bytes\n{\n}\n", 'src/Bytes.php has a use import'),
            'Json.php' => array("<?php\n\nnamespace Comet;\n\nclass Json\n{\n}\n", "must wrap its class in if (!class_exists('Comet\\Json', false))"),
            'Wire.php' => array("<?php\n\nnamespace Comet;\n\nif (!class_exists('Comet\\Wire', false)) {\n\nclass Wire\n{\n}\n\nclass Other\n{\n}\n\n} // class_exists\n",
                'must declare one class, Wire'),
        );
        foreach ($bad as $file => $case) {
            $saved = is_file("$src/$file") ? file_get_contents("$src/$file") : null;
            file_put_contents("$src/$file", $case[0]);
            $before = file_get_contents("$root/php-client/comet.php");
            list($rc, $out) = self::build($root);
            $this->assertSame(2, $rc, "$file: $out");
            $this->assertStringContainsString($case[1], $out, $file);
            $this->assertSame($before, file_get_contents("$root/php-client/comet.php"), "$file: nothing written");
            $saved === null ? unlink("$src/$file") : file_put_contents("$src/$file", $saved);
        }
        list($rc, $out) = self::build($root, '--check');
        $this->assertSame(0, $rc, $out);
    }

    /** php-client/ (sources, tools, comet.php) and bridge/lua/ in a temp dir. @return string its root */
    private function copyOfTheClient()
    {
        $this->dir = Paths::tempDir('comet-build');
        $from = Paths::root();
        foreach (array('php-client/src', 'php-client/tools', 'bridge/lua') as $sub) {
            mkdir("$this->dir/$sub", 0700, true);
            foreach (glob("$from/$sub/*") as $file) {
                copy($file, "$this->dir/$sub/" . basename($file));
            }
        }
        copy("$from/php-client/comet.php", "$this->dir/php-client/comet.php");
        return $this->dir;
    }

    /** @return array array(exit code, stdout and stderr) of php-client/tools/build.php under $root */
    private static function build($root, $args = '')
    {
        exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg("$root/php-client/tools/build.php") . " $args 2>&1", $lines, $rc);
        return array($rc, implode("\n", $lines));
    }

    private static function runPhp($code)
    {
        return (string) shell_exec(escapeshellarg(PHP_BINARY) . ' -d error_reporting=-1 -r ' . escapeshellarg($code) . ' 2>&1');
    }
}
