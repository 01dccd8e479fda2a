<?php

use CometTest\Paths;
use CometTest\Php5Compat;
use PHPUnit\Framework\TestCase;

/**
 * The client must run on PHP 5.6: comet.php, src/ and tools/ parse with php-parser in
 * PHP-5-only mode and use none of the PHP 7+ constructs that parser lets through; and the
 * check itself catches them (so it cannot pass by accident).
 */
class Php5CompatTest extends TestCase
{
    protected function setUp(): void
    {
        if (!Php5Compat::available()) {
            $this->fail('php-parser is not installed (Debian package php-parser)');
        }
    }

    public function files()
    {
        $root = Paths::root() . '/php-client';
        $out = array('comet.php' => array("$root/comet.php"));
        foreach (array_merge(glob("$root/src/*.php"), glob("$root/tools/*.php")) as $f) {
            $out[substr($f, strlen($root) + 1)] = array($f);
        }
        return $out;
    }

    /** @dataProvider files */
    public function testFileIsPhp56Compatible($file)
    {
        $this->assertSame(array(), Php5Compat::checkFile($file));
        exec(escapeshellarg(PHP_BINARY) . ' -l ' . escapeshellarg($file) . ' 2>&1', $out, $rc);
        $this->assertSame(0, $rc, implode("\n", $out));
    }

    public function php7Snippets()
    {
        $s = array(
            '$a = $b ?? 1;', '$a = $b <=> $c;', 'function f(int $x) {}', 'function f(string $x) {}', 'function f(bool $x) {}',
            'function f(float $x) {}', 'function f(iterable $x) {}', 'function f(object $x) {}', 'function f(): int {}',
            'function f(): void {}', '$f = function (): array {};', '$x = new class {};', 'function f(?Foo $x) {}',
            '$f = fn($x) => 1;', 'use A\{B, C};', 'function g() { yield from h(); }', 'class A { public int $x; }',
            'class A { private const X = 1; }', '[$a, $b] = $c;', 'list("a" => $x) = $y;', 'try {} catch (A | B $e) {}',
            'try {} catch (A $e) {} finally {} try {} catch (A) {}', 'f(name: 1);', '$a = [...$b];',
            '$x = match($a) { 1 => 2 };', '$a?->b;', 'enum E {}', '#[Attr] function f() {}', 'declare(strict_types=1);',
            '$x = 1_000;', '(function() {})();', 'f()();', '"strlen"("x");', '$x = throw new E;', 'function f(int|string $x) {}',
            '$o::class;', 'class A { function __construct(private $x) {} }', '$a ??= 1;', '$x = random_bytes(4);',
            '$x = intdiv(1, 2);', '$x = JSON_THROW_ON_ERROR;', '$x = array_key_first($a);', '$x = str_contains($a, "b");',
        );
        $out = array();
        foreach ($s as $code) {
            $out[$code] = array($code);
        }
        return $out;
    }

    /** @dataProvider php7Snippets */
    public function testCheckerRejects($code)
    {
        $this->assertNotSame(array(), Php5Compat::checkCode("<?php\n$code\n"), "not caught: $code");
    }

    public function testCheckerAcceptsPhp56()
    {
        $code = '<?php
namespace A { class B { const C = 1; public static $d = array(1, 2); private $e = [3];
    public function f(array $a, callable $b = null, B $c = null, ...$rest) { return static::C ** 2; }
    public function g() { yield 1; try { } catch (\Exception $e) { } finally { } }
} }
namespace { use A\B; function h() { $f = function ($x) use (&$y) { return $x; }; return B::class . $f(1); }
    const X = 1 + 2; $v = "a" ?: "b"; $w = isset($z) ? $z : null; list($p, $q) = array(1, 2); }';
        $this->assertSame(array(), Php5Compat::checkCode($code));
    }
}
