<?php

use Comet\Client;
use Comet\CometException;
use CometTest\Http;
use CometTest\PhpServer;
use PHPUnit\Framework\TestCase;

/**
 * comet_authorize(): the app's answer to the sidecar's --auth-url question
 * (docs/protocol.md, "Authorization by the app"). In-process with 'session' => false and
 * 'send' => false, then end to end: tests/php/fixtures/auth_endpoint.php under `php -S`,
 * asked with and without a logged-in session cookie.
 */
class AuthorizeTest extends TestCase
{
    private $savedPost;
    private $savedSession;
    private $hadSession;
    /** @var PhpServer[] */
    private $servers = array();

    protected function setUp(): void
    {
        $this->savedPost = $_POST;
        $this->hadSession = isset($_SESSION);
        $this->savedSession = $this->hadSession ? $_SESSION : null;
        $_POST = array();
        $_SESSION = array();
    }

    protected function tearDown(): void
    {
        $_POST = $this->savedPost;
        if ($this->hadSession) {
            $_SESSION = $this->savedSession;
        } else {
            unset($_SESSION);
        }
        foreach ($this->servers as $server) {
            $server->destroy();
        }
        $this->servers = array();
    }

    /** comet_authorize() without the session or any output, as a test wants it. */
    private static function ask($allow, array $options = array())
    {
        return comet_authorize($allow, array_merge(array('session' => false, 'send' => false), $options));
    }

    /** The rule of the README's example: user N may subscribe to private:user/N/... */
    private static function ownChannels()
    {
        return function ($channel, $user) {
            return strpos($channel, 'private:user/' . $user . '/') === 0;
        };
    }

    private function assertFailsWith($code, $needle, $allow, array $options)
    {
        $this->assertFalse(self::ask($allow, $options), 'no answer expected for ' . json_encode($options));
        $this->assertSame($code, comet_last_exception()->getCode(), comet_last_error());
        $this->assertStringContainsString($needle, comet_last_error());
    }

    public function testAllowsPerChannel()
    {
        $asked = array();
        $answer = self::ask(function ($channel, $user) use (&$asked) {
            $asked[] = array($channel, $user);
            return $channel === 'private:a' ? 1 : ($channel === 'private:c' ? 'yes' : 0);
        }, array('channels' => 'private:a,private:b,private:c,private:a', 'user' => 7));
        $this->assertSame(array('allow' => array('private:a', 'private:c'), 'user' => '7', 'ttl' => 60), $answer);
        $this->assertNull(comet_last_error());
        // Once per distinct channel, in order, with the user id as a string.
        $this->assertSame(array(array('private:a', '7'), array('private:b', '7'), array('private:c', '7')), $asked);

        $answer = self::ask(self::ownChannels(), array('channels' => array('private:user/7/inbox', 'private:user/8/inbox',
            'private:user/70/x'), 'user' => '7'));
        $this->assertSame(array('private:user/7/inbox'), $answer['allow']);

        // A channel whose name is a number stays a string.
        $answer = self::ask(function () {
            return true;
        }, array('channels' => '123,0', 'user' => 'u'));
        $this->assertSame(array('123', '0'), $answer['allow']);
    }

    public function testNoUserNoChannel()
    {
        $called = false;
        $allowAll = function () use (&$called) {
            $called = true;
            return true;
        };
        foreach (array('session without user_id' => array(), 'user null' => array('user' => null),
                     'user false' => array('user' => false), "user ''" => array('user' => ''),
                     'closure returning null' => array('user' => function () {
                         return null;
                     })) as $what => $options) {
            $answer = self::ask($allowAll, array_merge(array('channels' => 'private:a', 'info' => array('x' => 1)), $options));
            $this->assertSame(array('allow' => array(), 'ttl' => 60), $answer, $what);
        }
        $this->assertFalse($called, '$allow is not asked without a user');
        $this->assertSame('{"allow":[],"ttl":60}', json_encode($answer));
    }

