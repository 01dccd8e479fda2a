<?php
// Settings and small helpers shared by every page of the demo app. Plain PHP (5.6+), no
// framework, no Composer: it runs under Apache + mod_php, behind nginx (php-fpm or
// `php -S`), and in XAMPP.
//
// Settings come from the environment (Apache SetEnv, php-fpm env[...], the shell of
// `php -S`), or from config.local.php next to this file (for XAMPP: copy
// config.local.php.example and edit it):
//
//   DEMO_COMET_URL      where the BROWSER reaches the sidecar (comet.js and every
//                       transport): '/comet' (default) when the site proxies /comet/ to
//                       it (deploy/apache/comet-proxy.conf, deploy/nginx/), or e.g.
//                       'http://127.0.0.1:8080' for a sidecar on its own port (XAMPP
//                       without a proxy; iframe/htmlfile need the same origin then).
//   DEMO_PHP_CLIENT     path of php-client's comet.php (default: ../../php-client/comet.php
//                       in this repository, else comet.php next to this file).
//
// The PHP client reads its own settings from the environment too (php-client/README.md):
//   COMET_PUBLISH_URL   where PHP publishes (default http://127.0.0.1:8081, the sidecar's
//                       publish listener on this host)
//   COMET_PUBLISH_KEY   the sidecar's --publish-key, when PHP publishes to a sidecar on
//                       another host (its public listener)
//   COMET_REDIS_URL     publish through Redis instead (sidecars started with --redis)
//   COMET_TOKEN_SECRET  the HMAC secret of comet_token(), the sidecar's --token-secret
//                       (private.php needs it; without it the private demo says so)

function demo_setting($name, $default)
{
    $value = getenv($name);
    if (($value === false || $value === '') && isset($_SERVER[$name])) {
        $value = $_SERVER[$name];
    }
    return ($value === false || $value === '' || $value === null) ? $default : (string) $value;
}

$DEMO = array(
    'comet_url' => rtrim(demo_setting('DEMO_COMET_URL', '/comet'), '/'),
    'php_client' => demo_setting('DEMO_PHP_CLIENT', ''),
    // Passed to comet_configure() when set (config.local.php); else the environment's.
    'comet' => array(),
);
if (is_file(__DIR__ . '/config.local.php')) {
    include __DIR__ . '/config.local.php';   // may change $DEMO
}
if ($DEMO['php_client'] === '') {
    $DEMO['php_client'] = is_file(__DIR__ . '/../../php-client/comet.php')
        ? __DIR__ . '/../../php-client/comet.php'
        : __DIR__ . '/comet.php';
}
require_once $DEMO['php_client'];
if (!empty($DEMO['comet']) && !comet_configure($DEMO['comet'])) {
    error_log('demo-app: comet_configure: ' . comet_last_error());
}

/** HTML-escapes $s. */
function h($s)
{
    return htmlspecialchars((string) $s, ENT_QUOTES, 'UTF-8');
}

/** JSON for inside a <script> element. */
function demo_js($value)
{
    return json_encode($value, JSON_UNESCAPED_SLASHES | JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT);
}

/** Ends the request with a JSON answer. */
function demo_json($status, array $body)
{
    http_response_code($status);
    header('Content-Type: application/json; charset=utf-8');
    header('Cache-Control: no-store');
    echo json_encode($body, JSON_UNESCAPED_SLASHES), "\n";
    exit;
}

/** True when the client asked for JSON (the pages' script), false for a plain form. */
function demo_wants_json()
{
    return isset($_SERVER['HTTP_ACCEPT']) && strpos($_SERVER['HTTP_ACCEPT'], 'application/json') !== false;
}

/**
 * Refuses a POST from another site (a browser sends Origin with every POST; it must be
 * this site). Forms without Origin (old browsers, curl) are let through.
 */
function demo_check_origin()
{
    if (!isset($_SERVER['HTTP_ORIGIN'])) {
        return;
    }
    $host = isset($_SERVER['HTTP_HOST']) ? $_SERVER['HTTP_HOST'] : '';
    $https = !empty($_SERVER['HTTPS']) && $_SERVER['HTTPS'] !== 'off';
    $ok = array('http://' . $host, 'https://' . $host);
    if (!in_array($_SERVER['HTTP_ORIGIN'], $https ? array($ok[1]) : $ok, true)) {
        demo_json(403, array('error' => 'cross-site request refused'));
    }
}

