<?php

use Comet\Client;
use Comet\CometException;
use PHPUnit\Framework\TestCase;

/**
 * comet_token(): HS256 JWTs with {"channels":[...],"exp":...,"iat":...} plus extra claims,
 * checked here with an independent decoder and hash_hmac. Channel entries may be names,
 * prefixes ending in `*`, or `*`; `sub` and `nbf` are checked as the sidecar reads them.
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
        // The sidecar's variable name, so one environment configures both.
        putenv('COMET_TOKEN_SECRET=from-env-secret');
        putenv('COMET_SECRET=older-name');
        try {
            $c = new Client(array('publish_url' => 'http://127.0.0.1:1'));
            $this->verify($c->token('a', 10), 'from-env-secret');
        } finally {
            putenv('COMET_TOKEN_SECRET');
        }
        // The older name still works alone.
        try {
            $c = new Client(array('publish_url' => 'http://127.0.0.1:1'));
            $this->verify($c->token('a', 10), 'older-name');
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

    /** @return array the payload of a token signed with self::SECRET */
    private function payloadOf($channels, $ttl = 60, array $claims = array(), $now = 1700000000)
    {
        list(, $payload) = $this->verify(Client::signToken(self::SECRET, $channels, $ttl, $claims, $now), self::SECRET);
        return $payload;
    }

    private function assertRefused($code, $channels, $ttl = 60, array $claims = array(), $what = '')
    {
        try {
            Client::signToken(self::SECRET, $channels, $ttl, $claims, 1700000000);
            $this->fail('signed ' . $what . ': ' . json_encode(array($channels, $claims)));
        } catch (CometException $e) {
            $this->assertSame($code, $e->getCode(), $what . ': ' . $e->getMessage());
        }
        return $e;
    }

    public function testPrefixAndWildcardEntries()
    {
        $this->assertSame(array('private:user/7/*', 'chat:42', '*'),
            $this->payloadOf('private:user/7/*,chat:42,*')['channels']);
        $this->assertSame(array('*'), $this->payloadOf(array('*'))['channels']);
        // Every channel-name character may precede the *; the prefix may be 128 bytes.
        $this->assertSame(array('Az09_.:/=+-*'), $this->payloadOf('Az09_.:/=+-*')['channels']);
        $long = str_repeat('p', 128) . '*';
        $this->assertSame(array($long), $this->payloadOf($long)['channels']);

        // The exact encoding, with a prefix (as protocol.md shows it).
        $token = Client::signToken('s3cret', array('chat:42', 'private:user/7/*'), 300, array('sub' => '7'), 1700000000);
        $b = function ($s) {
            return rtrim(strtr(base64_encode($s), '+/', '-_'), '=');
        };
        $input = $b('{"alg":"HS256","typ":"JWT"}') . '.'
            . $b('{"channels":["chat:42","private:user/7/*"],"exp":1700000300,"iat":1700000000,"sub":"7"}');
        $this->assertSame($input . '.' . $b(hash_hmac('sha256', $input, 's3cret', true)), $token);

        // The function API takes them too.
        $this->assertTrue(comet_configure(array('secret' => self::SECRET, 'redis_url' => '', 'publish_url' => '')));
        list(, $payload) = $this->verify(comet_token('private:user/7/*', 300, array('sub' => '7')), self::SECRET);
        $this->assertSame(array('private:user/7/*'), $payload['channels']);
    }

    public function testBadPatternsAreRefused()
    {
        $bad = array('a*b', '**', '*x', 'x**', '*a*', 'a**', '* ', ' *', 'bad name*', 'a@b*', 'a,b*' => array('a,b*'),
            'empty entry' => 'private:a,', 'star in list' => array('ok', 'o*k'), '129-byte prefix' => str_repeat('p', 129) . '*',
            'non-string' => array(7), 'null' => array(null), 'nested' => array(array('a*')));
        foreach ($bad as $what => $channels) {
            $e = $this->assertRefused(CometException::INVALID_CHANNEL, $channels, 60, array(), is_int($what) ? $channels : $what);
            if (is_string($channels) && strpos($channels, '*') !== false && strpos($channels, '*') !== strlen($channels) - 1) {
                $this->assertStringContainsString('* may only end a prefix', $e->getMessage());
            }
        }
        $e = $this->assertRefused(CometException::INVALID_CHANNEL, str_repeat('p', 129) . '*');
        $this->assertStringContainsString('129 bytes', $e->getMessage());

        $this->assertTrue(comet_configure(array('secret' => self::SECRET, 'redis_url' => '', 'publish_url' => '')));
        $this->assertFalse(comet_token('a*b', 60));
        $this->assertSame(CometException::INVALID_CHANNEL, comet_last_exception()->getCode());
    }

    public function testSubClaim()
    {
        $this->assertSame('7', $this->payloadOf('private:a', 60, array('sub' => '7'))['sub']);
        $this->assertSame(7, $this->payloadOf('private:a', 60, array('sub' => 7))['sub'], 'an int stays a JSON number');
        $this->assertSame('zoë@example.com', $this->payloadOf('private:a', 60, array('sub' => 'zoë@example.com'))['sub']);
        $this->assertSame(str_repeat('u', 256), $this->payloadOf('a', 60, array('sub' => str_repeat('u', 256)))['sub']);
        $this->assertArrayNotHasKey('sub', $this->payloadOf('a'));
        foreach (array('float' => 7.0, 'bool' => true, 'null' => null, 'array' => array('7'), 'empty' => '',
                     '257 bytes' => str_repeat('u', 257), 'object' => new stdClass()) as $what => $sub) {
            $e = $this->assertRefused(CometException::INVALID_ARGUMENT, 'a', 60, array('sub' => $sub), "sub $what");
            $this->assertStringContainsString('"sub"', $e->getMessage());
        }
    }

    public function testNbfClaim()
    {
        $payload = $this->payloadOf('private:a', 600, array('nbf' => 1700000300, 'sub' => '7'));
        $this->assertSame(array('channels', 'exp', 'iat', 'nbf', 'sub'), array_keys($payload));
        $this->assertSame(1700000300, $payload['nbf']);
        $this->assertSame(1700000600, $payload['exp']);
        $this->assertSame(1700000600, $this->payloadOf('a', 600, array('nbf' => 1700000600))['nbf'], 'nbf = exp is allowed');
        foreach (array('string' => '1700000000', 'float' => 1700000000.5, 'negative' => -1, 'null' => null,
                     'after exp' => 1700000601) as $what => $nbf) {
            $e = $this->assertRefused(CometException::INVALID_ARGUMENT, 'a', 600, array('nbf' => $nbf), "nbf $what");
            $this->assertStringContainsString('"nbf"', $e->getMessage());
        }
    }

    public function testSizeLimits()
    {
        $channels = array();
        for ($i = 0; $i < 256; $i++) {
            $channels[] = "c$i";
        }
        $this->assertCount(256, $this->payloadOf($channels)['channels']);
        $channels[] = 'one-too-many';
        $e = $this->assertRefused(CometException::INVALID_CHANNEL, $channels);
        $this->assertStringContainsString('at most 256', $e->getMessage());

        // Within 256 entries but over the sidecar's 4096 bytes.
        $long = array();
        for ($i = 0; $i < 30; $i++) {
            $long[] = str_repeat('x', 100) . $i;
        }
        $e = $this->assertRefused(CometException::INVALID_ARGUMENT, $long);
        $this->assertStringContainsString('4096', $e->getMessage());
        $this->assertLessThanOrEqual(4096, strlen(Client::signToken(self::SECRET, array_slice($long, 0, 20), 60)));
    }
}
