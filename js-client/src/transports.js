// ---------------------------------------------------------------------------------
// transports.js: one constructor per way of talking to the sidecar. Each gets a
// context `ctx` from the driver (session.js) and reports back through it:
//   ctx.url(path, params)   absolute URL with the token added
//   ctx.channels()          the channels wanted now;  ctx.cursor(): their cursor
//   ctx.opened()            the transport works (handshake / open notice / 1st answer)
//   ctx.alive()             bytes arrived (heartbeats included): resets stall detection
//   ctx.object(obj)         a server object; false = this transport was superseded
//   ctx.batch(list, cursor, members)  a poll answer (members: its presence lists by
//                           channel, if any); false = superseded
//   ctx.closed(err, graceful)  it ended (graceful: planned end, reconnect at once);
//                           an HTTP error carries `status` and, for a refused
//                           channel (401/403 naming it), `channel` and `code`
// and implements start(), stop() and update() (the channel set changed: true if
// handled in place, false to be restarted with the new set); WebSocket also
// reauth(token) (fresh credentials on the open socket: true if sent).

/** Reads a streaming HTTP response as text with XHR (onprogress / readyState 3). */
function XhrReader(url, opts) {
  var xhr = new G.XMLHttpRequest();
  var seen = 0;
  var done = false;
  var headersSeen = false;
  var failed = false;
  this.xhr = xhr;
  function finish(err) {
    if (done) return;
    done = true;
    xhr.onreadystatechange = xhr.onprogress = xhr.onerror = xhr.ontimeout = null;
    opts.onEnd(err);
  }
  function pump() {
    if (done) return;
    if (!headersSeen && xhr.readyState >= 2) {
      headersSeen = true;
      failed = xhr.status !== 200;
      if (!failed && opts.onHeaders) opts.onHeaders(xhr.getResponseHeader('Content-Type') || '');
    }
    if (failed) {
      // An error answer is a short JSON body naming the problem (a refused channel):
      // read it whole.
      if (xhr.readyState === 4) finish(httpError(xhr.status, xhr.responseText));
      return;
    }
    if (xhr.readyState >= 3) {
      var text;
      try {
        text = xhr.responseText;
      } catch (e) {
        return; // IE before readyState 4
      }
      if (text.length > seen) {
        var chunk = text.slice(seen);
        seen = text.length;
        opts.onText(chunk);
      }
    }
    if (xhr.readyState === 4) finish(xhr.status === 200 ? null : httpError(xhr.status));
  }
  xhr.open('GET', url, true);
  if (opts.withCredentials) xhr.withCredentials = true;
  xhr.onreadystatechange = pump;
  xhr.onprogress = pump;
  xhr.onerror = function () {
    finish(new Error('network error'));
  };
  xhr.send(null);
  this.abort = function () {
    done = true;
    xhr.onreadystatechange = xhr.onprogress = xhr.onerror = null;
    try {
      xhr.abort();
    } catch (e) {}
  };
}

/** Reads a streaming HTTP response as text with fetch + ReadableStream. */
function FetchReader(url, opts) {
  var controller = G.AbortController ? new G.AbortController() : null;
  var done = false;
  var reader = null;
  function finish(err) {
    if (done) return;
    done = true;
    opts.onEnd(err);
  }
  var init = { cache: 'no-store', credentials: opts.withCredentials ? 'include' : 'same-origin' };
  if (controller) init.signal = controller.signal;
  G.fetch(url, init).then(
    function (res) {
      if (done) return;
      if (res.status !== 200) {
        return res.text().then(
          function (text) {
            finish(httpError(res.status, text));
          },
          function () {
            finish(httpError(res.status));
          }
        );
      }
      if (opts.onHeaders) opts.onHeaders(res.headers.get('Content-Type') || '');
      reader = res.body.getReader();
      var decoder = new G.TextDecoder('utf-8');
      function read() {
        reader.read().then(
          function (r) {
            if (done) return;
            if (r.done) {
              var rest = decoder.decode();
              if (rest) opts.onText(rest);
              return finish(null);
            }
            opts.onText(decoder.decode(r.value, { stream: true }));
            read();
          },
          function (e) {
            finish(e || new Error('stream error'));
          }
        );
      }
      read();
    },
    function (e) {
      finish(e || new Error('network error'));
    }
  );
  this.abort = function () {
    done = true;
    if (controller) controller.abort();
    else if (reader) reader.cancel()['catch'](noop);
  };
}

