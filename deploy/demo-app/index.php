<?php
// The demo app's start page: what there is, and whether PHP can reach the sidecar.
require __DIR__ . '/config.php';

$client = comet_client();
demo_header('Comet Sidecar demo app');
?>
<p>Plain PHP pages that publish with <code>php-client/comet.php</code>; browsers receive through
<code>comet.js</code> from <code><?= h($DEMO['comet_url']) ?></code>.</p>
<ul>
  <li><a href="chat.php<?= h(demo_transport_query()) ?>">Chat</a>: a form posts to PHP, which calls <code>comet_publish()</code>.</li>
  <li><a href="dashboard.php<?= h(demo_transport_query()) ?>">Dashboard</a>: fed by <code>php dashboard-feed.php</code> from the command line.</li>
  <li><a href="private.php<?= h(demo_transport_query()) ?>">Private inbox</a>: a demo login, <code>comet_token()</code>, a <code>private:</code> channel per user.</li>
</ul>
<p class="hint">Try another transport: <?php
foreach (array('websocket', 'sse', 'xhr-stream', 'iframe', 'htmlfile', 'multipart', 'dom-event-stream', 'long-poll', 'jsonp', 'poll') as $t) {
    echo '<a href="chat.php?transport=', h($t), '">', h($t), '</a> ';
} ?></p>
<table>
  <tr><th>PHP publishes through</th><td><?= h($client->getTransport() === 'http'
      ? 'HTTP, ' . $client->getOption('publish_url')
      : 'Redis' . ($client->getTransport() === 'redis+http' ? ' (HTTP fallback ' . $client->getOption('publish_url') . ')' : '')) ?></td></tr>
  <tr><th>token secret</th><td><?= $client->getOption('secret') ? 'set' : 'not set (the private inbox will not work)' ?></td></tr>
  <tr><th>PHP</th><td><?= h(PHP_VERSION . ' (' . PHP_SAPI . ')') ?></td></tr>
</table>
<?php demo_footer();
