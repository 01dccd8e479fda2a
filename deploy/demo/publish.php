<?php
// The demo's publisher: the page POSTs what was typed (ch, text) and PHP publishes it with
// comet_publish(), the way an application does. No Redis and no key here, so the PHP
// client posts to the sidecar's publish listener, http://127.0.0.1:8081 (its default;
// COMET_PUBLISH_URL, COMET_PUBLISH_KEY or COMET_REDIS_URL in the PHP server's
// environment change that). Browsers never publish to the sidecar themselves.
// Answers the JSON {"ch":…,"id":…} or {"error":…}.
require __DIR__ . '/../../php-client/comet.php';

function demo_answer($status, array $body)
{
    http_response_code($status);
    header('Content-Type: application/json');
    header('Cache-Control: no-store');
    echo json_encode($body), "\n";
    exit;
}

if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    header('Allow: POST');
    demo_answer(405, array('error' => 'use POST'));
}
// Only the demo page itself: a cross-site page cannot send this header without a CORS
// preflight, which this script never allows, and a browser's Origin must be our own.
$host = isset($_SERVER['HTTP_HOST']) ? $_SERVER['HTTP_HOST'] : '';
if (!isset($_SERVER['HTTP_X_COMET_DEMO'])
    || (isset($_SERVER['HTTP_ORIGIN']) && $_SERVER['HTTP_ORIGIN'] !== 'http://' . $host)) {
    demo_answer(403, array('error' => 'only the demo page publishes here'));
}
$ch = isset($_POST['ch']) && is_string($_POST['ch']) ? $_POST['ch'] : 'demo';
$text = isset($_POST['text']) && is_string($_POST['text']) ? $_POST['text'] : '';
if ($text === '') {
    demo_answer(400, array('error' => 'nothing to publish (text is empty)'));
}
// Public channels only: private ones carry what the app alone decides to send.
if (preg_match('/^(private|presence):/', $ch)) {
    demo_answer(403, array('error' => 'the demo publishes to public channels only'));
}
$id = comet_publish($ch, $text);
if ($id === false) {
    demo_answer(502, array('error' => comet_last_error()));
}
demo_answer(200, array('ch' => $ch, 'id' => $id));
