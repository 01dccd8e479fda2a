<?php
// A chat room. The form POSTs here and PHP publishes the line with comet_publish() to
// the channel "chat"; every open chat page receives it through comet.js. Without
// JavaScript the form still works (POST, then back to this page). The page also shows
// who has the chat open: a presence channel (presence-token.php names the member).
require __DIR__ . '/config.php';

const CHAT_CHANNEL = 'chat';

if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    demo_check_origin();
    $name = isset($_POST['name']) && is_string($_POST['name']) ? trim($_POST['name']) : '';
    $text = isset($_POST['text']) && is_string($_POST['text']) ? trim($_POST['text']) : '';
    $back = 'chat.php' . demo_transport_query();
    if ($text === '') {
        demo_done($back, array('error' => 'nothing to send'), 400);
    }
    if (!preg_match('//u', $name . $text)) {
        demo_done($back, array('error' => 'not UTF-8'), 400);
    }
    if ($name === '') {
        $name = 'anonymous';
    }
    $message = array(
        'name' => function_exists('mb_substr') ? mb_substr($name, 0, 40, 'UTF-8') : substr($name, 0, 40),
        'text' => function_exists('mb_substr') ? mb_substr($text, 0, 2000, 'UTF-8') : substr($text, 0, 2000),
        'at' => round(microtime(true) * 1000),
    );
    $id = comet_publish(CHAT_CHANNEL, $message);
    if ($id === false) {
        error_log('demo-app chat: ' . comet_last_error());
        demo_done($back, array('error' => 'could not publish: ' . comet_last_error()), 502);
    }
    demo_done($back, array('ch' => CHAT_CHANNEL, 'id' => $id));
}

$secret = comet_client() ? comet_client()->getOption('secret') : '';
$presence = $secret !== null && $secret !== '';
demo_header('Chat');
?>
<p class="hint">Open this page in two browsers (or a private window), type in one, watch the
other. The form posts to <code>chat.php</code>, which calls <code>comet_publish('chat', …)</code>.</p>
<form id="chat" method="post" action="chat.php<?= h(demo_transport_query()) ?>">
  <input type="text" name="name" id="name" placeholder="Your name" size="12" maxlength="40">
  <input type="text" name="text" id="text" placeholder="Say something" autocomplete="off" autofocus maxlength="2000">
  <button>Send</button>
</form>
<p id="note" class="error"></p>
<?php if ($presence) { ?>
<p class="online">Online (<code><?= h(demo_presence_channel()) ?></code>): <span id="online">…</span></p>
<?php } else { ?>
<p class="hint">COMET_TOKEN_SECRET is not set: no "who is online" list (its presence channel needs tokens).</p>
<?php } ?>
<ol id="log"></ol>
<script>
<?php if ($presence) { ?>
  // Who is online: a presence channel, with a token from presence-token.php (this
  // browser's member id and name) fetched before every connection. A failed fetch gives
  // no token: the public chat goes on, only the presence channel is refused.
  demoApp.connect({
    token: function () {
      return fetch('presence-token.php', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
        return r.ok ? r.text() : '';
      }, function () { return ''; });
    }
  });
  demoApp.presence(<?= demo_js(demo_presence_channel()) ?>, 'online');
<?php } ?>
  demoApp.subscribe(<?= demo_js(CHAT_CHANNEL) ?>, function (m, d) {
    demoApp.line('log', [['code', '#' + m.id], ['b', d.name || ''], ['span', d.text || ''],
      ['small', d.at ? new Date(d.at).toLocaleTimeString() : '']]);
  });
  demoApp.ajaxForm(document.getElementById('chat'), document.getElementById('text'));
</script>
<?php demo_footer();