    public function testGuests()
    {
        $users = array();
        $answer = self::ask(function ($channel, $user) use (&$users) {
            $users[] = $user;
            return $channel === 'presence:lobby';
        }, array('channels' => 'presence:lobby,private:x', 'guests' => true, 'ttl' => 30));
        $this->assertSame(array('allow' => array('presence:lobby'), 'ttl' => 30), $answer);
        $this->assertSame(array(null, null), $users);
        // With a user, guests changes nothing.
        $answer = self::ask(self::ownChannels(), array('channels' => 'private:user/3/a', 'guests' => true, 'user' => 3));
        $this->assertSame(array('allow' => array('private:user/3/a'), 'user' => '3', 'ttl' => 60), $answer);
    }

    public function testUserFromTheSession()
    {
        $_SESSION['user_id'] = 7;
        $_POST['channels'] = 'private:user/7/inbox,private:user/8/inbox';
        $answer = self::ask(self::ownChannels());
        $this->assertSame(array('allow' => array('private:user/7/inbox'), 'user' => '7', 'ttl' => 60), $answer);

        $_SESSION['user_id'] = 'ann';
        $_POST['channels'] = 'private:user/ann/x,private:user/bob/x';
        $this->assertSame(array('allow' => array('private:user/ann/x'), 'user' => 'ann', 'ttl' => 60),
            self::ask(self::ownChannels()));

        // The user option wins over the session; a closure is called for it.
        $_SESSION['user_id'] = 7;
        $_POST['channels'] = 'private:user/9/a';
        $answer = self::ask(self::ownChannels(), array('user' => function () {
            return 9;
        }));
        $this->assertSame('9', $answer['user']);
        $this->assertSame(array('private:user/9/a'), $answer['allow']);

        // A string that names a PHP function is a user id, not a callable.
        $answer = self::ask(self::ownChannels(), array('user' => 'max', 'channels' => 'private:user/max/a'));
        $this->assertSame('max', $answer['user']);

        $_SESSION['user_id'] = array(7);
        $this->assertFailsWith(CometException::INVALID_ARGUMENT, "\$_SESSION['user_id']", self::ownChannels(), array());
    }

    public function testBadChannelsAnswer400()
    {
        $never = function () {
            throw new LogicException('not asked');
        };
        $cases = array(
            'no POST field' => array(array(), array(), 'no channels asked'),
            'empty POST field' => array(array('channels' => ''), array(), 'no channels asked'),
            'POST array' => array(array('channels' => array('a', 'b')), array(), 'one comma-separated string'),
            'empty option' => array(array('channels' => 'private:a'), array('channels' => array()), 'no channels asked'),
            'option not a list' => array(array(), array('channels' => 7), 'comma-separated string or an array'),
            'empty entry' => array(array('channels' => 'private:a,,private:b'), array(), 'channel name is empty'),
            'trailing comma' => array(array('channels' => 'private:a,'), array(), 'channel name is empty'),
            'bad character' => array(array('channels' => 'private:a b'), array(), 'characters outside'),
            'prefix' => array(array('channels' => 'private:*'), array(), 'characters outside'),
            'too long' => array(array('channels' => str_repeat('c', 129)), array(), '129 bytes'),
            'array entry' => array(array(), array('channels' => array('private:a', 7)), 'must be a string'),
        );
        foreach ($cases as $what => $case) {
            $_POST = $case[0];
            $answer = self::ask($never, array_merge(array('user' => 7), $case[1]));
            $this->assertSame(array('error', 'status'), array_keys($answer), $what);
            $this->assertSame(400, $answer['status'], $what);
            $this->assertStringContainsString($case[2], $answer['error'], $what);
            $this->assertNull(comet_last_error(), "$what: a malformed question is answered, not a failure");
        }
    }