function canFetchStream() {
  return !!(G.fetch && G.ReadableStream && G.TextDecoder && G.Response && 'body' in G.Response.prototype);
}

/**
 * The Error for an HTTP answer other than 200. The sidecar's error body
 * {"error":…,"status":N[,"ch":…]} names a refused private channel (401: no
 * credentials, 403: not covered / expired / refused): `channel` and `code`
 * ('unauthorized' | 'forbidden') mark a refusal rather than a failing transport.
 */
function httpError(status, body) {
  var answer = body ? parseJson(body) : null;
  var why = answer && typeof answer.error === 'string' ? answer.error : '';
  var e = new Error(status ? 'HTTP ' + status + (why ? ': ' + why : '') : 'network error');
  e.status = status;
  if ((status === 401 || status === 403) && answer && typeof answer.ch === 'string') {
    e.channel = answer.ch;
    e.code = status === 401 ? 'unauthorized' : 'forbidden';
  }
  return e;
}

/**
 * A transport that cannot see HTTP statuses (EventSource, a cross-origin iframe)
 * failed before opening: one /poll?wait=0 with the same channels, cursor and token
 * tells whether the sidecar refused a channel (then cb gets that refusal, which the
 * driver reports instead of trying the next transport), else cb(err) unchanged.
 * Returns abort().
 */
function explainFailure(ctx, err, cb) {
  if (!G.XMLHttpRequest) {
    cb(err);
    return noop;
  }
  var url = ctx.url('/poll', { ch: ctx.channels().join(','), cursor: ctx.cursor(), wait: '0' });
  return xhrGet(url, ctx.options.withCredentials, ctx.options.timeouts.open, function (e) {
    cb(e && e.channel ? e : err);
  });
}

/**
 * Learns where channels without a position start (a wait=0 poll answers with their
 * head cursor), then calls `next()` — unless the transport was stopped meanwhile
 * (`isStopped()`). For the streaming transports: their own announcement of a channel
 * still being read from Redis says ".0" and the subscription really starts later, so a
 * stream opened with an explicit cursor is the reliable way to start at the head.
 * Returns abort(). Without an answer (no CORS, ...) the stream starts at the head by
 * itself.
 */
function learnHeads(ctx, isStopped, next) {
  var unknown = [];
  var channels = ctx.channels();
  for (var i = 0; i < channels.length; i++) if (!ctx.position(channels[i])) unknown.push(channels[i]);
  if (!unknown.length) {
    next();
    return noop;
  }
  return xhrGet(ctx.url('/poll', { ch: unknown.join(','), wait: '0' }), ctx.options.withCredentials, ctx.options.timeouts.open, function (err, text) {
    if (isStopped()) return;
    // A refused channel would refuse the stream as well, where EventSource and
    // iframes cannot tell why: report it now.
    if (err && err.channel) return ctx.closed(err, false);
    var answer = err ? null : parseJson(text);
    if (answer && answer.cursor && ctx.batch([], answer.cursor) === false) return;
    next();
  });
}

/** start() of the streaming transports: learn the unknown heads, then open(). */
function startAfterHeads() {
  var self = this;
  this.abortHead = learnHeads(this.ctx, function () {
    return self.stopped;
  }, function () {
    self.abortHead = null;
    self.open();
  });
}

/** The first part of a streaming transport's stop(): no head request may open it now. */
function stopHeads(transport) {
  transport.stopped = true;
  if (transport.abortHead) transport.abortHead();
  transport.abortHead = null;
}

