// The demo app's browser side, shared by its pages (ES5, like comet.js). The page's PHP
// writes window.demoConfig = {url, token?} (config.php, demo_header()); this file
// connects with comet.js and keeps what happened in window.demoApp (the tests read it):
//   demoApp.conn       the comet.js connection
//   demoApp.received   [{ch, id, data, at}]  every message, `at` in ms since the epoch
//   demoApp.states     [{state, transport, at}]
//   demoApp.errors     [{message, channel, status}] (a refused private channel has both)
//   demoApp.answers    [{status, body, at}] the PHP script's answers to the forms sent
//   demoApp.members    {ch: [{id, info}]}   presence lists, as shown
//   demoApp.presenceEvents [{type: 'members'|'join'|'leave', ch, id, at}]
// ?transport=NAME[,NAME…] forces comet.js's transports (websocket, sse, xhr-stream,
// iframe, htmlfile, multipart, dom-event-stream, long-poll, jsonp, poll); ?debug=1 logs.
(function () {
  'use strict';
  var q = {};
  location.search.replace(/^\?/, '').split('&').forEach(function (kv) {
    if (!kv) return;
    var i = kv.indexOf('=');
    q[decodeURIComponent(i < 0 ? kv : kv.slice(0, i))] = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
  });
  var now = function () { return window.performance && performance.timeOrigin ? performance.timeOrigin + performance.now() : Date.now(); };
  var app = window.demoApp = { received: [], states: [], errors: [], transports: [], answers: [], members: {}, presenceEvents: [], conn: null };

  /** Connects (once) with the page's settings; `extra` adds comet.js options. */
  app.connect = function (extra) {
    if (app.conn) return app.conn;
    var config = window.demoConfig || {};
    if (!window.Comet) {
      app.setState('comet.js did not load from ' + config.url + '/comet.js', 'closed');
      return null;
    }
    var options = extra || {};
    if (q.transport) options.transports = q.transport.split(',');
    if (q.debug) options.debug = true;
    if (q.poll) options.pollInterval = Number(q.poll);
    var conn = app.conn = Comet.connect(config.url, options);
    conn.on('state', function (s) {
      app.states.push({ state: s.state, transport: s.transport, at: now() });
      if (s.transport && app.transports[app.transports.length - 1] !== s.transport) app.transports.push(s.transport);
      app.setState(s.state, s.state, s.transport);
    });
    conn.on('error', function (e) {
      app.errors.push({ message: String(e && e.message), channel: e && e.channel, status: e && e.status });
      var el = document.getElementById('errors');
      if (el && e && e.channel) el.textContent = 'refused: ' + e.channel + ' (' + e.status + ')';
    });
    return conn;
  };

  /** Subscribes `ch`; `show(message, parsedData)` renders it. */
  app.subscribe = function (ch, show) {
    var conn = app.connect();
    if (!conn) return null;
    return conn.subscribe(ch, function (m) {
      app.received.push({ ch: m.ch, id: m.id, data: m.data, at: now() });
      var data = null;
      try { data = JSON.parse(m.data); } catch (err) { data = { text: m.data }; }
      show(m, data);
    });
  };

  /** Subscribes the presence channel `ch` and keeps the list `listId` showing its members. */
  app.presence = function (ch, listId) {
    var conn = app.connect();
    if (!conn) return null;
    var sub = conn.subscribe(ch, function () {});
    var show = function () {
      var members = app.members[ch] = sub.members();
      var el = document.getElementById(listId);
      if (!el) return;
      el.textContent = members.length ? members.map(function (m) {
        return (m.info && m.info.name) || m.id;
      }).join(', ') : 'nobody';
    };
    var record = function (type) {
      return function (m) {
        if (type === 'members') m.forEach(function (x) { app.presenceEvents.push({ type: type, ch: ch, id: x.id, at: now() }); });
        else app.presenceEvents.push({ type: type, ch: ch, id: m.id, at: now() });
        show();
      };
    };
    sub.on('members', record('members'));
    sub.on('join', record('join'));
    sub.on('leave', record('leave'));
    return sub;
  };

  app.setState = function (text, cls, transport) {
    var el = document.getElementById('state');
    if (!el) return;
    el.textContent = text;
    el.className = cls || '';
    if (transport !== undefined) document.getElementById('transport').textContent = transport || '–';
  };

  /** Prepends a line to the list `listId`, at most `max` kept. */
  app.line = function (listId, parts, max) {
    var list = document.getElementById(listId);
    var li = document.createElement('li');
    for (var i = 0; i < parts.length; i++) {
      var el = document.createElement(parts[i][0]);
      el.textContent = parts[i][1];
      li.appendChild(el);
      if (i < parts.length - 1) li.appendChild(document.createTextNode(' '));
    }
    list.insertBefore(li, list.firstChild);
    while (list.childNodes.length > (max || 50)) list.removeChild(list.lastChild);
  };

  /**
   * Sends `form` with fetch (the PHP script answers JSON to Accept: application/json)
   * and clears `clear`; without JavaScript the same form posts and redirects back.
   */
  app.ajaxForm = function (form, clear, onAnswer) {
    form.addEventListener('submit', function (e) {
      if (!window.fetch || !window.FormData) return;   // plain form post
      e.preventDefault();
      app.lastSubmitAt = now();
      var body = new FormData(form);
      // getAttribute: a field named "action" would shadow form.action.
      fetch(form.getAttribute('action') || location.href, { method: 'POST', body: body, credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); })
        .then(function (a) {
          app.answers.push({ status: a.status, body: a.body, at: now() });
          var note = document.getElementById('note');
          if (note) note.textContent = a.status === 200 ? '' : (a.body.error || ('HTTP ' + a.status));
          if (onAnswer) onAnswer(a);
        }, function (err) {
          app.answers.push({ status: 0, error: err.message, at: now() });
          var note = document.getElementById('note');
          if (note) note.textContent = 'not sent: ' + err.message;
        });
      if (clear) clear.value = '';
    });
  };
})();