    public function testInfo()
    {
        $base = array('channels' => 'private:user/7/a', 'user' => 7);
        $answer = self::ask(self::ownChannels(), $base + array('info' => array('name' => 'Zoë', 'avatar' => '/a/7.png')));
        $this->assertSame(array('allow' => array('private:user/7/a'), 'user' => '7',
            'info' => array('name' => 'Zoë', 'avatar' => '/a/7.png'), 'ttl' => 60), $answer);

        $this->assertArrayNotHasKey('info', self::ask(self::ownChannels(), $base + array('info' => array())));
        $this->assertArrayNotHasKey('info', self::ask(self::ownChannels(), $base + array('info' => null)));

        $answer = self::ask(self::ownChannels(), $base + array('info' => function ($user) {
            return array('name' => 'User ' . $user);
        }));
        $this->assertSame(array('name' => 'User 7'), $answer['info']);

        // info is always a JSON object on the wire, even for a list.
        ob_start();
        self::ask(self::ownChannels(), $base + array('info' => array('a', 'b'), 'send' => true));
        $this->assertSame('{"allow":["private:user/7/a"],"user":"7","info":{"0":"a","1":"b"},"ttl":60}', ob_get_clean());

        foreach (array('a string' => 'Ann', 'an int' => 7, 'true' => true) as $what => $info) {
            $this->assertFailsWith(CometException::INVALID_ARGUMENT, 'option "info"', self::ownChannels(),
                $base + array('info' => $info));
        }
        $this->assertFailsWith(CometException::INVALID_ARGUMENT, '"info" closure', self::ownChannels(),
            $base + array('info' => function () {
                return 'Ann';
            }));
        $this->assertFailsWith(CometException::INVALID_ARGUMENT, 'JSON', self::ownChannels(),
            $base + array('info' => array('name' => "\xff")));
    }

    public function testTtl()
    {
        $base = array('channels' => 'private:user/7/a', 'user' => 7);
        foreach (array(1 => 1, 86400 => 86400, '120' => '120', 60 => null) as $expected => $ttl) {
            $answer = self::ask(self::ownChannels(), $ttl === null ? $base : $base + array('ttl' => $ttl));
            $this->assertSame($expected, $answer['ttl']);
        }
        foreach (array(0, 86401, -1, 1.5, '1m', '', null, true) as $ttl) {
            $this->assertFailsWith(CometException::INVALID_ARGUMENT, 'option "ttl" must be 1-86400 seconds',
                self::ownChannels(), $base + array('ttl' => $ttl));
        }
    }

    public function testBadOptionsAndUsers()
    {
        $base = array('channels' => 'private:a', 'user' => 7);
        $this->assertFailsWith(CometException::INVALID_ARGUMENT, 'unknown comet_authorize option "guest"',
            self::ownChannels(), $base + array('guest' => true));
        $this->assertFailsWith(CometException::INVALID_ARGUMENT, 'needs a callable', 'no_such_function', $base);
        $this->assertFailsWith(CometException::INVALID_ARGUMENT, 'needs a callable', null, $base);
        foreach (array('guests', 'session') as $name) {
            $this->assertFailsWith(CometException::INVALID_ARGUMENT, 'option "' . $name . '" must be true or false',
                self::ownChannels(), $base + array($name => 1));
        }
        foreach (array('float' => 7.5, 'true' => true, 'array' => array(7), 'object' => new stdClass(),
                     '257 bytes' => str_repeat('u', 257), 'invalid UTF-8' => "\xff") as $what => $user) {
            $this->assertFailsWith(CometException::INVALID_ARGUMENT, 'must be an int or a UTF-8 string', self::ownChannels(),
                array('channels' => 'private:a', 'user' => $user));
        }
        $this->assertSame(str_repeat('u', 256), self::ask(self::ownChannels(), array('channels' => 'private:a',
            'user' => str_repeat('u', 256)))['user']);
        // A failure clears after the next success.
        $this->assertIsArray(self::ask(self::ownChannels(), $base));
        $this->assertNull(comet_last_error());
    }

