<?php

use Comet\Client;
use CometTest\CometTestCase;
use CometTest\Http;
use CometTest\PhpServer;
use CometTest\Sidecar;

/**
 * Private channels end to end: the sidecar (--token-secret, --auth-url) checks tokens from
 * comet_token() and asks tests/php/fixtures/auth_endpoint.php, run under `php -S`, which
 * answers with comet_authorize() from the PHP session.
 */
class PrivateChannelsTest extends CometTestCase
{
    const SECRET = 'private-test-secret-0123456789abcdef';
    protected static $withRedis = false;
    /** @var PhpServer|null */
    private static $app = null;

    public static function setUpBeforeClass(): void
    {
        self::$app = new PhpServer(__DIR__ . '/fixtures');
        static::$sidecar = new Sidecar(null, array('--token-secret', self::SECRET,
            '--auth-url', 'http://127.0.0.1:' . self::$app->port . '/auth_endpoint.php'));
    }

    public static function tearDownAfterClass(): void
    {
        if (self::$app) {
            self::$app->destroy();
            self::$app = null;
        }
        parent::tearDownAfterClass();
    }

    /** GET /poll?wait=0 for one channel; @return int the status */
    private static function pollStatus($channel, $query = '', array $headers = array())
    {
        $r = Http::request(static::$sidecar->port, 'GET', '/poll?wait=0&ch=' . rawurlencode($channel) . $query, '', $headers);
        return $r['status'];
    }

    public function testTokenWithAPrefix()
    {
        $token = Client::signToken(self::SECRET, 'private:user/7/*', 60, array('sub' => 7));
        $q = '&token=' . rawurlencode($token);
        $this->assertSame(401, self::pollStatus('private:user/7/inbox'), 'no credentials');
        $this->assertSame(200, self::pollStatus('private:user/7/inbox', $q));
        $this->assertSame(200, self::pollStatus('private:user/7/a/b', $q));
        $this->assertSame(403, self::pollStatus('private:user/8/inbox', $q));
        $this->assertSame(403, self::pollStatus('private:user/7', $q), 'the prefix includes the slash');
        $this->assertSame(200, self::pollStatus('news', ''), 'public channels need nothing');

        // What is published reaches the token's holder.
        $ch = 'private:user/7/' . bin2hex(random_bytes(4));
        $c = new Client(array('publish_url' => static::$sidecar->publishUrl(), 'timeout' => 5.0));
        $this->assertSame(1, $c->publish($ch, 'for 7'));
        $r = Http::request(static::$sidecar->port, 'GET', '/poll?wait=0&ch=' . rawurlencode($ch) . '&cursor='
            . rawurlencode($ch . '@.0') . $q);
        $this->assertSame(200, $r['status'], $r['body']);
        $body = json_decode($r['body'], true);
        $this->assertSame('for 7', $body['messages'][0]['data']);

        // Authorization: Bearer works as well as token=.
        $this->assertSame(200, self::pollStatus('private:user/7/inbox', '', array('Authorization' => 'Bearer ' . $token)));
    }

    public function testTokenValidity()
    {
        $all = Client::signToken(self::SECRET, '*', 60);
        $this->assertSame(200, self::pollStatus('private:anything', '&token=' . rawurlencode($all)));
        $expired = Client::signToken(self::SECRET, '*', 60, array(), time() - 3600);
        $notYet = Client::signToken(self::SECRET, '*', 3600, array('nbf' => time() + 600));
        $soon = Client::signToken(self::SECRET, '*', 3600, array('nbf' => time() + 5));
        $otherSecret = Client::signToken('another-secret-0123456789abcdef0123', '*', 60);
        $this->assertSame(403, self::pollStatus('private:x', '&token=' . rawurlencode($expired)), 'expired');
        $this->assertSame(403, self::pollStatus('private:x', '&token=' . rawurlencode($notYet)), 'nbf in 10 minutes');
        $this->assertSame(200, self::pollStatus('private:x', '&token=' . rawurlencode($soon)), 'nbf within the skew');
        $this->assertSame(403, self::pollStatus('private:x', '&token=' . rawurlencode($otherSecret)), 'another secret');
    }

    public function testAuthUrlAnswersFromTheSession()
    {
        $r = Http::request(self::$app->port, 'GET', '/auth_endpoint.php?login=7');
        $this->assertSame(200, $r['status'], $r['body']);
        preg_match('/^PHPSESSID=[^;]+/', $r['headers']['set-cookie'], $m);
        $cookie = array('Cookie' => $m[0]);

        $this->assertSame(200, self::pollStatus('private:user/7/inbox', '', $cookie));
        $this->assertSame(403, self::pollStatus('private:user/8/inbox', '', $cookie), 'the app refuses another user\'s');
        $this->assertSame(401, self::pollStatus('private:user/7/inbox'), 'no cookie: not asked');
        $this->assertSame(403, self::pollStatus('private:user/7/inbox', '', array('Cookie' => 'PHPSESSID=nosuchsession0123')),
            'no user in that session');
        // A token and the app together: the token covers one, the app the other.
        $token = Client::signToken(self::SECRET, 'private:user/9/*', 60);
        $r = Http::request(static::$sidecar->port, 'GET', '/poll?wait=0&ch=' . rawurlencode('private:user/9/a,private:user/7/b')
            . '&token=' . rawurlencode($token), '', $cookie);
        $this->assertSame(200, $r['status'], $r['body']);
    }
}