/** A plain GET answered as a whole (poll): XHR; cb(err, text). Returns abort(). */
function xhrGet(url, withCredentials, timeoutMs, cb) {
  var xhr = new G.XMLHttpRequest();
  var done = false;
  var timer = new Timer();
  function finish(err, text) {
    if (done) return;
    done = true;
    timer.clear();
    xhr.onreadystatechange = null;
    cb(err, text);
  }
  xhr.open('GET', url, true);
  if (withCredentials) xhr.withCredentials = true;
  xhr.onreadystatechange = function () {
    if (xhr.readyState !== 4) return;
    if (xhr.status === 200) finish(null, xhr.responseText);
    else finish(httpError(xhr.status, xhr.responseText));
  };
  timer.set(timeoutMs, function () {
    try {
      xhr.abort();
    } catch (e) {}
    finish(new Error('timeout'));
  });
  xhr.send(null);
  return function abort() {
    done = true;
    timer.clear();
    xhr.onreadystatechange = null;
    try {
      xhr.abort();
    } catch (e) {}
  };
}

// ---- WebSocket ------------------------------------------------------------------

function WsTransport(ctx) {
  this.ctx = ctx;
  this.ws = null;
  this.subscribed = {};
  this.ping = null;
}
WsTransport.available = function () {
  return !!G.WebSocket;
};
WsTransport.prototype.start = function () {
  var ctx = this.ctx;
  var self = this;
  var channels = ctx.channels();
  var url = toWsUrl(ctx.url('/ws', { ch: channels.join(','), cursor: ctx.cursor() }));
  for (var i = 0; i < channels.length; i++) this.subscribed[channels[i]] = true;
  var ws;
  try {
    ws = this.ws = new G.WebSocket(url);
  } catch (e) {
    ctx.closed(e);
    return;
  }
  ws.onopen = function () {
    ctx.opened();
    self.ping = setInterval(function () {
      self.send({ cmd: 'ping' });
    }, ctx.options.timeouts.ping);
  };
  ws.onmessage = function (e) {
    ctx.alive();
    var obj = typeof e.data === 'string' ? parseJson(e.data) : undefined;
    if (obj === undefined) return;
    // A refused or ended private channel is no longer subscribed on this socket: a
    // later update() subscribes it again only if the driver wants it again.
    if (obj && obj.type === 'error' && typeof obj.ch === 'string') delete self.subscribed[obj.ch];
    ctx.object(obj);
  };
  ws.onclose = function (e) {
    self.cleanup();
    var err = new Error('WebSocket closed (' + e.code + (e.reason ? ' ' + e.reason : '') + ')');
    err.code = e.code;
    ctx.closed(err, false);
  };
  ws.onerror = noop; // followed by close
};
WsTransport.prototype.send = function (obj) {
  if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(obj));
};
/** Fresh credentials for the open socket: the token, or none (cookies / --auth-url). */
WsTransport.prototype.reauth = function (token) {
  if (!this.ws || this.ws.readyState !== 1) return false;
  this.send(token ? { cmd: 'auth', token: token } : { cmd: 'auth' });
  return true;
};
WsTransport.prototype.update = function () {
  if (!this.ws || this.ws.readyState !== 1) return false;
  var ctx = this.ctx;
  var wanted = ctx.channels();
  var want = {};
  var fresh = [];
  var gone = [];
  var i;
  for (i = 0; i < wanted.length; i++) {
    want[wanted[i]] = true;
    if (!this.subscribed[wanted[i]]) fresh.push(wanted[i]);
  }
  for (var ch in this.subscribed) if (hasOwn.call(this.subscribed, ch) && !want[ch]) gone.push(ch);
  if (gone.length) this.send({ cmd: 'unsub', ch: gone });
  for (i = 0; i < gone.length; i++) delete this.subscribed[gone[i]];
  // Channels with a known position resume after it (one command each: `since` is one
  // position); the others start at the head together.
  var atHead = [];
  for (i = 0; i < fresh.length; i++) {
    var p = ctx.position(fresh[i]);
    if (p) this.send({ cmd: 'sub', ch: fresh[i], since: formatPosition(p) });
    else atHead.push(fresh[i]);
    this.subscribed[fresh[i]] = true;
  }
  if (atHead.length) this.send({ cmd: 'sub', ch: atHead });
  return true;
};
WsTransport.prototype.cleanup = function () {
  if (this.ping) clearInterval(this.ping);
  this.ping = null;
};
WsTransport.prototype.stop = function () {
  this.cleanup();
  var ws = this.ws;
  this.ws = null;
  if (!ws) return;
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  try {
    ws.close(1000);
  } catch (e) {}
};

