<?php

use Comet\Client;
use Comet\CometException;
use PHPUnit\Framework\TestCase;

/**
 * Channel names, event names and data are checked before anything is sent. The clients
 * here point at a closed port: a check that let something through would show up as a
 * CONNECT error instead of the expected code.
 */
class ValidationTest extends TestCase
{
    private function client(array $options = array())
    {
        return new Client(array_merge(array('redis_url' => 'redis://127.0.0.1:' . CometTest\Paths::freePort()), $options));
    }

    private function assertRejected($code, $callable, $what)
    {
        try {
            $callable();
            $this->fail("$what: accepted");
        } catch (CometException $e) {
            $this->assertSame($code, $e->getCode(), "$what: " . $e->getMessage());
        }
    }

    public function badChannels()
    {
        return array(
            'empty' => array(''),
            '129 bytes' => array(str_repeat('a', 129)),
            'space' => array('a b'),
            'comma' => array('a,b'),
            'at' => array('a@b'),
            'trailing newline' => array("abc\n"),
            'NUL' => array("a\0b"),
            'non-ASCII' => array('käse'),
            'star' => array('news:*'),
            'question mark' => array('a?b'),
            'not a string' => array(42),
            'null' => array(null),
            'array' => array(array('a')),
        );
    }

    /** @dataProvider badChannels */
    public function testBadChannelNames($channel)
    {
        $c = $this->client();
        $this->assertRejected(CometException::INVALID_CHANNEL, function () use ($c, $channel) {
            $c->publish($channel, 'x');
        }, 'publish');
        $this->assertRejected(CometException::INVALID_CHANNEL, function () use ($c, $channel) {
            $c->publishMany(array(array('fine', 'x'), array($channel, 'x')));
        }, 'batch');
        $this->assertFalse(comet_configure(array('redis_url' => 'redis://127.0.0.1:1')) && comet_publish($channel, 'x'));
        $this->assertSame(CometException::INVALID_CHANNEL, comet_last_exception()->getCode());
        $this->assertStringContainsString('channel name', comet_last_error());
    }

    public function testGoodChannelNames()
    {
        foreach (array('a', str_repeat('z', 128), 'A-Z_a.z:0/9=+-', 'chat:42', 'user/7/inbox', 'a==', '+') as $ch) {
            Client::validateChannel($ch);
        }
        $this->assertTrue(true);
    }

    public function testEventNames()
    {
        $c = $this->client();
        foreach (array(str_repeat('e', 65), 'a b', 'a/b', 'é', "ev\n", 42) as $event) {
            $this->assertRejected(CometException::INVALID_EVENT, function () use ($c, $event) {
                $c->publish('ch', 'x', array('event' => $event));
            }, 'event ' . var_export($event, true));
        }
        foreach (array(null, '', 'a', str_repeat('e', 64), 'A-z_0.9:x') as $event) {
            Client::validateEvent($event);
        }
    }

    public function testPayloadLimit()
    {
        $c = $this->client();
        $this->assertRejected(CometException::PAYLOAD_TOO_LARGE, function () use ($c) {
            $c->publish('ch', str_repeat('x', 65537));
        }, '64 KiB + 1');
        $this->assertSame(65536, strlen(Client::encodeData(str_repeat('x', 65536), 65536)));
        // JSON-encoded size counts.
        $this->assertRejected(CometException::PAYLOAD_TOO_LARGE, function () use ($c) {
            $c->publish('ch', array(str_repeat('x', 65533)));
        }, 'array over the limit once encoded');
        // Configurable, with sizes like the sidecar's --max-message-bytes.
        $small = $this->client(array('max_message_bytes' => '1k'));
        $this->assertSame(1024, $small->getOption('max_message_bytes'));
        $this->assertRejected(CometException::PAYLOAD_TOO_LARGE, function () use ($small) {
            $small->publish('ch', str_repeat('é', 513));
        }, '1026 bytes over 1k');
        $this->assertRejected(CometException::PAYLOAD_TOO_LARGE, function () use ($small) {
            $small->publishMany(array(array('ch', 'ok'), array('ch', str_repeat('x', 1025))));
        }, 'batch');
        $this->assertFalse(comet_configure(array('redis_url' => 'redis://127.0.0.1:1', 'max_message_bytes' => 10))
            && comet_publish('ch', 'eleven byte'));
        $this->assertStringContainsString('over the limit', comet_last_error());
    }

    public function testInvalidUtf8()
    {
        $c = $this->client();
        foreach (array("\xff", "ok\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "abc\xe2\x82") as $bad) {
            $this->assertRejected(CometException::INVALID_DATA, function () use ($c, $bad) {
                $c->publish('ch', $bad);
            }, 'string ' . bin2hex($bad));
            $this->assertRejected(CometException::INVALID_DATA, function () use ($c, $bad) {
                $c->publish('ch', array('k' => $bad));
            }, 'array ' . bin2hex($bad));
        }
        $this->assertFalse(comet_configure(array('redis_url' => 'redis://127.0.0.1:1')) && comet_publish('ch', "\xff"));
        $this->assertStringContainsString('UTF-8', comet_last_error());
    }

    public function testDataTypes()
    {
        $c = $this->client();
        foreach (array(42, 1.5, true, null) as $bad) {
            $this->assertRejected(CometException::INVALID_DATA, function () use ($c, $bad) {
                $c->publish('ch', $bad);
            }, gettype($bad));
        }
        $this->assertSame('', Client::encodeData(''));
        $this->assertSame('[]', Client::encodeData(array()));
        $this->assertSame('{"a":"é/x"}', Client::encodeData(array('a' => 'é/x')));
        $o = new ArrayObject();
        $this->assertSame('{}', Client::encodeData($o));
    }

    public function testFallbackJsonEncoderMatchesJsonEncode()
    {
        // Used only where ext/json is missing (possible on PHP 5); it must agree with it.
        $o = new stdClass();
        $o->a = 'b';
        $values = array('', 'plain', "quote \" backslash \\ slash / tab \t nl \n cr \r \x01 \x1f", 'é 日本 🎉',
            array(), array(1, 2, 3), array('k' => 'v', 'n' => null, 't' => true, 'f' => false, 'i' => -7),
            array(1 => 'a', 2 => 'b'), array('nested' => array('x' => array(1, array('y' => 'z')))), $o, 1.5, 0.1);
        foreach ($values as $v) {
            $this->assertSame(json_encode($v, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), Comet\Json::encode($v), var_export($v, true));
        }
        $this->assertFalse(Comet\Json::encode("\xff"));
        $this->assertFalse(Comet\Json::encode(array('a' => NAN)));
    }

    public function testBatchShapes()
    {
        $c = $this->client();
        foreach (array('not an array' => 'x', 'no data' => array('channel' => 'a'), 'empty' => array()) as $what => $entry) {
            $this->assertRejected(CometException::INVALID_ARGUMENT, function () use ($c, $entry) {
                $c->publishMany(array($entry));
            }, $what);
        }
        $this->assertSame(array(), $c->publishMany(array()));
    }
}