    public function testSendsTheAnswer()
    {
        $_POST['channels'] = 'private:user/7/inbox,private:user/8/inbox';
        ob_start();
        $answer = comet_authorize(self::ownChannels(), array('session' => false, 'user' => 7,
            'info' => array('name' => 'Ann/7')));
        $out = ob_get_clean();
        $this->assertSame('{"allow":["private:user/7/inbox"],"user":"7","info":{"name":"Ann/7"},"ttl":60}', $out);
        $this->assertSame(json_decode($out, true), $answer);

        $_POST = array();
        ob_start();
        $answer = comet_authorize(self::ownChannels(), array('session' => false, 'user' => 7));
        $this->assertSame('{"error":"no channels asked (expected a POST field channels=a,b)","status":400}', ob_get_clean());
        $this->assertSame(400, $answer['status']);

        // 'send' => false sends nothing.
        ob_start();
        self::ask(self::ownChannels(), array('channels' => 'private:a', 'user' => 7));
        $this->assertSame('', ob_get_clean());
    }

    public function testFailureIsAnswered500AndReported()
    {
        $_POST['channels'] = 'private:a';
        $boom = function () {
            throw new RuntimeException('database down');
        };
        ob_start();
        $this->assertFalse(comet_authorize($boom, array('session' => false, 'user' => 7)));
        $this->assertSame('{"error":"comet_authorize failed in the app","status":500}', ob_get_clean());
        $this->assertSame('database down', comet_last_error());
        $this->assertInstanceOf(RuntimeException::class, comet_last_exception()->getPrevious());

        ob_start();
        $this->assertFalse(comet_authorize(self::ownChannels(), array('session' => false, 'ttl' => 0)));
        $this->assertSame('{"error":"comet_authorize failed in the app","status":500}', ob_get_clean());

        // The class API throws what was thrown, after the same answer.
        ob_start();
        try {
            Client::authorize($boom, array('session' => false, 'user' => 7));
            $this->fail('no exception');
        } catch (RuntimeException $e) {
            $this->assertSame('database down', $e->getMessage());
        }
        $this->assertSame('{"error":"comet_authorize failed in the app","status":500}', ob_get_clean());
        try {
            Client::authorize(self::ownChannels(), array('session' => false, 'send' => false, 'ttl' => 0));
            $this->fail('no exception');
        } catch (CometException $e) {
            $this->assertSame(CometException::INVALID_ARGUMENT, $e->getCode());
        }
        $client = new Client(array('publish_url' => 'http://127.0.0.1:1'));
        $this->assertSame(array('allow' => array('private:user/1/a'), 'user' => '1', 'ttl' => 60),
            $client->authorize(self::ownChannels(), array('session' => false, 'send' => false, 'user' => 1,
                'channels' => 'private:user/1/a')));
    }

    // ---- end to end, under php -S ----

    private function endpoint($sessionDir = null)
    {
        $server = new PhpServer(__DIR__ . '/fixtures', $sessionDir);
        $this->servers[] = $server;
        return $server;
    }

    /** Logs in as $userId; @return string the Cookie header of the session */
    private function login(PhpServer $server, $userId)
    {
        $r = Http::request($server->port, 'GET', '/auth_endpoint.php?login=' . $userId);
        $this->assertSame(200, $r['status'], $r['body']);
        $this->assertSame('logged in as ' . $userId, $r['body']);
        $this->assertArrayHasKey('set-cookie', $r['headers']);
        $this->assertMatchesRegularExpression('/^PHPSESSID=[^;]+/', $r['headers']['set-cookie']);
        preg_match('/^PHPSESSID=[^;]+/', $r['headers']['set-cookie'], $m);
        return $m[0];
    }

    /** The sidecar's question, as it asks it. */
    private static function question($channels, $cookie = null, array $headers = array())
    {
        $headers['Content-Type'] = 'application/x-www-form-urlencoded';
        if ($cookie !== null) {
            $headers['Cookie'] = $cookie;
        }
        return array('POST', '/auth_endpoint.php', 'channels=' . rawurlencode($channels), $headers);
    }

    private static function askServer(PhpServer $server, array $question)
    {
        return Http::request($server->port, $question[0], $question[1], $question[2], $question[3]);
    }