// ---- Server-Sent Events (EventSource) ---------------------------------------------
// Heartbeats are SSE comments, which EventSource does not expose: the stall watchdog
// is off for this transport (see stallDetection below); the browser's own error
// handling reports dead connections. EventSource also hides the stream's first event
// (an id-only event with the cursor): learnHeads() gets the positions beforehand.

function SseTransport(ctx) {
  this.ctx = ctx;
  this.es = null;
  this.opened = false;
  this.abortCheck = null;
}
SseTransport.available = function () {
  return !!G.EventSource;
};
SseTransport.stallDetection = false;
SseTransport.prototype.start = startAfterHeads;
SseTransport.prototype.open = function () {
  var ctx = this.ctx;
  var url = ctx.url('/sse', { format: 'json', ch: ctx.channels().join(','), cursor: ctx.cursor() });
  var es;
  try {
    es = this.es = new G.EventSource(url, { withCredentials: !!ctx.options.withCredentials });
  } catch (e) {
    ctx.closed(e);
    return;
  }
  function onData(e) {
    ctx.alive();
    var obj = parseJson(e.data);
    if (obj === undefined || ctx.object(obj) === false) return;
    // The event id is the cursor of every channel of the stream.
    if (e.lastEventId) ctx.batch([], e.lastEventId);
  }
  var self = this;
  es.onopen = function () {
    self.opened = true;
    ctx.opened();
  };
  es.onmessage = onData;
  es.addEventListener('comet-reset', onData);
  es.addEventListener('comet-auth-expired', onData);
  // Presence notices (no id: they never move the cursor).
  es.addEventListener('comet-members', onData);
  es.addEventListener('comet-join', onData);
  es.addEventListener('comet-leave', onData);
  es.onerror = function () {
    // EventSource would reconnect by itself; the driver does it instead (its cursor,
    // its backoff, its fallback decisions).
    self.closeSource();
    var err = new Error('EventSource error');
    if (self.opened) return ctx.closed(err, false);
    // Refused (401/403) or blocked? EventSource does not say: ask once.
    self.abortCheck = explainFailure(ctx, err, function (e) {
      self.abortCheck = null;
      ctx.closed(e, false);
    });
  };
};
SseTransport.prototype.update = function () {
  return false;
};
SseTransport.prototype.stop = function () {
  stopHeads(this);
  if (this.abortCheck) this.abortCheck();
  this.abortCheck = null;
  this.closeSource();
};
SseTransport.prototype.closeSource = function () {
  var es = this.es;
  this.es = null;
  if (!es) return;
  es.onopen = es.onmessage = es.onerror = null;
  es.close();
};

// ---- Legacy streams over HTTP: xhr (ndjson), multipart, dom-event-stream ------------

/**
 * `format` 'xhr' | 'multipart' | 'dom-event-stream'; `reader` 'xhr' | 'fetch'
 * (fetch + ReadableStream where available, else XHR).
 */
