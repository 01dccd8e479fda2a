<?php
/**
 * PHP 5.6 compatibility check with Debian's nikic/PHP-Parser (php-parser package):
 * parse in its PHP-5-only mode (PHP 7/8-only syntax is a parse error there), then walk the
 * tree for the PHP 7+ constructs that parser still accepts (?? and <=>, scalar and return
 * types, anonymous classes, group use, yield from, ...) and for calls of functions and
 * constants that PHP 5.6 lacks.
 */

namespace CometTest;

if (is_file('/usr/share/php/PhpParser/autoload.php')) {
    require_once '/usr/share/php/PhpParser/autoload.php';
}

final class Php5Compat
{
    const AUTOLOAD = '/usr/share/php/PhpParser/autoload.php';

    public static function available()
    {
        return is_file(self::AUTOLOAD);
    }

    /** @return string[] problems, "file:line: what" */
    public static function checkFile($file)
    {
        return self::checkCode(file_get_contents($file), $file);
    }

    /** @return string[] */
    public static function checkCode($code, $name = 'code')
    {
        require_once self::AUTOLOAD;
        $factory = new \PhpParser\ParserFactory();
        $parser = $factory->create(\PhpParser\ParserFactory::ONLY_PHP5);
        try {
            $stmts = $parser->parse($code);
        } catch (\PhpParser\Error $e) {
            return array($name . ':' . $e->getStartLine() . ': not PHP 5 syntax: ' . $e->getRawMessage());
        }
        $visitor = new Php5Visitor($name);
        $traverser = new \PhpParser\NodeTraverser();
        $traverser->addVisitor($visitor);
        $traverser->traverse($stmts);
        $problems = $visitor->problems;
        // Numeric literal separators (1_000) lex as numbers in PHP 7.4+: check the tokens.
        foreach (token_get_all($code) as $t) {
            if (is_array($t) && ($t[0] === T_LNUMBER || $t[0] === T_DNUMBER) && strpos($t[1], '_') !== false) {
                $problems[] = $name . ':' . $t[2] . ': numeric literal separator (PHP 7.4)';
            }
        }
        return $problems;
    }
}

