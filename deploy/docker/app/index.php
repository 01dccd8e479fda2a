<?php
// The compose example app: a form that publishes with comet_publish() and a page that
// receives through comet.js, proxied by Apache at /comet/ to the sidecars.
require '/var/www/php-client/comet.php';

if ($_SERVER['REQUEST_METHOD'] === 'POST' && isset($_POST['text'])) {
    $id = comet_publish('demo', array('text' => (string) $_POST['text'], 'at' => date('c')));
    header('Content-Type: application/json');
    echo json_encode(array('id' => $id, 'error' => $id === false ? comet_last_error() : null));
    exit;
}
?><!doctype html>
<meta charset="utf-8"><title>PHP + Comet Sidecar</title>
<form id="f"><input name="text" autofocus> <button>Send</button></form>
<ol id="log"></ol>
<script src="/comet/comet.js"></script>
<script>
  var conn = Comet.connect('/comet');
  conn.subscribe('demo', function (m) {
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
