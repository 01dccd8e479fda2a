<?php
// The compose example app: a form that publishes with comet_publish() (through Redis,
// COMET_REDIS_URL) and a page that receives through comet.js, straight from a sidecar's
// published port (SIDECAR_URL; with ?via=scaled, HAProxy's: SCALED_SIDECAR_URL).
// ?transport=websocket|sse|long-poll|... forces one transport (comet.js's names).
require '/var/www/php-client/comet.php';

if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $text = isset($_POST['text']) ? (string) $_POST['text'] : '';
    $id = comet_publish('demo', array('text' => $text, 'at' => date('c')));
    header('Content-Type: application/json');
    if ($id === false) {
        http_response_code(503);
    }
    echo json_encode(array('id' => $id, 'error' => $id === false ? comet_last_error() : null));
    exit;
}

$via = isset($_GET['via']) && $_GET['via'] === 'scaled' ? 'SCALED_SIDECAR_URL' : 'SIDECAR_URL';
$sidecar = rtrim((string) getenv($via), '/');
if ($sidecar === '') {
    $sidecar = 'http://localhost:8080';
}
$transport = isset($_GET['transport']) && preg_match('/^[a-z-]{1,20}$/', $_GET['transport'])
    ? $_GET['transport'] : null;
$options = array('debug' => false);
if ($transport !== null) {
    $options['transports'] = array($transport);
    $options['rememberTransport'] = false;
    $options['shareTabs'] = false;
}
$h = function ($s) { return htmlspecialchars($s, ENT_QUOTES, 'UTF-8'); };
?><!doctype html>
<meta charset="utf-8"><title>PHP + Comet Sidecar</title><link rel="icon" href="data:,">
<p>Connected to <code><?= $h($sidecar) ?></code>: <span id="state">connecting</span></p>
<form id="f" method="post"><input name="text" autofocus> <button>Send</button></form>
<ol id="log"></ol>
<script src="<?= $h($sidecar) ?>/comet.js"></script>
<script>
  // window.example: what arrived, for people and for tests/deploy/compose_browser.mjs.
  var example = window.example = { received: [], states: [], errors: [] };
  var conn = example.conn = Comet.connect(<?= json_encode($sidecar) ?>, <?= json_encode($options) ?>);
  conn.on('state', function (s) {
    example.states.push(s.state + (s.transport ? ' ' + s.transport : ''));
    document.getElementById('state').textContent = s.state + (s.transport ? ' (' + s.transport + ')' : '');
  });
  conn.on('error', function (e) { example.errors.push(String(e && e.message)); });
  conn.on('subscribed', function () { example.subscribed = true; });
  conn.subscribe('demo', function (m) {
    example.received.push({ id: m.id, data: m.data });
    var li = document.createElement('li');
    li.textContent = JSON.parse(m.data).text;
    document.getElementById('log').appendChild(li);
  });
  document.getElementById('f').onsubmit = function (e) {
    e.preventDefault();
    fetch('', { method: 'POST', body: new FormData(this) });
    this.text.value = '';
  };
</script>