function HttpStreamTransport(ctx, format, reader) {
  this.ctx = ctx;
  this.format = format;
  this.reader = reader;
  this.req = null;
}
HttpStreamTransport.prototype.start = startAfterHeads;
HttpStreamTransport.prototype.open = function () {
  var ctx = this.ctx;
  var self = this;
  var path = this.format === 'dom-event-stream' ? '/sse' : '/stream';
  var url = ctx.url(path, { format: this.format, ch: ctx.channels().join(','), cursor: ctx.cursor() });
  var graceful = false;
  var stopped = false;
  function onObject(obj) {
    if (stopped) return;
    var kind = classify(obj);
    if (kind === 'open') {
      ctx.opened();
    }
    if (kind === 'reconnect') graceful = true;
    if (ctx.object(obj) === false) stopped = true;
  }
  var parser;
  if (this.format === 'xhr') {
    parser = new LineParser(onObject, function (line) {
      ctx.log('bad line', line.slice(0, 80));
    });
  } else if (this.format === 'dom-event-stream') {
    parser = new SseParser(
      function (ev) {
        var obj = parseJson(ev.data);
        if (obj !== undefined) onObject(obj);
      },
      null,
      true
    );
  }
  var opts = {
    withCredentials: ctx.options.withCredentials,
    onHeaders: function (contentType) {
      if (self.format === 'multipart') {
        parser = new MultipartParser(boundaryOf(contentType) || 'comet-part', function (body) {
          var obj = parseJson(body);
          if (obj !== undefined) onObject(obj);
        });
      }
    },
    onText: function (text) {
      if (stopped) return;
      ctx.alive();
      if (parser) parser.push(text);
    },
    onEnd: function (err) {
      if (stopped) return;
      stopped = true;
      self.req = null;
      ctx.closed(err || new Error('stream ended'), graceful && !err);
    }
  };
  var useFetch = this.reader === 'fetch' || (this.reader !== 'xhr' && canFetchStream());
  try {
    this.req = useFetch ? new FetchReader(url, opts) : new XhrReader(url, opts);
  } catch (e) {
    ctx.closed(e);
  }
};
HttpStreamTransport.prototype.update = function () {
  return false;
};
HttpStreamTransport.prototype.stop = function () {
  stopHeads(this);
  if (this.req) this.req.abort();
  this.req = null;
};

// ---- Forever iframe and htmlfile ----------------------------------------------------

var callbackSeq = 0;

/** A fresh global callback `__comet.NAME` (the registry object is created once). */
function registerCallback(prefix, fn, win) {
  var w = win || G;
  var reg = w.__comet || (w.__comet = {});
  var name = prefix + ++callbackSeq + '_' + randomId().slice(0, 6);
  reg[name] = fn;
  return {
    name: '__comet.' + name,
    drop: function () {
      // Late calls (a script already in flight) must not throw.
      reg[name] = noop;
      setTimeout(function () {
        if (reg[name] === noop) delete reg[name];
      }, 30000);
    }
  };
}

