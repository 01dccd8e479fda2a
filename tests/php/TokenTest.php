<?php

use Comet\Client;
use Comet\CometException;
use PHPUnit\Framework\TestCase;

/**
 * comet_token(): HS256 JWTs with {"channels":[...],"exp":...,"iat":...} plus extra claims,
 * checked here with an independent decoder and hash_hmac.
 */
class TokenTest extends TestCase
{
    const SECRET = 'test-secret-0123456789abcdef0123456789';

    private static function b64urlDecode($s)
    {
        $s = strtr($s, '-_', '+/');
        return base64_decode($s . str_repeat('=', (4 - strlen($s) % 4) % 4), true);
    }

    /** @return array header, payload */
    private function verify($token, $secret)
    {
        $this->assertMatchesRegularExpression('/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/', $token, 'three base64url parts, no padding');
        list($h, $p, $sig) = explode('.', $token);
        $expected = rtrim(strtr(base64_encode(hash_hmac('sha256', "$h.$p", $secret, true)), '+/', '-_'), '=');
        $this->assertTrue(hash_equals($expected, $sig), 'HS256 signature');
        $header = json_decode(self::b64urlDecode($h), true);
        $payload = json_decode(self::b64urlDecode($p), true);
        $this->assertSame(array('alg' => 'HS256', 'typ' => 'JWT'), $header);
        return array($header, $payload);
    }

    public function testClassApi()
    {
        $c = new Client(array('secret' => self::SECRET, 'publish_url' => 'http://127.0.0.1:1'));
        $before = time();
        $token = $c->token(array('chat:42', 'user/7'), 300, array('sub' => 'user-7', 'role' => array('a', 'b')));
        list(, $payload) = $this->verify($token, self::SECRET);
        $this->assertSame(array('channels', 'exp', 'iat', 'sub', 'role'), array_keys($payload));
        $this->assertSame(array('chat:42', 'user/7'), $payload['channels']);
        $this->assertSame(300, $payload['exp'] - $payload['iat']);
        $this->assertGreaterThanOrEqual($before, $payload['iat']);
        $this->assertLessThanOrEqual(time(), $payload['iat']);
        $this->assertSame('user-7', $payload['sub']);
        $this->assertSame(array('a', 'b'), $payload['role']);
        // A wrong secret does not verify.
        list($h, $p, $sig) = explode('.', $token);
        $this->assertNotSame(rtrim(strtr(base64_encode(hash_hmac('sha256', "$h.$p", 'other', true)), '+/', '-_'), '='), $sig);
    }

    public function testExactEncoding()
    {
        // The format, pinned: compact JSON, keys in this order, slashes and Unicode unescaped.
        $token = Client::signToken('s3cret', 'news,chat:1', 60, array('name' => 'Zoë/1'), 1700000000);
        $h = '{"alg":"HS256","typ":"JWT"}';
        $p = '{"channels":["news","chat:1"],"exp":1700000060,"iat":1700000000,"name":"Zoë/1"}';
        $b = function ($s) {
            return rtrim(strtr(base64_encode($s), '+/', '-_'), '=');
        };
        $input = $b($h) . '.' . $b($p);
        $this->assertSame($input . '.' . $b(hash_hmac('sha256', $input, 's3cret', true)), $token);
    }

    public function testFunctionApi()
    {
        $this->assertTrue(comet_configure(array('secret' => self::SECRET, 'redis_url' => '', 'publish_url' => '')));
        $token = comet_token('private:1', 60);
        $this->assertIsString($token);
        list(, $payload) = $this->verify($token, self::SECRET);
        $this->assertSame(array('private:1'), $payload['channels']);
        $this->assertSame(array('channels', 'exp', 'iat'), array_keys($payload));

        $this->assertTrue(comet_configure(array('secret' => '')));
        $this->assertFalse(comet_token('private:1', 60));
        $this->assertStringContainsString('no secret', comet_last_error());
        $this->assertSame(CometException::CONFIG, comet_last_exception()->getCode());
    }

    public function testSecretFromEnvironment()
    {
        putenv('COMET_SECRET=from-env-secret');
        try {
            $c = new Client(array('publish_url' => 'http://127.0.0.1:1'));
            $this->verify($c->token('a', 10), 'from-env-secret');
        } finally {
            putenv('COMET_SECRET');
        }
    }

    public function testBadArguments()
    {
        $c = new Client(array('secret' => self::SECRET, 'publish_url' => 'http://127.0.0.1:1'));
        $cases = array(
            array(array(), 60, array(), CometException::INVALID_CHANNEL),
            array('bad channel', 60, array(), CometException::INVALID_CHANNEL),
            array(array('ok', ''), 60, array(), CometException::INVALID_CHANNEL),
            array('ok', 0, array(), CometException::INVALID_ARGUMENT),
            array('ok', -5, array(), CometException::INVALID_ARGUMENT),
            array('ok', 1.5, array(), CometException::INVALID_ARGUMENT),
            array('ok', 60, array('exp' => 1), CometException::INVALID_ARGUMENT),
            array('ok', 60, array('channels' => array('x')), CometException::INVALID_ARGUMENT),
            array('ok', 60, array('bad' => "\xff"), CometException::INVALID_ARGUMENT),
            array('ok', 60, array('list'), CometException::INVALID_ARGUMENT),
        );
        foreach ($cases as $i => $case) {
            try {
                $c->token($case[0], $case[1], $case[2]);
                $this->fail("case $i: no exception");
            } catch (CometException $e) {
                $this->assertSame($case[3], $e->getCode(), "case $i: " . $e->getMessage());
            }
        }
    }
}
