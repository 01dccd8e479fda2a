<?php
// A private inbox per user. A demo "login" (any name, no password: this is a demo) puts
// the user in the PHP session; the page then subscribes to private:user/<name>/inbox,
// which the sidecar serves only with a token covering it: comet.js asks token.php for
// one (comet_token(), signed with COMET_TOKEN_SECRET, the sidecar's --token-secret) before
// every connection and again when it expires. Anyone logged in can drop a note into
// another user's inbox (PHP publishes it); only that user receives it.
require __DIR__ . '/config.php';

$back = 'private.php' . demo_transport_query();

if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    demo_check_origin();
    $action = isset($_POST['op']) && is_string($_POST['op']) ? $_POST['op'] : '';
    if ($action === 'login' || $action === 'logout') {
        session_start();
        session_regenerate_id(true);   // a new session id at every change of user
        if ($action === 'logout') {
            unset($_SESSION['user_id']);
            demo_done($back, array('user' => null));
        }
        $name = isset($_POST['user']) && is_string($_POST['user']) ? strtolower(trim($_POST['user'])) : '';
        if (!preg_match('/^[a-z0-9_-]{1,32}$/', $name)) {
            demo_done($back, array('error' => 'a user name is 1 to 32 of a-z 0-9 _ -'), 400);
        }
        $_SESSION['user_id'] = $name;
        demo_done($back, array('user' => $name));
    }
    if ($action === 'send') {
        $from = demo_user();
        if ($from === null) {
            demo_done($back, array('error' => 'log in first'), 403);
        }
        $to = isset($_POST['to']) && is_string($_POST['to']) ? strtolower(trim($_POST['to'])) : '';
        $text = isset($_POST['text']) && is_string($_POST['text']) ? trim($_POST['text']) : '';
        if (!preg_match('/^[a-z0-9_-]{1,32}$/', $to) || $text === '' || !preg_match('//u', $text)) {
            demo_done($back, array('error' => 'say whom (a user name) and what'), 400);
        }
        $id = comet_publish(demo_inbox($to), array('from' => $from, 'text' => $text, 'at' => round(microtime(true) * 1000)));
        if ($id === false) {
            error_log('demo-app private: ' . comet_last_error());
            demo_done($back, array('error' => 'could not publish: ' . comet_last_error()), 502);
        }
        demo_done($back, array('ch' => demo_inbox($to), 'id' => $id));
    }
    demo_done($back, array('error' => 'unknown action'), 400);
}

$user = demo_user();
$secretSet = comet_client()->getOption('secret') !== null && comet_client()->getOption('secret') !== '';
demo_header('Private inbox', array('user' => $user, 'inbox' => $user === null ? null : demo_inbox($user)));
if (!$secretSet) {
    echo '<p class="error">COMET_TOKEN_SECRET is not set: PHP cannot sign tokens, the sidecar will refuse the inbox.</p>', "\n";
}
if ($user === null) { ?>
<p class="hint">Log in with any name (a demo: no password), in two browsers with two names.</p>
<form id="login" method="post" action="<?= h($back) ?>">
  <input type="hidden" name="op" value="login">
  <input type="text" name="user" id="user" placeholder="user name (a-z 0-9 _ -)" maxlength="32" autofocus>
  <button>Log in</button>
</form>
<?php } else { ?>
<p>Logged in as <b id="me"><?= h($user) ?></b>; your inbox is <code><?= h(demo_inbox($user)) ?></code>.</p>
<form method="post" action="<?= h($back) ?>"><input type="hidden" name="op" value="logout"><button id="logout">Log out</button></form>
<form id="send" method="post" action="<?= h($back) ?>">
  <input type="hidden" name="op" value="send">
  <input type="text" name="to" id="to" placeholder="to (user name)" size="12" maxlength="32">
  <input type="text" name="text" id="text" placeholder="a private note" autocomplete="off" maxlength="2000">
  <button>Send</button>
</form>
<p id="note" class="error"></p>
<p id="errors" class="error"></p>
<ol id="log"></ol>
<script>
  // A fresh token from token.php before every connection and when the sidecar says the
  // current one expires.
  demoApp.connect({
    token: function () {
      return fetch('token.php', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
        if (!r.ok) throw new Error('token.php: HTTP ' + r.status);
        return r.text();
      });
    }
  });
  demoApp.subscribe(demoConfig.inbox, function (m, d) {
    demoApp.line('log', [['code', '#' + m.id], ['b', d.from || ''], ['span', d.text || ''],
      ['small', d.at ? new Date(d.at).toLocaleTimeString() : '']]);
  });
  demoApp.ajaxForm(document.getElementById('send'), document.getElementById('text'));
</script>
<?php }
demo_footer();