/** `format` 'iframe' | 'htmlfile' (htmlfile: ActiveX document on old IE, else an iframe). */
function IframeTransport(ctx, format) {
  this.ctx = ctx;
  this.format = format;
  this.frame = null;
  this.cb = null;
  this.doc = null;
  this.abortCheck = null;
}
IframeTransport.available = function () {
  return !!G.document;
};
IframeTransport.prototype.start = startAfterHeads;
IframeTransport.prototype.open = function () {
  var ctx = this.ctx;
  var self = this;
  var opened = false;
  var graceful = false;
  var stopped = false;
  var activeX = this.format === 'htmlfile' && typeof G.ActiveXObject !== 'undefined';
  var target = G;
  if (activeX) {
    // The htmlfile technique: a document outside the page's window (no loading
    // indicator), whose window hosts the callback the streamed scripts call.
    try {
      var doc = new G.ActiveXObject('htmlfile');
      doc.open();
      doc.write('<html><head><script>document.domain="' + G.document.domain + '";</script></head><body></body></html>');
      doc.close();
      this.doc = doc;
      target = doc.parentWindow;
    } catch (e) {
      activeX = false;
    }
  }
  this.cb = registerCallback('f', function (obj) {
    if (stopped) return;
    ctx.alive();
    var kind = classify(obj);
    if (kind === 'open') {
      opened = true;
      ctx.opened();
    }
    if (kind === 'reconnect') graceful = true;
    if (ctx.object(obj) === false) stopped = true;
  }, target);
  var params = { format: this.format, cb: this.cb.name, ch: ctx.channels().join(','), cursor: ctx.cursor() };
  if (activeX) params.domain = G.document.domain;
  var url = ctx.url('/stream', params);
  var container = activeX ? this.doc : G.document;
  var frame = container.createElement('iframe');
  this.frame = frame;
  frame.style.display = 'none';
  frame.setAttribute('aria-hidden', 'true');
  frame.tabIndex = -1;
  // `load` fires when the document is complete: the server ended the response (byte
  // budget), refused it (4xx) or the connection dropped.
  var onload = function () {
    if (stopped || !self.frame) return;
    stopped = true;
    var err = graceful ? null : new Error(opened ? 'iframe stream ended' : 'iframe stream failed');
    var known = false;
    if (!opened) {
      // Same origin: the error body explains what went wrong.
      try {
        var text = frame.contentWindow.document.body.textContent || '';
        var body = parseJson(text);
        if (body && body.status) {
          err = httpError(body.status, text);
          known = true;
        }
      } catch (e) {}
    }
    self.removeFrame();
    if (opened || known) return ctx.closed(err || new Error('stream ended'), graceful);
    // Cross-origin: the body is out of reach; was it a refusal?
    self.abortCheck = explainFailure(ctx, err, function (e) {
      self.abortCheck = null;
      ctx.closed(e, false);
    });
  };
  if (frame.attachEvent) frame.attachEvent('onload', onload);
  else frame.onload = onload;
  frame.src = url;
  (container.body || container.documentElement).appendChild(frame);
  this.stopFlag = function () {
    stopped = true;
  };
};
IframeTransport.prototype.update = function () {
  return false;
};
IframeTransport.prototype.removeFrame = function () {
  var frame = this.frame;
  this.frame = null;
  if (!frame) return;
  frame.onload = null;
  try {
    frame.src = 'about:blank';
  } catch (e) {}
  if (frame.parentNode) frame.parentNode.removeChild(frame);
};
IframeTransport.prototype.stop = function () {
  stopHeads(this);
  if (this.abortCheck) this.abortCheck();
  this.abortCheck = null;
  if (this.stopFlag) this.stopFlag();
  this.removeFrame();
  if (this.cb) this.cb.drop();
  this.cb = null;
  if (this.doc) {
    this.doc = null;
    if (G.CollectGarbage) G.CollectGarbage();
  }
};

// ---- Long-poll, polling, JSONP -----------------------------------------------------

/**
 * `mode` 'long-poll' (held requests), 'poll' (wait=0 every pollInterval) or 'jsonp'
 * (long-poll through <script> tags: cross-origin without CORS). The first request of
 * a session, and the first after the channel set changes, is answered at once
 * (wait=0): it proves the transport and learns the head position of new channels.
 */
function PollTransport(ctx, mode) {
  this.ctx = ctx;
  this.mode = mode;
  this.abort = null;
  this.timer = new Timer();
  this.stopped = false;
  this.opened = false;
  this.immediate = true;
}
PollTransport.prototype.start = function () {
  this.request();
};
PollTransport.prototype.request = function () {
  if (this.stopped) return;
  var ctx = this.ctx;
  var self = this;
  var wait0 = this.mode === 'poll' || this.immediate;
  this.immediate = false;
  var params = { ch: ctx.channels().join(','), cursor: ctx.cursor() };
  if (wait0) params.wait = '0';
  var timeout = wait0 ? ctx.options.timeouts.open + 5000 : ctx.options.timeouts.poll;
  var done = function (err, answer) {
    self.abort = null;
    if (self.stopped) return;
    if (!err && (!answer || typeof answer !== 'object' || !answer.messages)) err = new Error('bad poll answer');
    if (err) {
      self.stopped = true;
      ctx.closed(err, false);
      return;
    }
    ctx.alive();
    if (!self.opened) {
      self.opened = true;
      ctx.opened();
    }
    if (ctx.batch(answer.messages, answer.cursor, answer.members) === false || self.stopped) return;
    if (self.mode === 'poll') self.timer.set(ctx.options.pollInterval, function () {
      self.request();
    });
    else self.request();
  };
  if (this.mode === 'jsonp') this.abort = jsonpGet(ctx, params, timeout, done);
  else {
    this.abort = xhrGet(ctx.url('/poll', params), ctx.options.withCredentials, timeout, function (err, text) {
      done(err, err ? null : parseJson(text));
    });
  }
};
PollTransport.prototype.update = function () {
  // Re-ask at once with the new channel set (the held request is dropped; nothing is
  // lost: the next request carries the cursor).
  if (this.abort) this.abort();
  this.abort = null;
  this.timer.clear();
  this.immediate = true;
  this.request();
  return true;
};
PollTransport.prototype.stop = function () {
  this.stopped = true;
  this.timer.clear();
  if (this.abort) this.abort();
  this.abort = null;
};

