<?php

use Comet\Client;
use Comet\CometException;
use CometTest\CometTestCase;

/**
 * The publish policy (docs/protocol.md, "Publish") as the client meets it, with no
 * publish key: keyless publishes go to the publish listener (--publish-listen, the
 * client's default publish_url), and the public listener refuses them.
 */
class PublishListenerTest extends CometTestCase
{
    public function testKeylessPublishOnThePublishListener()
    {
        $this->assertNotSame(static::$sidecar->port, static::$sidecar->publishPort());
        $ch = self::channel('listener');
        $sse = $this->subscribe($ch);
        $c = new Client(array('publish_url' => static::$sidecar->publishUrl(), 'timeout' => 5.0));
        $this->assertSame('http', $c->getTransport());
        $this->assertSame(1, $c->publish($ch, 'one'));
        $this->assertSame(array(2, 3), $c->publishMany(array(array($ch, 'two'), array($ch, 'three', 'ev'))));
        $this->assertTrue(comet_configure(array('redis_url' => '', 'publish_url' => static::$sidecar->publishUrl(),
            'publish_key' => '', 'timeout' => 5.0)));
        $this->assertSame(4, comet_publish($ch, array('four' => 4)));
        $expected = array(array(1, 'one', null), array(2, 'two', null), array(3, 'three', 'ev'), array(4, '{"four":4}', null));
        $this->assertReceived($sse, $expected);
        $this->assertPolled($ch, $expected);
    }

    public function testThePublicListenerRefusesKeylessPublishes()
    {
        $ch = self::channel('public');
        $sse = $this->subscribe($ch);
        $c = new Client(array('publish_url' => static::$sidecar->url(), 'timeout' => 5.0));
        try {
            $c->publish($ch, 'x');
            $this->fail('published without a key on the public listener');
        } catch (CometException $e) {
            $this->assertSame(CometException::HTTP, $e->getCode(), $e->getMessage());
            $this->assertSame(403, $e->getHttpStatus());
        }
        try {
            $c->publishMany(array(array($ch, 'a'), array($ch, 'b')));
            $this->fail('published a batch without a key on the public listener');
        } catch (CometException $e) {
            $this->assertSame(403, $e->getHttpStatus());
            $this->assertSame(array(null, null), $e->getResults());
        }
        $this->assertTrue(comet_configure(array('redis_url' => '', 'publish_url' => static::$sidecar->url(),
            'publish_key' => '')));
        $this->assertFalse(comet_publish($ch, 'y'));
        $this->assertStringContainsString('HTTP 403', comet_last_error());
        $this->assertSame(array(), $sse->linger(0.3), 'nothing was published');
    }
}
