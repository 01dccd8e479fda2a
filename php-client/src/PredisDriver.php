<?php

namespace Comet;

if (!class_exists('Comet\PredisDriver', false)) {

/**
 * Redis through Predis (predis/predis 1.x or 2.x, loaded by the application).
 * @internal
 */
class PredisDriver
{
    private $address;
    private $options;
    private $client = null;
    private $broken = false;

    public function __construct(array $address, array $options)
    {
        $this->address = $address;
        $this->options = $options;
    }

    private function connect()
    {
        $a = $this->address;
        $o = $this->options;
        $params = array('timeout' => $o['connect_timeout'], 'read_write_timeout' => $o['timeout'],
            'persistent' => $o['persistent']);
        if ($o['persistent'] && $a['socket'] === '') {
            // A persistent id per credentials and database (Predis appends it to the address).
            $params['persistent'] = 'comet-php-' . substr(sha1($a['user'] . "\0" . $a['password'] . "\0" . $a['db']), 0, 12);
        }
        if ($a['socket'] !== '') {
            $params['scheme'] = 'unix';
            $params['path'] = $a['socket'];
        } else {
            $params['scheme'] = 'tcp';
            $params['host'] = $a['host'];
            $params['port'] = $a['port'];
        }
        if ($a['password'] !== '') {
            $params['password'] = $a['password'];
            if ($a['user'] !== '') {
                $params['username'] = $a['user'];
            }
        }
        if ($a['db'] > 0) {
            $params['database'] = $a['db'];
        }
        $client = new \Predis\Client($params, array('exceptions' => false));
        try {
            $client->connect();
        } catch (\Exception $e) {
            throw new CometException('cannot connect to Redis at ' . $a['address'] . ': ' . $e->getMessage(), CometException::CONNECT, $e);
        }
        $this->client = $client;
    }

    public function execute(array $commands, $wantReplies)
    {
        if ($this->client === null) {
            $this->connect();
        }
        $start = microtime(true);
        try {
            if (count($commands) === 1) {
                $isError = false;
                $reply = $this->client->executeRaw($commands[0], $isError);
                $results = array($isError ? new RedisError($reply) : $reply);
            } else {
                $pipe = $this->client->pipeline();
                foreach ($commands as $args) {
                    $pipe->executeCommand(call_user_func_array(array('Predis\Command\RawCommand', 'create'), $args));
                }
                $results = $pipe->execute();
            }
        } catch (\Exception $e) {
            $this->broken = true;
            // Predis says "Error while reading line" for a timeout and a lost connection alike.
            $timeout = stripos($e->getMessage(), 'timed out') !== false
                || microtime(true) - $start >= $this->options['timeout'] * 0.9;
            throw new CometException('Redis: ' . $e->getMessage(), $timeout ? CometException::TIMEOUT : CometException::IO, $e);
        }
        foreach ($results as $i => $result) {
            if ($result instanceof \Predis\Response\ErrorInterface) {
                $results[$i] = new RedisError($result->getMessage());
            } elseif (is_object($result) && !($result instanceof RedisError)) {
                $results[$i] = (string) $result;
            }
        }
        return $results;
    }

    /** @param bool $force close a persistent connection too */
    public function close($force = false)
    {
        if ($this->client !== null && ($force || $this->broken || !$this->options['persistent'])) {
            try {
                $this->client->disconnect();
            } catch (\Exception $e) {
            }
        }
        $this->client = null;
    }
}

} // class_exists
