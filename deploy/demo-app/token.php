<?php
// A token for the logged-in user's own private channels (private:user/<name>/*) and the
// chat's presence channel (demo_token()), five minutes, as text/plain; 401 without a
// login. comet.js's token function fetches it.
require __DIR__ . '/config.php';

$user = demo_user();
header('Cache-Control: no-store');
if ($user === null) {
    http_response_code(401);
    header('Content-Type: text/plain; charset=utf-8');
    echo "not logged in\n";
    exit;
}
$token = demo_token($user, $user);
if ($token === false) {
    error_log('demo-app token: ' . comet_last_error());
    http_response_code(500);
    header('Content-Type: text/plain; charset=utf-8');
    echo "no token: see the server's error log\n";
    exit;
}
header('Content-Type: text/plain; charset=utf-8');
echo $token;
