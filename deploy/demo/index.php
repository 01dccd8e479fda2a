<?php
// The demo page as PHP's built-in server serves it (scripts/demo.sh: php -S
// 127.0.0.1:8000 -t deploy/demo): index.html, told where the sidecar is (comet.js and the
// stream come from there, cross-origin) and that publish.php publishes for it. The
// sidecar serves index.html as it is (--static-dir), where neither applies.
$sidecar = getenv('DEMO_SIDECAR_URL');
if ($sidecar === false || $sidecar === '') {
    $sidecar = 'http://127.0.0.1:8080';
}
$sidecar = rtrim($sidecar, '/');
$config = array('server' => $sidecar, 'publishUrl' => 'publish.php');
$flags = JSON_UNESCAPED_SLASHES | JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT;
$html = file_get_contents(__DIR__ . '/index.html');
$tag = '<script src="/comet.js"></script>';
if ($html === false || strpos($html, $tag) === false) {
    http_response_code(500);
    header('Content-Type: text/plain; charset=utf-8');
    echo "index.html has no $tag line to adapt\n";
    exit;
}
header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
echo str_replace($tag, '<script>window.cometDemoConfig = ' . json_encode($config, $flags) . ";</script>\n"
    . '<script src="' . htmlspecialchars($sidecar . '/comet.js', ENT_QUOTES) . '"></script>', $html);