if (class_exists('PhpParser\NodeVisitorAbstract')) {

final class Php5Visitor extends \PhpParser\NodeVisitorAbstract
{
    public $problems = array();
    private $name;

    /** Type names that are PHP 7+ in declarations (PHP 5.6 knows array, callable, self and classes). */
    private static $newTypes = array('int', 'float', 'string', 'bool', 'iterable', 'object', 'mixed', 'void',
        'never', 'null', 'false', 'true', 'static');

    /** Functions PHP 5.6 does not have. */
    private static $newFunctions = array('random_bytes', 'random_int', 'intdiv', 'error_clear_last',
        'preg_replace_callback_array', 'array_key_first', 'array_key_last', 'is_countable', 'is_iterable',
        'hrtime', 'spl_object_id', 'str_contains', 'str_starts_with', 'str_ends_with', 'fdiv',
        'get_debug_type', 'array_is_list', 'mb_str_split', 'net_get_interfaces', 'get_resource_id',
        'socket_export_stream', 'stream_isatty', 'sapi_windows_vt100_support', 'mb_scrub',
        'password_algos', 'session_create_id', 'inflate_init',
        'json_validate', 'str_increment', 'mb_str_pad', 'array_find');

    /** Constants PHP 5.6 does not have. */
    private static $newConstants = array('PHP_FLOAT_EPSILON', 'PHP_FLOAT_MAX', 'PHP_FLOAT_MIN', 'PHP_FLOAT_DIG',
        'PHP_OS_FAMILY', 'JSON_THROW_ON_ERROR', 'JSON_INVALID_UTF8_IGNORE', 'JSON_INVALID_UTF8_SUBSTITUTE',
        'JSON_UNESCAPED_LINE_TERMINATORS', 'PHP_FD_SETSIZE', 'MB_CASE_FOLD');

    public function __construct($name)
    {
        $this->name = $name;
    }

    private function bad(\PhpParser\Node $node, $what)
    {
        $this->problems[] = $this->name . ':' . $node->getStartLine() . ': ' . $what;
    }

    private function checkType(\PhpParser\Node $node, $type, $where)
    {
        if ($type === null) {
            return;
        }
        if ($type instanceof \PhpParser\Node\NullableType || $type instanceof \PhpParser\Node\UnionType
            || (class_exists('PhpParser\Node\IntersectionType') && $type instanceof \PhpParser\Node\IntersectionType)) {
            $this->bad($node, "nullable/union type on $where (PHP 7.1+)");
            return;
        }
        $name = strtolower($type instanceof \PhpParser\Node\Name ? $type->toString() : (string) $type);
        if (in_array($name, self::$newTypes, true)) {
            $this->bad($node, "type declaration '$name' on $where (PHP 7+)");
        }
    }

    public function enterNode(\PhpParser\Node $node)
    {
        if ($node instanceof \PhpParser\Node\Expr\BinaryOp\Coalesce) {
            $this->bad($node, '?? operator (PHP 7)');
        } elseif ($node instanceof \PhpParser\Node\Expr\AssignOp\Coalesce) {
            $this->bad($node, '??= operator (PHP 7.4)');
        } elseif ($node instanceof \PhpParser\Node\Expr\BinaryOp\Spaceship) {
            $this->bad($node, '<=> operator (PHP 7)');
        } elseif ($node instanceof \PhpParser\Node\Param) {
            $this->checkType($node, $node->type, 'parameter $' . (is_string($node->var->name) ? $node->var->name : '?'));
            if ($node->flags !== 0) {
                $this->bad($node, 'constructor property promotion (PHP 8)');
            }
        } elseif ($node instanceof \PhpParser\Node\Expr\New_ && $node->class instanceof \PhpParser\Node\Stmt\Class_) {
            $this->bad($node, 'anonymous class (PHP 7)');
        } elseif ($node instanceof \PhpParser\Node\Stmt\GroupUse) {
            $this->bad($node, 'group use declaration (PHP 7)');
        } elseif ($node instanceof \PhpParser\Node\Expr\YieldFrom) {
            $this->bad($node, 'yield from (PHP 7)');
        } elseif ($node instanceof \PhpParser\Node\Expr\ArrayItem && $node->unpack) {
            $this->bad($node, 'spread in array literal (PHP 7.4)');
        } elseif ($node instanceof \PhpParser\Node\Stmt\Declare_) {
            foreach ($node->declares as $d) {
                if (strtolower($d->key->toString()) === 'strict_types') {
                    $this->bad($node, 'declare(strict_types) (PHP 7)');
                }
            }
        } elseif ($node instanceof \PhpParser\Node\Expr\ClassConstFetch && !($node->class instanceof \PhpParser\Node\Name)
            && strtolower($node->name->toString()) === 'class') {
            $this->bad($node, '$object::class (PHP 8)');
        } elseif ($node instanceof \PhpParser\Node\Stmt\ClassConst && $node->flags !== 0) {
            $this->bad($node, 'class constant visibility (PHP 7.1)');
        } elseif ($node instanceof \PhpParser\Node\Stmt\Property && $node->type !== null) {
            $this->bad($node, 'typed property (PHP 7.4)');
        } elseif ($node instanceof \PhpParser\Node\Arg && $node->name !== null) {
            $this->bad($node, 'named argument (PHP 8)');
        } elseif ($node instanceof \PhpParser\Node\Expr\FuncCall && $node->name instanceof \PhpParser\Node\Name) {
            $fn = strtolower($node->name->getLast());
            if (in_array($fn, self::$newFunctions, true)) {
                $this->bad($node, "function $fn() (not in PHP 5.6)");
            }
        } elseif ($node instanceof \PhpParser\Node\Expr\ConstFetch) {
            $c = $node->name->getLast();
            if (in_array($c, self::$newConstants, true)) {
                $this->bad($node, "constant $c (not in PHP 5.6)");
            }
        }
        if ($node instanceof \PhpParser\Node\FunctionLike && $node->getReturnType() !== null) {
            $this->bad($node, 'return type declaration (PHP 7)');
        }
        if (property_exists($node, 'attrGroups') && !empty($node->attrGroups)) {
            $this->bad($node, 'attribute (PHP 8)');
        }
        return null;
    }
}

}