    public function testEndpointWithAndWithoutTheSessionCookie()
    {
        $server = $this->endpoint();
        $cookie = $this->login($server, 7);
        $r = self::askServer($server, self::question('private:user/7/inbox,private:user/8/inbox', $cookie,
            array('X-Comet-Origin' => 'https://app.example')));
        $this->assertSame(200, $r['status'], $r['body']);
        $this->assertSame('{"allow":["private:user/7/inbox"],"user":"7","info":{"name":"User 7"},"ttl":60}', $r['body']);
        $this->assertSame('application/json', $r['headers']['content-type']);
        $this->assertSame('no-store', $r['headers']['cache-control']);
        $this->assertArrayNotHasKey('set-cookie', $r['headers'], 'the session is only read');
        $this->assertArrayNotHasKey('access-control-allow-origin', $r['headers']);

        // The same question without the cookie, or with another one: nothing allowed.
        foreach (array('no cookie' => null, 'unknown session' => 'PHPSESSID=nosuchsession0123456789',
                     'other cookie' => 'theme=dark') as $what => $otherCookie) {
            $r = self::askServer($server, self::question('private:user/7/inbox,private:user/8/inbox', $otherCookie));
            $this->assertSame(200, $r['status'], "$what: " . $r['body']);
            $this->assertSame('{"allow":[],"ttl":60}', $r['body'], $what);
        }

        // Another user's session sees its own channels only.
        $cookie8 = $this->login($server, 8);
        $r = self::askServer($server, self::question('private:user/7/inbox,private:user/8/inbox,private:user/8/feed', $cookie8));
        $this->assertSame('{"allow":["private:user/8/inbox","private:user/8/feed"],"user":"8","info":{"name":"User 8"},"ttl":60}',
            $r['body']);
        // ... and the first session still works.
        $r = self::askServer($server, self::question('private:user/7/inbox', $cookie));
        $this->assertSame('{"allow":["private:user/7/inbox"],"user":"7","info":{"name":"User 7"},"ttl":60}', $r['body']);
    }

    public function testEndpointAnswers400ForAMalformedQuestion()
    {
        $server = $this->endpoint();
        $cookie = $this->login($server, 7);
        foreach (array('no channels' => array('POST', '/auth_endpoint.php', '', array('Cookie' => $cookie)),
                     'bad name' => self::question('private:user/7/inbox,bad name', $cookie),
                     'GET' => array('GET', '/auth_endpoint.php?channels=private:user/7/inbox', '', array('Cookie' => $cookie)))
                 as $what => $question) {
            $r = self::askServer($server, $question);
            $this->assertSame(400, $r['status'], "$what: " . $r['body']);
            $this->assertSame('application/json', $r['headers']['content-type'], $what);
            $body = json_decode($r['body'], true);
            $this->assertSame(400, $body['status'], $what);
            $this->assertIsString($body['error'], $what);
        }
    }

    /**
     * The session is read with read_and_close: while $allow runs (a slow database), the
     * user's other requests get the session lock at once. Two servers on one session
     * directory stand for two PHP-FPM workers.
     */
    public function testSessionLockIsReleasedWhileAllowRuns()
    {
        $authServer = $this->endpoint();
        $pageServer = $this->endpoint($authServer->sessionDir);
        $cookie = $this->login($pageServer, 7);

        foreach (array('comet_authorize starts the session' => false, 'the app started it first' => true) as $what => $hold) {
            $q = self::question('private:user/7/inbox', $cookie);
            $slowQuestion = Http::send($authServer->port, 'POST', '/auth_endpoint.php?slow=1' . ($hold ? '&hold=1' : ''),
                $q[2], $q[3]);
            usleep(300000);  // the question is in $allow by now
            $start = microtime(true);
            $page = Http::request($pageServer->port, 'GET', '/auth_endpoint.php?whoami=1', '', array('Cookie' => $cookie));
            $waited = microtime(true) - $start;
            $answer = Http::receive($slowQuestion);
            $this->assertSame('7', $page['body'], $what);
            $this->assertSame('{"allow":["private:user/7/inbox"],"user":"7","info":{"name":"User 7"},"ttl":60}',
                $answer['body'], $what);
            if ($hold) {
                $this->assertGreaterThan(0.4, $waited, "$what: the page waits for the lock the app holds");
            } else {
                $this->assertLessThan(0.4, $waited, "$what: the page does not wait for \$allow");
            }
        }
    }
}
