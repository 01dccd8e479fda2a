/*
 * comet.js: the Comet Sidecar browser client.
 * The full client (transport negotiation, fallback, resume, tab sharing) is tracked in
 * issue 5. Until then this file gives a minimal EventSource-based subscribe so pages
 * served with the sidecar have a working client.
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.Comet = factory();
})(this, function () {
  'use strict';
  function connect(url) {
    var base = String(url || '').replace(/\/$/, '');
    var sources = [];
    return {
      subscribe: function (channel, handler) {
        var source = new EventSource(base + '/sse?format=json&ch=' + encodeURIComponent(channel));
        source.onmessage = function (e) { handler(JSON.parse(e.data)); };
        sources.push(source);
        return { unsubscribe: function () { source.close(); } };
      },
      close: function () { for (var i = 0; i < sources.length; i++) sources[i].close(); }
    };
  }
  return { connect: connect };
});
