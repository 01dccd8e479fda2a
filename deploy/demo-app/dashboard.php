<?php
// A live dashboard: dashboard-feed.php (a PHP script run from the command line, or
// cron) publishes the machine's load and memory to the channel "dashboard" every
// second; this page only shows what arrives.
require __DIR__ . '/config.php';

demo_header('Dashboard');
?>
<p class="hint">Fed by <code>php deploy/demo-app/dashboard-feed.php</code> (one sample a second;
<code>--count N</code> stops after N). Nothing arrives while it does not run.</p>
<table id="dash">
  <tr><th>host</th><td id="host">–</td></tr>
  <tr><th>load (1, 5, 15 min)</th><td id="load">–</td></tr>
  <tr><th>memory used</th><td id="mem">–</td></tr>
  <tr><th>sample #</th><td id="seq">–</td></tr>
  <tr><th>sampled at</th><td id="at">–</td></tr>
</table>
<div class="spark" id="spark"></div>
<script>
  (function () {
    var $ = function (id) { return document.getElementById(id); };
    var history = [];
    demoApp.subscribe('dashboard', function (m, d) {
      $('host').textContent = d.host || '–';
      $('load').textContent = (d.load || []).map(function (x) { return Number(x).toFixed(2); }).join(', ');
      $('mem').textContent = d.mem_total ? Math.round(100 * d.mem_used / d.mem_total) + ' % of ' +
        Math.round(d.mem_total / 1048576) + ' MiB' : '–';
      $('seq').textContent = d.seq;
      $('at').textContent = d.at ? new Date(d.at).toLocaleTimeString() : '–';
      history.push(d.load ? d.load[0] : 0);
      if (history.length > 60) history.shift();
      var max = Math.max.apply(null, history.concat([1]));
      $('spark').innerHTML = '';
      history.forEach(function (v) {
        var bar = document.createElement('span');
        bar.style.height = Math.max(2, Math.round(60 * v / max)) + 'px';
        $('spark').appendChild(bar);
      });
    });
  })();
</script>
<?php demo_footer();