/** After a form POST: back to the page (303), or a JSON answer to the page's script. */
function demo_done($page, array $answer, $status = 200)
{
    if (demo_wants_json()) {
        demo_json($status, $answer);
    }
    $sep = strpos($page, '?') === false ? '?' : '&';
    if ($status !== 200 && isset($answer['error'])) {
        $page .= $sep . 'error=' . rawurlencode($answer['error']);
    }
    header('Location: ' . $page, true, 303);
    exit;
}

/** The logged-in user of the private demo (session, read without holding its lock), or null. */
function demo_user()
{
    if (session_status() !== PHP_SESSION_ACTIVE) {
        if (PHP_VERSION_ID >= 70000) {
            session_start(array('read_and_close' => true));
        } else {
            session_start();
            session_write_close();
        }
    }
    return isset($_SESSION['user_id']) ? (string) $_SESSION['user_id'] : null;
}

/**
 * Who the chat's "online" list shows for this browser: the logged-in user of the private
 * demo, else a guest name kept in the PHP session ("guest-1a2b3c").
 */
function demo_member()
{
    $user = demo_user();
    if ($user !== null) {
        return $user;
    }
    if (!isset($_SESSION['guest_id'])) {
        session_start();
        if (!isset($_SESSION['guest_id'])) {
            $_SESSION['guest_id'] = 'guest-' . substr(md5(uniqid(mt_rand(), true)), 0, 6);
        }
        session_write_close();
    }
    return (string) $_SESSION['guest_id'];
}

/** The chat's presence channel: who has a chat page open (private: tokens name the member). */
function demo_presence_channel()
{
    return 'presence:chat';
}

/**
 * A token (comet_token(), five minutes) for what this browser's pages subscribe to: the
 * chat's presence channel as $member, and the logged-in user's private channels. One
 * token for both: the pages of one browser share one connection (comet.js's tab
 * sharing), and its token is the one of whichever page leads.
 * @return string|bool false on failure (comet_last_error())
 */
function demo_token($member, $user)
{
    $channels = array(demo_presence_channel());
    if ($user !== null) {
        $channels[] = 'private:user/' . $user . '/*';
    }
    return comet_token($channels, 300, array('sub' => $member, 'info' => array('name' => $member)));
}

/** A user's inbox channel: private, so subscribing needs a token covering it. */
function demo_inbox($user)
{
    return 'private:user/' . $user . '/inbox';
}

/** The transport forced with ?transport=a,b (for trying them out), kept in the links. */
function demo_transport_query()
{
    if (!isset($_GET['transport']) || !is_string($_GET['transport'])
        || !preg_match('/^[a-z-]+(,[a-z-]+)*$/', $_GET['transport'])) {
        return '';
    }
    return '?transport=' . $_GET['transport'];
}

/** The top of every page: title, links, comet.js and the page's settings. */
function demo_header($title, array $client = array())
{
    global $DEMO;
    $client['url'] = $DEMO['comet_url'];
    $q = demo_transport_query();
    header('Content-Type: text/html; charset=utf-8');
    header('Cache-Control: no-store');
    ?><!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title><?= h($title) ?> · Comet Sidecar demo app</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="style.css">
<script src="<?= h($DEMO['comet_url'] . '/comet.js') ?>"></script>
<script>window.demoConfig = <?= demo_js($client) ?>;</script>
<script src="app.js"></script>
</head>
<body>
<nav><a href="index.php<?= h($q) ?>">Demo app</a> · <a href="chat.php<?= h($q) ?>">Chat</a> ·
<a href="dashboard.php<?= h($q) ?>">Dashboard</a> · <a href="private.php<?= h($q) ?>">Private inbox</a></nav>
<h1><?= h($title) ?></h1>
<div id="bar"><span id="state">connecting…</span> <span>via <code id="transport">–</code></span></div>
<?php
    if (isset($_GET['error']) && is_string($_GET['error'])) {
        echo '<p class="error">', h($_GET['error']), "</p>\n";
    }
}

function demo_footer()
{
    echo "</body>\n</html>\n";
}