/** One JSONP request: a <script> calling a fresh callback; done(err, answer). */
function jsonpGet(ctx, params, timeoutMs, done) {
  var doc = G.document;
  var finished = false;
  var timer = new Timer();
  var script = doc.createElement('script');
  var cb = registerCallback('j', function (answer) {
    finish(null, answer);
  });
  function cleanup() {
    timer.clear();
    cb.drop();
    script.onload = script.onerror = script.onreadystatechange = null;
    if (script.parentNode) script.parentNode.removeChild(script);
  }
  function finish(err, answer) {
    if (finished) return;
    finished = true;
    cleanup();
    done(err, answer);
  }
  params.callback = cb.name;
  script.async = true;
  script.src = ctx.url('/poll', params);
  // A script that loaded without calling back (or failed: 4xx, network) ends the poll.
  script.onerror = function () {
    finish(new Error('JSONP request failed'));
  };
  script.onload = script.onreadystatechange = function () {
    if (script.readyState && script.readyState !== 'loaded' && script.readyState !== 'complete') return;
    setTimeout(function () {
      finish(new Error('JSONP answer without callback'));
    }, 0);
  };
  timer.set(timeoutMs, function () {
    finish(new Error('timeout'));
  });
  (doc.head || doc.getElementsByTagName('head')[0] || doc.documentElement).appendChild(script);
  return function abort() {
    finished = true;
    cleanup();
  };
}

// ---- The registry -------------------------------------------------------------------

/** name → {create(ctx), available(), stallDetection}: the names `transports` accepts. */
var TRANSPORTS = {
  websocket: { create: function (c) { return new WsTransport(c); }, available: WsTransport.available },
  sse: { create: function (c) { return new SseTransport(c); }, available: SseTransport.available, stallDetection: false },
  'xhr-stream': { create: function (c) { return new HttpStreamTransport(c, 'xhr', 'xhr'); }, available: function () { return !!G.XMLHttpRequest; } },
  multipart: { create: function (c) { return new HttpStreamTransport(c, 'multipart', 'auto'); }, available: function () { return !!G.XMLHttpRequest || canFetchStream(); } },
  'dom-event-stream': { create: function (c) { return new HttpStreamTransport(c, 'dom-event-stream', 'auto'); }, available: function () { return !!G.XMLHttpRequest || canFetchStream(); } },
  iframe: { create: function (c) { return new IframeTransport(c, 'iframe'); }, available: IframeTransport.available },
  htmlfile: { create: function (c) { return new IframeTransport(c, 'htmlfile'); }, available: IframeTransport.available },
  'long-poll': { create: function (c) { return new PollTransport(c, 'long-poll'); }, available: function () { return !!G.XMLHttpRequest; } },
  jsonp: { create: function (c) { return new PollTransport(c, 'jsonp'); }, available: function () { return !!G.document; } },
  poll: { create: function (c) { return new PollTransport(c, 'poll'); }, available: function () { return !!G.XMLHttpRequest; } }
};

/** The default ladder, best first. */
var DEFAULT_TRANSPORTS = ['websocket', 'sse', 'xhr-stream', 'iframe', 'long-poll', 'jsonp'];
