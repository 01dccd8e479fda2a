<?php
// A token for the chat's presence channel (and, logged in, the user's private channels:
// demo_token()), five minutes, as text/plain: `sub` is this browser's member id (the
// logged-in user, else a guest name in the PHP session) and `info` its public name,
// which every chat page shows in its "online" list. comet.js's token function
// (chat.php) fetches it before every connection and again on expiry.
require __DIR__ . '/config.php';

header('Cache-Control: no-store');
header('Content-Type: text/plain; charset=utf-8');
$member = demo_member();
$token = demo_token($member, demo_user());
if ($token === false) {
    error_log('demo-app presence-token: ' . comet_last_error());
    http_response_code(500);
    echo "no token: see the server's error log\n";
    exit;
}
echo $token;
