/*!
 * comet.js 0.1.0: the browser client of Comet Sidecar.
 * ES5, no dependencies, UMD (<script> tag: window.Comet; CommonJS; AMD).
 * Built from js-client/src/*.js by js-client/build.js: edit those, not this file.
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory(root);
  else if (typeof define === 'function' && define.amd) define([], function () { return factory(root); });
  else root.Comet = factory(root);
})(
  typeof globalThis !== 'undefined' ? globalThis : typeof self !== 'undefined' ? self : typeof window !== 'undefined' ? window : this,
  function (G) {
'use strict';

// ===== src/util.js =====
// ---------------------------------------------------------------------------------
// util.js: small helpers shared by every part of the client (no DOM access here).

var hasOwn = Object.prototype.hasOwnProperty;

function noop() {}

function now() {
  return new Date().getTime();
}

/** Shallow copy of `b`'s own properties over a copy of `a`. */
function extend(a, b) {
  var out = {};
  var k;
  for (k in a) if (hasOwn.call(a, k)) out[k] = a[k];
  if (b) for (k in b) if (hasOwn.call(b, k) && b[k] !== undefined) out[k] = b[k];
  return out;
}

function keys(obj) {
  var out = [];
  for (var k in obj) if (hasOwn.call(obj, k)) out.push(k);
  return out;
}

function indexOf(list, item) {
  for (var i = 0; i < list.length; i++) if (list[i] === item) return i;
  return -1;
}

/** A random id for this tab / instance (not security sensitive). */
function randomId() {
  return (Math.random().toString(36).slice(2) + now().toString(36)).slice(0, 16);
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return undefined;
  }
}

/** `k=v&k=v` from an object, skipping undefined / null / '' values. */
function encodeQuery(params) {
  var out = [];
  for (var k in params) {
    if (!hasOwn.call(params, k)) continue;
    var v = params[k];
    if (v === undefined || v === null || v === '') continue;
    out.push(encodeURIComponent(k) + '=' + encodeURIComponent(String(v)));
  }
  return out.join('&');
}

/** `base` + `path` + `?query` (base has no trailing slash). */
function buildUrl(base, path, params) {
  var q = encodeQuery(params);
  return base + path + (q ? '?' + q : '');
}

/** http(s)://… → ws(s)://… (protocol-relative and relative URLs resolved by the caller). */
function toWsUrl(url) {
  return url.replace(/^http(s?):/i, 'ws$1:');
}

/** Absolute form of `url` without a trailing slash, resolved against `location` if any. */
function normalizeBase(url, loc) {
  var s = String(url || '');
  if (!/^[a-z][a-z0-9+.-]*:/i.test(s) && loc) {
    if (s.slice(0, 2) === '//') s = loc.protocol + s;
    else if (s.charAt(0) === '/') s = loc.protocol + '//' + loc.host + s;
    else if (s === '') s = loc.protocol + '//' + loc.host;
    else s = loc.href.replace(/[?#].*$/, '').replace(/[^\/]*$/, '') + s;
  }
  return s.replace(/\/+$/, '');
}

/** scheme://host[:port] of an absolute URL (lower-cased), '' if it has none. */
function originOf(url) {
  var m = /^([a-z][a-z0-9+.-]*:\/\/[^\/?#]+)/i.exec(url);
  return m ? m[1].toLowerCase() : '';
}

/**
 * Delay before reconnect attempt `attempt` (0-based): min * factor^attempt capped at
 * max, then "full jitter" over the upper `jitter` fraction: a delay d becomes a random
 * value in [d * (1 - jitter), d]. `random` is injectable for tests.
 */
function backoffDelay(attempt, opts, random) {
  var o = extend(DEFAULT_BACKOFF, opts);
  var d = o.min * Math.pow(o.factor, Math.max(0, attempt));
  if (!(d < o.max)) d = o.max;
  var r = (random || Math.random)();
  return Math.round(d * (1 - o.jitter * r));
}

var DEFAULT_BACKOFF = { min: 500, max: 30000, factor: 2, jitter: 0.5 };

/** Minimal event emitter: on(name, fn) → off function; emit calls listeners safely. */
function Emitter() {
  this._listeners = {};
}
Emitter.prototype.on = function (name, fn) {
  var list = this._listeners[name] || (this._listeners[name] = []);
  list.push(fn);
  var self = this;
  return function off() {
    self.off(name, fn);
  };
};
Emitter.prototype.off = function (name, fn) {
  var list = this._listeners[name];
  if (!list) return;
  var i = indexOf(list, fn);
  if (i >= 0) list.splice(i, 1);
};
/** Calls each listener; a throwing listener is reported through `onThrow` (or rethrown later). */
Emitter.prototype.emit = function (name, value, onThrow) {
  var list = (this._listeners[name] || []).slice();
  for (var i = 0; i < list.length; i++) {
    try {
      list[i].call(null, value);
    } catch (e) {
      if (onThrow) onThrow(e);
      else rethrowLater(e);
    }
  }
};

function rethrowLater(e) {
  setTimeout(function () {
    throw e;
  }, 0);
}

/** A one-shot timer slot: set() replaces the pending timer, clear() cancels it. */
function Timer() {
  this.id = null;
}
Timer.prototype.set = function (ms, fn) {
  this.clear();
  var self = this;
  this.id = setTimeout(function () {
    self.id = null;
    fn();
  }, ms);
};
Timer.prototype.clear = function () {
  if (this.id !== null) clearTimeout(this.id);
  this.id = null;
};
Timer.prototype.pending = function () {
  return this.id !== null;
};

// ===== src/cursor.js =====
// ---------------------------------------------------------------------------------
// cursor.js: positions, cursors and the exactly-once rules (pure functions).
//
// A position is {epoch, id}: the last message a client has in a channel (protocol:
// "EPOCH.ID"; ".0" = before the channel's first message). A cursor is positions for
// several channels: "a@EPOCH.ID,b@EPOCH.ID".

var CHANNEL_RE = /^[A-Za-z0-9_.:\/=+\-]{1,128}$/;
var EPOCH_RE = /^[0-9A-Za-z]{0,32}$/;

function validChannel(ch) {
  return typeof ch === 'string' && CHANNEL_RE.test(ch);
}

function makePosition(epoch, id) {
  return { epoch: String(epoch || ''), id: Number(id) || 0 };
}

function formatPosition(p) {
  return p.epoch + '.' + p.id;
}

/** "EPOCH.ID" → {epoch, id}, or null when malformed. */
function parsePosition(s) {
  var m = /^([0-9A-Za-z]{0,32})\.(\d{1,16})$/.exec(String(s));
  if (!m) return null;
  if (m[1] === '' && m[2] !== '0') return null;
  return makePosition(m[1], m[2]);
}

/** "a@E.1,b@.0" → {a: {epoch:'E', id:1}, b: {epoch:'', id:0}}; malformed parts are skipped. */
function parseCursor(cursor) {
  var out = {};
  if (!cursor) return out;
  var parts = String(cursor).split(',');
  for (var i = 0; i < parts.length; i++) {
    var at = parts[i].lastIndexOf('@');
    if (at <= 0) continue;
    var p = parsePosition(parts[i].slice(at + 1));
    if (p) out[parts[i].slice(0, at)] = p;
  }
  return out;
}

/** The cursor of `channels` whose positions are known in `positions` ('' if none). */
function formatCursor(positions, channels) {
  var out = [];
  for (var i = 0; i < channels.length; i++) {
    var p = positions[channels[i]];
    if (p) out.push(channels[i] + '@' + formatPosition(p));
  }
  return out.join(',');
}

/** True when `a` is strictly before `b` in the same epoch (comparable and behind). */
function isBehind(a, b) {
  return !!(a && b && a.epoch === b.epoch && a.id < b.id);
}

/**
 * What to do with message `m` (an envelope) given the last position `p` held for its
 * channel:
 *   'bare'      no id: deliver, positions unchanged (cannot be resumed)
 *   'deliver'   the next message: deliver and move to it
 *   'duplicate' already had it (same epoch, id <= ours): drop
 *   'gap'       messages between ours and it are missing: drop it and resync from `p`
 * Unknown position: deliver (a subscription starts wherever the server starts it).
 * A different epoch without a reset notice first: deliver (the server is the authority
 * on epochs; it sends a reset when our epoch is stale).
 */
function judge(p, m) {
  if (m.id === undefined || m.id === null) return 'bare';
  if (!p) return 'deliver';
  var prev = m.prev === undefined ? m.id - 1 : m.prev;
  // Before the channel's first message (".0"): take what comes. (".0" is also what a
  // Redis-backed sidecar announces for a channel it is still reading from Redis, so a
  // first message with prev > 0 is no proof of a gap.)
  if (p.epoch === '' && p.id === 0) return 'deliver';
  if (m.epoch !== p.epoch) return 'deliver';
  if (m.id <= p.id) return 'duplicate';
  if (prev !== p.id) return 'gap';
  return 'deliver';
}

/**
 * A reset notice {ch, reason, epoch, id} seen by a holder at position `p`. Returns
 * {surface, position}: `surface` says whether messages were really lost for this
 * holder (so the reset is reported to it), `position` is its position afterwards.
 * A holder already at or past the notice's position in the same epoch lost nothing
 * (a notice caused by another tab's older cursor): it keeps its position.
 */
function applyReset(p, notice) {
  var r = makePosition(notice.epoch, notice.id);
  if (p && p.epoch === r.epoch && p.id >= r.id) return { surface: false, position: p };
  return { surface: true, position: r };
}

/**
 * Merges a position learnt from the server (open/reconnect/poll cursor, subscribed
 * notice) into the one held: the held one wins when it is ahead in the same epoch.
 */
function mergeServerPosition(held, learnt) {
  if (!held) return learnt;
  if (held.epoch === learnt.epoch && held.id >= learnt.id) return held;
  if (held.epoch !== learnt.epoch && learnt.epoch === '' && learnt.id === 0) return held;
  return learnt;
}

/** The earlier of two positions when comparable, else `a` (the one held). */
function minPosition(a, b) {
  if (!a) return b || null;
  if (!b) return a;
  return isBehind(b, a) ? b : a;
}

// ===== src/framing.js =====
// ---------------------------------------------------------------------------------
// framing.js: incremental parsers for every framing the sidecar speaks, fed with text
// as it arrives (pure: no DOM, no network).

/**
 * text/event-stream parser (WHATWG rules: CR, LF or CRLF line ends; `:` comments;
 * `field: value` with one optional space; data lines joined with LF; dispatch on a
 * blank line). `onEvent({event, data, id})` for each dispatched event (id: the last
 * event id in force, which persists across events); `onComment(text)` for comments.
 * `legacy` (application/x-dom-event-stream) matches field names case-insensitively
 * ("Event: comet").
 */
function SseParser(onEvent, onComment, legacy) {
  this.onEvent = onEvent;
  this.onComment = onComment || noop;
  this.legacy = !!legacy;
  this.buf = '';
  this.lastId = '';
  this.reset();
}
SseParser.prototype.reset = function () {
  this.data = null;
  this.event = '';
  this.pendingCR = false;
};
SseParser.prototype.push = function (text) {
  var buf = this.buf + text;
  var start = 0;
  for (var i = 0; i < buf.length; i++) {
    var c = buf.charCodeAt(i);
    if (c !== 10 && c !== 13) continue;
    if (c === 10 && this.pendingCR && i === start) {
      // LF of a CRLF whose CR ended the previous line.
      this.pendingCR = false;
      start = i + 1;
      continue;
    }
    this.pendingCR = c === 13;
    this.line(buf.slice(start, i));
    start = i + 1;
  }
  this.buf = buf.slice(start);
};
SseParser.prototype.line = function (line) {
  if (line === '') {
    if (this.data !== null) {
      this.onEvent({ event: this.event || 'message', data: this.data, id: this.lastId });
    }
    this.data = null;
    this.event = '';
    return;
  }
  if (line.charAt(0) === ':') {
    this.onComment(line.slice(1));
    return;
  }
  var colon = line.indexOf(':');
  var field = colon < 0 ? line : line.slice(0, colon);
  var value = colon < 0 ? '' : line.slice(colon + (line.charAt(colon + 1) === ' ' ? 2 : 1));
  if (this.legacy) field = field.toLowerCase();
  if (field === 'data') this.data = this.data === null ? value : this.data + '\n' + value;
  else if (field === 'event') this.event = value;
  else if (field === 'id' && value.indexOf('\u0000') < 0) this.lastId = value;
  // `retry` and unknown fields are ignored.
};

/**
 * Newline-delimited JSON (`/stream?format=xhr`): each non-blank line is one JSON value
 * passed to `onObject`; the padding prelude (spaces) and blank lines are skipped; a
 * line that is not JSON goes to `onBad(line)`.
 */
function LineParser(onObject, onBad) {
  this.onObject = onObject;
  this.onBad = onBad || noop;
  this.buf = '';
}
LineParser.prototype.push = function (text) {
  var buf = this.buf + text;
  var start = 0;
  var nl;
  while ((nl = buf.indexOf('\n', start)) >= 0) {
    var line = buf.slice(start, nl);
    start = nl + 1;
    if (/^\s*$/.test(line)) continue;
    var obj = parseJson(line);
    if (obj === undefined) this.onBad(line);
    else this.onObject(obj);
  }
  this.buf = buf.slice(start);
  // Padding is only spaces: do not keep kilobytes of it around while waiting.
  if (/^ +$/.test(this.buf)) this.buf = '';
};

/** The boundary parameter of a multipart Content-Type, or '' if none. */
function boundaryOf(contentType) {
  var m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || '');
  return m ? m[1] || m[2] : '';
}

/**
 * multipart/x-mixed-replace body parser: parts are "--BOUNDARY CRLF headers CRLF CRLF
 * body CRLF", the stream ends with "--BOUNDARY--". `onPart(body, headers)` receives the
 * body text and the part headers (lower-cased names). A part is complete when the next
 * delimiter is seen.
 */
function MultipartParser(boundary, onPart, onEnd) {
  this.delim = '--' + boundary;
  this.onPart = onPart;
  this.onEnd = onEnd || noop;
  this.buf = '';
  this.started = false;
  this.ended = false;
}
MultipartParser.prototype.push = function (text) {
  if (this.ended) return;
  this.buf += text;
  for (;;) {
    if (!this.started) {
      var first = this.buf.indexOf(this.delim);
      if (first < 0) return;
      this.buf = this.buf.slice(first);
      this.started = true;
    }
    // The buffer starts with a delimiter line: "--B\r\n" (a part follows) or "--B--".
    var after = this.buf.slice(this.delim.length, this.delim.length + 2);
    if (after === '--') {
      this.ended = true;
      this.buf = '';
      this.onEnd();
      return;
    }
    if (after.length < 2) return;
    var next = this.buf.indexOf('\r\n' + this.delim, this.delim.length);
    if (next < 0) return;
    var part = this.buf.slice(this.delim.length, next).replace(/^[ \t]*\r?\n/, '');
    this.buf = this.buf.slice(next + 2);
    var headEnd = part.indexOf('\r\n\r\n');
    var head = headEnd < 0 ? '' : part.slice(0, headEnd);
    var body = headEnd < 0 ? part : part.slice(headEnd + 4);
    var headers = {};
    var lines = head ? head.split('\r\n') : [];
    for (var i = 0; i < lines.length; i++) {
      var c = lines[i].indexOf(':');
      if (c > 0) headers[lines[i].slice(0, c).toLowerCase()] = lines[i].slice(c + 1).replace(/^\s+|\s+$/g, '');
    }
    this.onPart(body, headers);
  }
};

var CALLBACK_RE = /^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$/;

/** The protocol's callback rule: a dotted JavaScript identifier of at most 64 bytes. */
function validCallback(name) {
  return typeof name === 'string' && name.length <= 64 && CALLBACK_RE.test(name);
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\\/]/g, '\\$&');
}

/**
 * The objects of a forever-iframe / htmlfile body read as text: every
 * `<script>parent.CB(OBJECT);</script>` call, in order. The browser runs these
 * scripts itself; this reader serves diagnostics (an iframe that loaded without
 * calling back) and tests. `cb` is the name given as `cb=`.
 */
function parseScriptCalls(html, cb) {
  var re = new RegExp('<script>parent\\.' + escapeRe(cb) + '\\(([\\s\\S]*?)\\);</script>', 'g');
  var out = [];
  var m;
  while ((m = re.exec(html)) !== null) {
    var obj = parseJson(m[1]);
    if (obj !== undefined) out.push(obj);
  }
  return out;
}

/** The argument of a JSONP answer `/**\/NAME({...});`, or undefined. */
function parseJsonp(text, cb) {
  var re = new RegExp('^\\s*(?:\\/\\*\\*\\/)?\\s*' + escapeRe(cb) + '\\(([\\s\\S]*)\\);?\\s*$');
  var m = re.exec(text);
  return m ? parseJson(m[1]) : undefined;
}

/**
 * What a server object is: 'msg' (an envelope), 'reset', 'open', 'hb', 'reconnect',
 * 'cursor', 'subscribed', 'unsubscribed', 'pong', 'error', 'auth-expired' (the
 * credentials expire: refresh them), 'auth' (a refresh accepted), 'members', 'join',
 * 'leave' (presence notices), or 'unknown'.
 */
function classify(obj) {
  if (!obj || typeof obj !== 'object') return 'unknown';
  if (obj.type === undefined) return typeof obj.ch === 'string' && 'data' in obj ? 'msg' : 'unknown';
  switch (obj.type) {
    case 'reset':
    case 'open':
    case 'hb':
    case 'reconnect':
    case 'cursor':
    case 'subscribed':
    case 'unsubscribed':
    case 'pong':
    case 'error':
    case 'auth-expired':
    case 'auth':
      return obj.type;
    case 'members':
    case 'join':
    case 'leave':
      return typeof obj.ch === 'string' ? obj.type : 'unknown';
    default:
      return 'unknown';
  }
}

// ===== src/presence.js =====
// ---------------------------------------------------------------------------------
// presence.js: who is in a presence channel (docs/protocol.md, "Presence"), kept from
// the sidecar's notices: a `members` list when a subscription starts (streams) or in
// every poll answer (polling has no session, so lists are compared), then `join` and
// `leave` notices. Pure: no DOM, no network.

function presenceMember(m) {
  if (!m || typeof m !== 'object' || typeof m.id !== 'string') return null;
  return { id: m.id, info: m.info && typeof m.info === 'object' ? m.info : {} };
}

function memberIndex(list, id) {
  for (var i = 0; i < list.length; i++) if (list[i].id === id) return i;
  return -1;
}

/** The members of one channel as one tab (or the leader) knows them. */
function PresenceList() {
  this.list = []; // {id, info}, in the order they became known
  this.known = false; // a full list arrived
}

/**
 * Applies a `members`, `join` or `leave` notice. Returns the changes to report:
 * {members: list | undefined (the first full list), joined: [member], left: [member]}.
 * A list after the first one (a reconnect, every poll answer) is compared with what is
 * known: who is missing left, who is new joined. A `join` of a known member updates
 * its info without a change; a `leave` of an unknown one is ignored.
 */
PresenceList.prototype.apply = function (o) {
  var out = { members: undefined, joined: [], left: [] };
  var i;
  var m;
  if (o.type === 'members') {
    var next = [];
    var given = o.members && o.members.length !== undefined ? o.members : [];
    for (i = 0; i < given.length; i++) {
      m = presenceMember(given[i]);
      if (m && memberIndex(next, m.id) < 0) next.push(m);
    }
    if (this.known) {
      for (i = 0; i < this.list.length; i++) if (memberIndex(next, this.list[i].id) < 0) out.left.push(this.list[i]);
      for (i = 0; i < next.length; i++) if (memberIndex(this.list, next[i].id) < 0) out.joined.push(next[i]);
    } else {
      // Joins heard before the first list (a poll's `messages` come before its list)
      // were reported already; the rest of the list is the initial state.
      out.members = next.slice();
    }
    this.list = next;
    this.known = true;
    return out;
  }
  m = presenceMember(o.member);
  if (!m) return out;
  i = memberIndex(this.list, m.id);
  if (o.type === 'join') {
    if (i < 0) {
      this.list.push(m);
      out.joined.push(m);
    } else this.list[i] = m;
  } else if (o.type === 'leave' && i >= 0) {
    out.left.push(this.list[i]);
    this.list.splice(i, 1);
  }
  return out;
};

/** A copy of the members: [{id, info}]. */
PresenceList.prototype.members = function () {
  return this.list.slice();
};

/** The notice that gives this list to another tab. */
PresenceList.prototype.notice = function (ch) {
  return { type: 'members', ch: ch, members: this.list.slice() };
};

// ===== src/transports.js =====
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

// ===== src/session.js =====
// ---------------------------------------------------------------------------------
// session.js: the Driver holds the sidecar connection: it walks the transport ladder
// (open timeout per transport, fallback, remembered choice), watches for stalls,
// reconnects with jittered exponential backoff and keeps the transport cursor `tcur`
// (per channel: the last message received), so every reconnect or transport change
// resumes where the previous one stopped. Messages leave it deduplicated and in order.
//
// It also presents the `token` (resolved before every connection, refreshed at the
// server's auth-expired notice) and keeps the channels the sidecar refused out of
// what it asks for, until they get another chance (see refuse()).
//
// hooks: channels() → wanted channels; deliver(obj) for envelopes, reset and presence
// notices (a poll answer's members lists become `members` notices);
// head(ch, position) when the server tells where a channel starts; state({state,
// transport}); error(err) (a refused channel: err.channel, err.status, err.code);
// auth(notice) for auth-expired / auth notices (optional); log(...).

var GAP_RESYNC_LIMIT = 3; // gap-triggered resyncs per channel within GAP_WINDOW_MS...
var GAP_WINDOW_MS = 10000; // ...after which a gap is accepted (and reported)
var STABLE_MS = 5000; // a session open this long resets the backoff
var UNAVAILABLE_RETRY_MS = 3000; // a channel the sidecar cannot read now (503) is asked again

function Driver(base, options, hooks) {
  this.base = base;
  this.options = options;
  this.hooks = hooks;
  this.tcur = {};
  this.order = usableTransports(options.transports);
  this.index = 0;
  this.current = null;
  this.currentName = '';
  this.openedAt = 0;
  this.failures = 0;
  this.state = 'idle';
  this.stopped = false;
  this.openTimer = new Timer();
  this.stallTimer = new Timer();
  this.retryTimer = new Timer();
  this.restartTimer = new Timer();
  this.gaps = {};
  this.presence = {}; // ch → PresenceList: what new tabs are told when they subscribe
  this.wanted = [];
  this.worked = {}; // transports that opened in this Driver's life
  this.secondChance = false;
  this.token = ''; // the token presented ('' none)
  this.tokenProven = false; // a connection was accepted with it
  this.nextToken = null; // {value}: fetched already, for the next connection
  this.resolving = 0; // the token fetch a connection waits for (0: none)
  this.tokenSeq = 0;
  this.refused = {}; // ch → {code, at}: refused by the sidecar, left out of `wanted`
  this.refreshTimer = new Timer();
  this.refreshFailures = 0;
  this.authRetryTimer = new Timer();
  var remembered = this.remembered();
  if (remembered && indexOf(this.order, remembered) >= 0) this.index = indexOf(this.order, remembered);
}

/** The names in `list` this environment can run (unknown names are dropped). */
function usableTransports(list) {
  var out = [];
  for (var i = 0; i < list.length; i++) {
    var t = TRANSPORTS[list[i]];
    if (t && t.available() && indexOf(out, list[i]) < 0) out.push(list[i]);
  }
  return out;
}

Driver.prototype.storageKey = function () {
  return 'comet.transport ' + this.base + ' ' + this.order.join(',');
};
Driver.prototype.remembered = function () {
  if (!this.options.rememberTransport) return null;
  try {
    return G.sessionStorage ? G.sessionStorage.getItem(this.storageKey()) : null;
  } catch (e) {
    return null;
  }
};
Driver.prototype.remember = function (name) {
  if (!this.options.rememberTransport) return;
  try {
    if (G.sessionStorage) G.sessionStorage.setItem(this.storageKey(), name);
  } catch (e) {}
};

Driver.prototype.setState = function (state) {
  var name = state === 'open' || state === 'connecting' ? this.currentName : '';
  if (this.state === state && this.reportedTransport === name) return;
  this.state = state;
  this.reportedTransport = name;
  this.hooks.state({ state: state, transport: name });
};

/**
 * `wanted` := the channels asked for minus the refused ones. A channel nobody asks
 * for any more forgets its position and its refusal: subscribing again later starts
 * a new subscription (at the head).
 */
Driver.prototype.refreshWanted = function () {
  var asked = this.hooks.channels();
  var want = {};
  var out = [];
  var ch;
  for (var i = 0; i < asked.length; i++) {
    want[asked[i]] = true;
    if (!this.refused[asked[i]]) out.push(asked[i]);
  }
  for (ch in this.tcur) if (hasOwn.call(this.tcur, ch) && !want[ch]) delete this.tcur[ch];
  for (ch in this.refused) if (hasOwn.call(this.refused, ch) && !want[ch]) delete this.refused[ch];
  for (ch in this.presence) if (hasOwn.call(this.presence, ch) && !want[ch]) delete this.presence[ch];
  this.wanted = out.sort();
};

/** (Re)reads the wanted channels and starts, adjusts or stops the transport. */
Driver.prototype.start = function () {
  if (this.stopped) return;
  this.refreshWanted();
  if (this.order.length === 0) {
    this.hooks.error(new Error('no usable transport among ' + this.options.transports.join(', ')));
    this.setState('closed');
    return;
  }
  if (this.wanted.length === 0) {
    this.teardown();
    this.retryTimer.clear();
    this.setState('idle');
    return;
  }
  if (!this.current && !this.retryTimer.pending() && !this.resolving) this.connect();
};

/** The channel set changed (subscribe/unsubscribe here or in another tab). */
Driver.prototype.channelsChanged = function () {
  if (this.stopped) return;
  var before = this.wanted.join(',');
  this.refreshWanted();
  if (this.wanted.join(',') === before) return;
  if (this.wanted.length === 0 || !this.current) return this.start();
  if (this.openedAt && this.current.update()) return;
  this.restart('channels changed');
};

/**
 * A tab needs `ch` from `position` (a takeover, a gap it saw, a `since` option):
 * move the cursor back when it is behind ours, and restart the transport from it.
 */
Driver.prototype.rewind = function (ch, position) {
  var held = this.tcur[ch];
  if (!held) {
    this.tcur[ch] = position;
    if (this.current && indexOf(this.wanted, ch) >= 0) this.restart('rewind ' + ch);
    return;
  }
  if (!isBehind(position, held)) return;
  this.hooks.log('rewind', ch, formatPosition(held), '->', formatPosition(position));
  this.tcur[ch] = position;
  this.restart('rewind ' + ch);
};

Driver.prototype.position = function (ch) {
  return this.tcur[ch] || null;
};

/** The members notice for `ch` as this Driver knows the channel, or null. */
Driver.prototype.membersNotice = function (ch) {
  var p = this.presence[ch];
  return p && p.known ? p.notice(ch) : null;
};

/** Restarts the current transport at once from the cursor (coalesced per turn). */
Driver.prototype.restart = function (why) {
  var self = this;
  if (this.restartTimer.pending()) return;
  this.restartTimer.set(0, function () {
    if (self.stopped || !self.current) return;
    self.hooks.log('restart', self.currentName, why);
    self.teardown();
    self.connect(true);
  });
};

Driver.prototype.openTimeout = function (name) {
  var o = this.options.timeouts.open;
  if (typeof o === 'number') return o;
  return (o && (o[name] || o['default'])) || DEFAULT_OPTIONS.timeouts.open;
};

/**
 * Starts transport order[index] once the token is known (a function token is called
 * for every connection); `planned` (a restart we chose) keeps the state.
 */
Driver.prototype.connect = function (planned) {
  if (this.stopped) return;
  this.retryTimer.clear();
  this.restartTimer.clear();
  var self = this;
  var name = this.order[this.index];
  this.currentName = name;
  this.openedAt = 0;
  if (!planned || this.state !== 'open') this.setState(this.everOpened ? 'reconnecting' : 'connecting');
  var seq = (this.resolving = ++this.tokenSeq);
  var ready = function (err, token) {
    if (self.stopped || self.resolving !== seq) return;
    self.resolving = 0;
    if (err) {
      // No token (the app's endpoint is down, the user logged out...): say so and
      // try again with the reconnect backoff.
      self.hooks.error(err);
      return self.retry();
    }
    self.useToken(token);
    // A fresh token may cover the channels that ended with auth-expired. (No loop: a
    // token the sidecar does not take is refused as forbidden, which only the app or
    // authRetry undoes.)
    if (typeof self.options.token === 'function') self.unrefuse(endedByExpiry);
    self.open(name);
  };
  var next = this.nextToken;
  this.nextToken = null;
  if (next) ready(null, next.value);
  else resolveToken(this.options.token, this.openTimeout(name), ready);
};

Driver.prototype.useToken = function (token) {
  if (token === this.token) return;
  this.token = token;
  this.tokenProven = false;
};

/** Creates and starts transport `name` for the wanted channels, with `this.token`. */
Driver.prototype.open = function (name) {
  var self = this;
  var t = null;
  this.refreshWanted();
  if (!this.wanted.length) return this.start();
  var ctx = {
    options: this.options,
    url: function (path, params) {
      if (self.token) params = extend(params, { token: self.token });
      return buildUrl(self.base, path, params);
    },
    channels: function () {
      return self.wanted;
    },
    cursor: function () {
      return formatCursor(self.tcur, self.wanted);
    },
    position: function (ch) {
      return self.tcur[ch] || null;
    },
    log: function () {
      self.hooks.log.apply(null, [name].concat(Array.prototype.slice.call(arguments)));
    },
    opened: function () {
      if (self.current === t) self.onOpened(name);
    },
    alive: function () {
      if (self.current === t) self.onAlive();
    },
    object: function (obj) {
      return self.current === t && self.handle(obj);
    },
    batch: function (list, cursor, members) {
      if (self.current !== t) return false;
      for (var i = 0; i < list.length; i++) if (!self.handle(list[i])) return false;
      // After the messages: the lists are as of the answer, joins and leaves included.
      if (members && typeof members === 'object') {
        for (var ch in members) if (hasOwn.call(members, ch)) self.handle({ type: 'members', ch: ch, members: members[ch] });
      }
      // A restart asked for meanwhile (a tab saw a gap and rewound) resumes from the
      // rewound position: the answer's cursor must not move past it again.
      if (cursor && !self.restartTimer.pending()) self.learn(parseCursor(cursor));
      return self.current === t;
    },
    closed: function (err, graceful) {
      if (self.current === t) self.onClosed(err, graceful);
    }
  };
  this.hooks.log('connect', name, formatCursor(this.tcur, this.wanted) || '(head)');
  t = this.current = TRANSPORTS[name].create(ctx);
  this.openTimer.set(this.openTimeout(name), function () {
    if (self.current !== t || self.openedAt) return;
    self.teardown();
    self.onFailed(name, new Error(name + ': nothing within ' + self.openTimeout(name) + ' ms (blocked or buffered)'));
  });
  t.start();
};

Driver.prototype.onOpened = function (name) {
  if (this.openedAt) return;
  this.openTimer.clear();
  this.openedAt = now();
  this.everOpened = true;
  this.tokenProven = true;
  this.worked[name] = true;
  this.secondChance = false;
  this.remember(name);
  this.hooks.log('open', name);
  this.setState('open');
  this.onAlive();
};

Driver.prototype.onAlive = function () {
  if (!this.openedAt || TRANSPORTS[this.currentName].stallDetection === false) return;
  var self = this;
  var t = this.current;
  var ms = this.options.timeouts.stall;
  this.stallTimer.set(ms, function () {
    if (self.current !== t) return;
    self.hooks.log('stall', self.currentName);
    self.onClosed(new Error(self.currentName + ': no heartbeat for ' + ms + ' ms'), false);
  });
};

/** Stops the current transport (no callbacks from it afterwards). */
Driver.prototype.teardown = function () {
  var t = this.current;
  this.current = null;
  this.openTimer.clear();
  this.stallTimer.clear();
  this.restartTimer.clear();
  this.refreshTimer.clear();
  this.resolving = 0;
  if (t) t.stop();
};

Driver.prototype.onClosed = function (err, graceful) {
  var name = this.currentName;
  var openedAt = this.openedAt;
  this.teardown();
  if (this.stopped) return;
  if (graceful) {
    // The server ended the response on purpose (byte budget): carry on at once.
    this.hooks.log('reconnect', name);
    this.connect(true);
    return;
  }
  if (err && err.channel) return this.onRefusedRequest(err);
  if (!openedAt) return this.onFailed(name, err);
  if (now() - openedAt >= STABLE_MS) this.failures = 0;
  this.hooks.log('closed', name, err && err.message);
  this.hooks.error(err);
  this.retry();
};

/**
 * `name` did not open. If the sidecar answers a plain request, the transport is what
 * fails (refused, blocked, buffered by a proxy): step down the ladder at once. If not,
 * the sidecar is down: keep the transport and retry with backoff.
 */
Driver.prototype.onFailed = function (name, err) {
  var self = this;
  this.hooks.log('failed', name, err && err.message);
  err.transport = name;
  this.hooks.error(err);
  this.setState(this.everOpened ? 'reconnecting' : 'connecting');
  var generation = (this.probeGeneration = (this.probeGeneration || 0) + 1);
  probe(this.base, Math.min(5000, this.openTimeout(name)), function (reachable) {
    if (self.stopped || self.current || generation !== self.probeGeneration) return;
    if (!reachable) {
      self.hooks.log('sidecar unreachable; retrying', name);
      return self.retry();
    }
    if (self.worked[name] && !self.secondChance) {
      // It worked before: the failure may date from a moment the sidecar was away
      // (restarting) and it answers again now. One more try before giving it up.
      self.secondChance = true;
      self.hooks.log('sidecar reachable; trying', name, 'again');
      return self.connect();
    }
    self.index += 1;
    if (self.index < self.order.length) {
      self.hooks.log('falling back to', self.order[self.index]);
      return self.connect();
    }
    // Every transport failed: start the ladder again, after a pause.
    self.index = 0;
    self.retry();
  });
};

/**
 * The sidecar refused a request over a private channel (HTTP 401/403 naming it;
 * nothing of any channel was sent). A function token accepted until now has probably
 * expired (long-poll gets no expiry notice): one more try with a fresh one. Otherwise
 * the channel is refused, and the other channels go on at once on the same transport:
 * a refusal says nothing about the transport, so the ladder is not walked down.
 */
Driver.prototype.onRefusedRequest = function (err) {
  if (indexOf(this.wanted, err.channel) < 0) {
    // Not one we asked for: leaving it out would change nothing. A plain failure.
    this.hooks.error(err);
    return this.retry();
  }
  if (typeof this.options.token === 'function' && this.tokenProven) {
    this.hooks.log('refused', err.channel, 'with a token that worked: fetching a fresh one');
    this.tokenProven = false;
    return this.connect(true);
  }
  this.refuse(err);
  this.start();
};

/**
 * Reports a refused channel (the 'error' event names it) and leaves it out of what is
 * asked for until it gets another chance: a token refresh that follows an
 * auth-expired refusal, reauthorize() by the app, or authRetry ms later. Never at
 * once: a refusal does not repeat in a loop.
 */
Driver.prototype.refuse = function (err) {
  this.refused[err.channel] = { code: err.code || '', at: now() };
  this.hooks.log('refused', err.channel, err.code || '', err.message);
  this.hooks.error(err);
  this.scheduleAuthRetry();
};

function endedByExpiry(refusal) {
  return refusal.code === 'auth-expired';
}

/** Forgets the refusals `retry` selects (true: all; or a function (refusal, ch)). */
Driver.prototype.unrefuse = function (retry) {
  var any = false;
  if (!retry) return false;
  for (var ch in this.refused) {
    if (hasOwn.call(this.refused, ch) && (retry === true || retry(this.refused[ch], ch))) {
      delete this.refused[ch];
      any = true;
    }
  }
  if (any) this.scheduleAuthRetry();
  return any;
};

/** Refused channels get another chance `authRetry` ms after their refusal (0: never by itself). */
Driver.prototype.scheduleAuthRetry = function () {
  var self = this;
  var ms = this.options.authRetry;
  var first = -1;
  for (var ch in this.refused) {
    if (hasOwn.call(this.refused, ch) && (first < 0 || this.refused[ch].at < first)) first = this.refused[ch].at;
  }
  if (!(ms > 0) || first < 0) return this.authRetryTimer.clear();
  this.authRetryTimer.set(Math.max(0, first + ms - now()), function () {
    var t = now();
    var due = function (r) {
      return t - r.at >= ms;
    };
    if (self.unrefuse(due)) self.refresh(null, false);
    else self.scheduleAuthRetry();
  });
};

/**
 * Presents fresh credentials (the server's auth-expired notice, reauthorize(),
 * authRetry): a function token is called again; WebSocket sends {"cmd":"auth"} (with
 * the token if there is one) and subscribes in place, from their cursor, the refused
 * channels `retry` gives another chance; a stream reconnects from its cursor with the
 * new token. A string token cannot be refreshed (`force`: the app just gave a new one).
 */
Driver.prototype.refresh = function (retry, force) {
  var self = this;
  var t = this.current;
  var option = this.options.token;
  if (!t || !this.openedAt || (!force && option && typeof option !== 'function')) {
    // No open connection (the next one fetches the token anyway), or nothing new to
    // present: only the channels given another chance are asked for again.
    this.unrefuse(retry);
    if (force && t) return this.restart('new credentials');
    return this.channelsChanged();
  }
  this.refreshTimer.clear();
  resolveToken(option, this.openTimeout(this.currentName), function (err, token) {
    if (self.current !== t || self.stopped) return; // a new connection fetched its own
    if (err) {
      // Keep the connection (it works until the grace period ends) and try again.
      self.hooks.error(err);
      self.refreshTimer.set(backoffDelay(self.refreshFailures++, self.options.backoff), function () {
        self.refresh(retry, force);
      });
      return;
    }
    self.refreshFailures = 0;
    self.unrefuse(retry);
    if (t.reauth && t.reauth(token)) {
      self.useToken(token);
      return self.channelsChanged();
    }
    self.nextToken = { value: token };
    self.restart('fresh credentials');
  });
};

/**
 * The app presents new credentials (Connection.reauthorize): the refused channels
 * (all, or those in `channels`) get another chance and the token is presented again.
 */
Driver.prototype.reauthorize = function (channels) {
  if (this.stopped) return;
  var only = null;
  if (channels) {
    only = {};
    for (var i = 0; i < channels.length; i++) only[channels[i]] = true;
  }
  var any = this.unrefuse(
    only
      ? function (r, ch) {
          return !!only[ch];
        }
      : true
  );
  if (only && !any) return;
  if (this.current) return this.refresh(null, true);
  if (this.resolving) return this.connect(true); // not with what the old token option gives
  // Waiting for the next attempt, or idle (everything was refused): go now.
  this.retryTimer.clear();
  this.start();
};

Driver.prototype.retry = function () {
  var self = this;
  var delay = backoffDelay(this.failures, this.options.backoff);
  this.failures += 1;
  this.setState(this.everOpened ? 'reconnecting' : 'connecting');
  this.hooks.log('retry in', delay, 'ms with', this.order[this.index]);
  this.retryTimer.set(delay, function () {
    self.connect();
  });
};

/** Positions the server announced (open/reconnect/poll cursors, subscribed notices). */
Driver.prototype.learn = function (positions) {
  for (var ch in positions) {
    if (!hasOwn.call(positions, ch) || indexOf(this.wanted, ch) < 0) continue;
    var known = !!this.tcur[ch];
    this.tcur[ch] = mergeServerPosition(this.tcur[ch], positions[ch]);
    if (!known) this.hooks.head(ch, this.tcur[ch]);
  }
};

/** One server object; false when it made the transport restart (stop reading it). */
Driver.prototype.handle = function (obj) {
  switch (classify(obj)) {
    case 'open':
    case 'reconnect':
    case 'cursor': // a channel still syncing with Redis at `open` got its position
      this.learn(parseCursor(obj.cursor));
      return true;
    case 'subscribed':
      var p = {};
      p[obj.ch] = makePosition(obj.epoch, obj.id);
      this.learn(p);
      return true;
    case 'error':
      if (typeof obj.ch === 'string') return this.onChannelError(obj);
      this.hooks.error(new Error('sidecar: ' + obj.error));
      return true;
    case 'auth-expired':
      // The credentials expire in `grace` s: present fresh ones (channels already
      // ended by an auth-expired error are subscribed again with them).
      if (this.hooks.auth) this.hooks.auth(obj);
      this.refresh(endedByExpiry, false);
      return true;
    case 'auth':
      this.tokenProven = true;
      if (this.hooks.auth) this.hooks.auth(obj);
      return true;
    case 'reset':
      if (indexOf(this.wanted, obj.ch) < 0) return true;
      // Normally ahead of the cursor we sent; never move back (a stale notice).
      this.tcur[obj.ch] = applyReset(this.tcur[obj.ch], obj).position;
      this.hooks.deliver(obj);
      return true;
    case 'msg':
      return this.message(obj);
    case 'members':
    case 'join':
    case 'leave':
      if (indexOf(this.wanted, obj.ch) < 0) return true;
      (this.presence[obj.ch] || (this.presence[obj.ch] = new PresenceList())).apply(obj);
      this.hooks.deliver(obj);
      return true;
    default:
      return true; // hb, pong, unsubscribed, unknown
  }
};

/**
 * A WebSocket channel refused or ended ({"type":"error","error":"forbidden" |
 * "unauthorized" | "auth-expired","ch":…}): the socket and the other channels go on.
 */
Driver.prototype.onChannelError = function (obj) {
  var err = new Error(obj.message || obj.error + ': ' + obj.ch);
  err.channel = obj.ch;
  err.code = obj.error;
  if (obj.status) err.status = obj.status;
  if (indexOf(this.wanted, obj.ch) < 0) {
    this.hooks.log('error for a channel not asked for', obj.ch, obj.error);
    return true;
  }
  if (obj.status === 503) {
    // Not a refusal: the sidecar cannot read the channel now (its Redis is away). Keep
    // it wanted and ask for it again a little later, on the same socket.
    this.hooks.error(err);
    this.resubscribeLater();
    return true;
  }
  this.refuse(err);
  this.channelsChanged();
  return true;
};

/** Asks the open transport again for the channels it lacks, after a pause. */
Driver.prototype.resubscribeLater = function () {
  var self = this;
  if (this.resubscribeTimer) return;
  this.resubscribeTimer = setTimeout(function () {
    self.resubscribeTimer = null;
    if (!self.stopped && self.current && self.openedAt) self.current.update();
  }, UNAVAILABLE_RETRY_MS);
};

Driver.prototype.message = function (m) {
  if (indexOf(this.wanted, m.ch) < 0) return true; // in flight after an unsubscribe
  var verdict = judge(this.tcur[m.ch], m);
  if (verdict === 'duplicate') return true;
  if (verdict === 'gap') {
    if (this.gapResync(m.ch)) {
      this.hooks.log('gap in', m.ch, 'at', m.id, 'after', formatPosition(this.tcur[m.ch]), ': resync');
      this.restart('gap in ' + m.ch);
      return false;
    }
    this.hooks.error(new Error('messages of ' + m.ch + ' after ' + formatPosition(this.tcur[m.ch]) + ' are missing'));
  }
  if (verdict !== 'bare') this.tcur[m.ch] = makePosition(m.epoch, m.id);
  this.hooks.deliver(m);
  return true;
};

/** Whether a gap in `ch` may still be repaired by a resync (bounded per window). */
Driver.prototype.gapResync = function (ch) {
  var t = now();
  var g = this.gaps[ch];
  if (!g || t - g.since > GAP_WINDOW_MS) g = this.gaps[ch] = { since: t, count: 0 };
  g.count += 1;
  return g.count <= GAP_RESYNC_LIMIT;
};

Driver.prototype.stop = function () {
  this.stopped = true;
  this.teardown();
  this.retryTimer.clear();
  this.authRetryTimer.clear();
  clearTimeout(this.resubscribeTimer);
  this.resubscribeTimer = null;
  this.setState('closed');
};

/**
 * The token to present: the `token` option itself, or what the function returns (a
 * string or a Promise of one; '' / null / undefined for none). cb(err, token) once;
 * a throw, a rejection, a non-string or no answer within `timeoutMs` is an error.
 */
function resolveToken(option, timeoutMs, cb) {
  if (typeof option !== 'function') return cb(null, option ? String(option) : '');
  var done = false;
  var timer = new Timer();
  function finish(err, value) {
    if (done) return;
    done = true;
    timer.clear();
    if (!err && value !== undefined && value !== null && typeof value !== 'string') err = new Error('not a string but ' + typeof value);
    if (err) cb(tokenError(err), '');
    else cb(null, value || '');
  }
  var v;
  try {
    v = option();
  } catch (e) {
    return finish(e || new Error('threw'));
  }
  if (!v || typeof v.then !== 'function') return finish(null, v);
  timer.set(timeoutMs, function () {
    finish(new Error('no answer within ' + timeoutMs + ' ms'));
  });
  v.then(
    function (token) {
      finish(null, token);
    },
    function (e) {
      finish(e || new Error('rejected'));
    }
  );
}

function tokenError(cause) {
  var e = new Error('comet: the token function failed: ' + (cause && cause.message ? cause.message : String(cause)));
  e.code = 'token';
  e.cause = cause;
  return e;
}

/**
 * Whether the sidecar answers at all: a no-cors fetch of /healthz resolves (opaque
 * answer) when a server answered, rejects on a network error. cb(true|false).
 * Without fetch: assume reachable (fall back rather than wait).
 */
function probe(base, timeoutMs, cb) {
  if (!G.fetch) return setTimeout(function () {
    cb(true);
  }, 0);
  var done = false;
  var timer = setTimeout(function () {
    finish(false);
  }, timeoutMs);
  function finish(ok) {
    if (done) return;
    done = true;
    clearTimeout(timer);
    cb(ok);
  }
  try {
    G.fetch(base + '/healthz', { mode: 'no-cors', cache: 'no-store', credentials: 'omit' }).then(
      function () {
        finish(true);
      },
      function () {
        finish(false);
      }
    );
  } catch (e) {
    finish(true);
  }
}

// ===== src/tabs.js =====
// ---------------------------------------------------------------------------------
// tabs.js: one sidecar connection for all tabs of an origin. Tabs elect a leader
// (Web Locks where available: the browser hands the lock to the next tab the moment
// the holder closes or crashes; else a lease in localStorage renewed on a heartbeat);
// the leader runs the Driver for the union of every tab's channels and relays what it
// receives over a BroadcastChannel (else `storage` events). Every tab keeps its own
// positions and deduplicates, so a new leader can start from the oldest position any
// tab holds and nobody loses or repeats a message.
//
// Bus messages (all carry `from`, the sender's tab id):
//   {t:'tab', chans:{ch: position|null}, rewind:[ch]}  a tab's channels (heartbeat too);
//                                    `rewind`: channels it needs from its position
//   {t:'bye'}                        a tab leaves
//   {t:'leader', state, transport}   the leader's announcement (and heartbeat)
//   {t:'m', o}                       a server object (envelope, reset or presence notice)
//   {t:'h', ch, p}                   where a channel starts (head position)
//   {t:'e', message[, channel, status, code]}  an error seen by the leader (a refusal
//                                    names its channel)
//   {t:'a', o}                       an auth notice (auth-expired, auth)
//   {t:'reauth'[, token][, channels]}  a tab asks the leader to present credentials again

/** BroadcastChannel, else localStorage `storage` events; null when neither works. */
function Bus(name, onMessage) {
  var self = this;
  this.closed = false;
  if (G.BroadcastChannel) {
    this.bc = new G.BroadcastChannel(name);
    this.bc.onmessage = function (e) {
      if (!self.closed) onMessage(e.data);
    };
    return;
  }
  this.key = name;
  this.listener = function (e) {
    if (self.closed || e.key !== self.key || !e.newValue) return;
    var v = parseJson(e.newValue);
    if (v) onMessage(v.m);
  };
  G.addEventListener('storage', this.listener);
}
Bus.available = function () {
  return !!(G.BroadcastChannel || storageWorks());
};
Bus.prototype.post = function (msg) {
  if (this.closed) return;
  if (this.bc) return this.bc.postMessage(msg);
  try {
    G.localStorage.setItem(this.key, JSON.stringify({ m: msg, n: randomId() }));
    G.localStorage.removeItem(this.key);
  } catch (e) {}
};
Bus.prototype.close = function () {
  this.closed = true;
  if (this.bc) this.bc.close();
  if (this.listener) G.removeEventListener('storage', this.listener);
};

function storageWorks() {
  try {
    var k = '__comet_probe';
    G.localStorage.setItem(k, '1');
    G.localStorage.removeItem(k);
    return !!G.addEventListener;
  } catch (e) {
    return false;
  }
}

function locksAvailable() {
  return !!(G.navigator && G.navigator.locks && G.navigator.locks.request);
}

/**
 * Leader election. `onElected()` when this tab becomes leader; `onDeposed()` if a
 * lease-based leader finds another tab holds the lease (only without Web Locks).
 */
function Election(name, id, heartbeatMs, onElected, onDeposed) {
  this.name = name;
  this.id = id;
  this.hb = heartbeatMs;
  this.onElected = onElected;
  this.onDeposed = onDeposed;
  this.leader = false;
  this.stopped = false;
  this.release = null;
  this.abort = null;
}
Election.prototype.start = function () {
  var self = this;
  if (locksAvailable()) {
    var opts = { mode: 'exclusive' };
    if (G.AbortController) {
      this.abort = new G.AbortController();
      opts.signal = this.abort.signal;
    }
    G.navigator.locks
      .request(this.name, opts, function () {
        if (self.stopped) return null;
        return new Promise(function (resolve) {
          self.release = resolve;
          self.leader = true;
          self.onElected();
        });
      })
      ['catch'](noop); // aborted while waiting
    return;
  }
  this.leaseKey = this.name + ' lease';
  this.timer = setInterval(function () {
    self.tick();
  }, this.hb);
  this.onStorage = function (e) {
    if (e.key === self.leaseKey && !e.newValue) self.tick();
  };
  G.addEventListener('storage', this.onStorage);
  this.tick();
};
Election.prototype.readLease = function () {
  try {
    return parseJson(G.localStorage.getItem(this.leaseKey) || '') || null;
  } catch (e) {
    return null;
  }
};
Election.prototype.writeLease = function () {
  try {
    G.localStorage.setItem(this.leaseKey, JSON.stringify({ id: this.id, until: now() + 3 * this.hb }));
  } catch (e) {}
};
Election.prototype.tick = function () {
  if (this.stopped) return;
  var self = this;
  var lease = this.readLease();
  if (this.leader) {
    if (lease && lease.id !== this.id && lease.until > now()) {
      this.leader = false;
      this.onDeposed();
    } else this.writeLease();
    return;
  }
  if (lease && lease.until > now()) return;
  // Claim, then confirm after a short random pause: of tabs racing for an expired
  // lease, the last writer wins and the others see it is not theirs.
  this.writeLease();
  setTimeout(function () {
    var l = self.readLease();
    if (!self.stopped && !self.leader && l && l.id === self.id) {
      self.leader = true;
      self.onElected();
    }
  }, 30 + Math.floor(Math.random() * 70));
};
Election.prototype.stop = function () {
  this.stopped = true;
  if (this.release) this.release();
  this.release = null;
  if (this.abort) this.abort.abort();
  if (this.timer) clearInterval(this.timer);
  if (this.onStorage) G.removeEventListener('storage', this.onStorage);
  if (this.leader && this.leaseKey) {
    var lease = this.readLease();
    try {
      if (lease && lease.id === this.id) G.localStorage.removeItem(this.leaseKey);
    } catch (e) {}
  }
  this.leader = false;
};

/**
 * Runs the connection's side of tab sharing (or, `shared` false, a Driver of its own).
 * `conn` (connection.js) provides: id, url, options, channels(), positions(),
 * receive(obj), head(ch, p), setState(s), emitError(err), log(...).
 */
function Coordinator(conn, shared) {
  this.conn = conn;
  this.shared = shared;
  this.isLeader = false;
  this.leaderId = null;
  this.driver = null;
  this.peers = {};
  this.bus = null;
  this.election = null;
  this.timer = null;
  this.changeTimer = new Timer();
  this.started = false;
}
Coordinator.prototype.start = function () {
  var self = this;
  var conn = this.conn;
  this.started = true;
  if (!this.shared) {
    this.changeTimer.set(0, function () {
      self.lead();
    });
    return;
  }
  var name = 'comet ' + (typeof conn.options.shareTabs === 'string' ? conn.options.shareTabs : conn.url);
  var hb = conn.options.tabHeartbeat;
  this.name = name;
  this.lastReport = now();
  if (locksAvailable()) {
    // Held for this tab's lifetime: the leader asks the browser which tabs are alive
    // (timers of background tabs are throttled, so heartbeats alone could miss them).
    this.aliveLock = tabLock(name + ' tab ' + conn.id);
  }
  this.bus = new Bus(name + ' bus', function (msg) {
    self.onBus(msg);
  });
  this.election = new Election(name + ' leader', conn.id, hb, function () {
    self.lead();
  }, function () {
    self.follow();
  });
  this.timer = setInterval(function () {
    self.heartbeat();
  }, hb);
  // Tell a leader (if any) what this tab wants, then queue for leadership.
  this.report(null);
  this.election.start();
};

/** This tab becomes the leader: a Driver for every tab's channels, from the oldest position. */
Coordinator.prototype.lead = function () {
  var self = this;
  var conn = this.conn;
  if (this.isLeader || !this.started) return;
  this.isLeader = true;
  this.leaderId = conn.id;
  conn.log('leader');
  this.driver = new Driver(conn.url, conn.options, {
    channels: function () {
      return self.channels();
    },
    deliver: function (obj) {
      if (self.bus) self.bus.post({ t: 'm', from: conn.id, o: obj });
      conn.receive(obj);
    },
    head: function (ch, p) {
      if (self.bus) self.bus.post({ t: 'h', from: conn.id, ch: ch, p: p });
      conn.head(ch, p);
    },
    state: function (s) {
      self.announce(s);
      conn.setState(s, true);
    },
    error: function (err) {
      if (self.bus) {
        var e = { t: 'e', from: conn.id, message: String(err && err.message) };
        if (err && err.channel) {
          e.channel = err.channel;
          e.status = err.status;
          e.code = err.code;
        }
        self.bus.post(e);
      }
      conn.emitError(err);
    },
    auth: function (o) {
      if (self.bus) self.bus.post({ t: 'a', from: conn.id, o: o });
      conn.emit('auth', o);
    },
    log: function () {
      conn.log.apply(null, arguments);
    }
  });
  // Start from this tab's positions; the other tabs answer the announcement with
  // theirs and the cursor moves back to the oldest (a tab still waiting for messages
  // the old leader relayed gets them again; the others drop them as duplicates).
  var mine = conn.positions();
  for (var ch in mine) if (hasOwn.call(mine, ch) && mine[ch]) this.driver.tcur[ch] = mine[ch];
  this.announce(null);
  // Give the answers a moment so the first connection already starts from the oldest
  // position (a later answer rewinds it anyway).
  this.gathering = true;
  this.changeTimer.set(this.hasPeers() ? conn.options.takeoverGather : 0, function () {
    self.gathering = false;
    if (self.driver) self.driver.start();
  });
};

/** Lost the lease to another tab (lease mode only): become a follower. */
Coordinator.prototype.follow = function () {
  if (!this.isLeader) return;
  this.conn.log('deposed');
  this.isLeader = false;
  this.leaderId = null;
  if (this.driver) this.driver.stop();
  this.driver = null;
  this.report(null);
};

Coordinator.prototype.hasPeers = function () {
  for (var id in this.peers) if (hasOwn.call(this.peers, id)) return true;
  return false;
};

/** Union of this tab's channels and every live peer's. */
Coordinator.prototype.channels = function () {
  var set = {};
  var out = [];
  var own = this.conn.channels();
  var i;
  for (i = 0; i < own.length; i++) set[own[i]] = true;
  for (var id in this.peers) {
    if (!hasOwn.call(this.peers, id)) continue;
    for (var ch in this.peers[id].chans) if (hasOwn.call(this.peers[id].chans, ch)) set[ch] = true;
  }
  for (var k in set) if (hasOwn.call(set, k)) out.push(k);
  return out;
};

Coordinator.prototype.announce = function (s) {
  if (!this.bus || !this.isLeader) return;
  var st = s || (this.driver ? { state: this.driver.state, transport: this.driver.reportedTransport || '' } : { state: 'connecting', transport: '' });
  this.bus.post({ t: 'leader', from: this.conn.id, state: st.state, transport: st.transport });
};

/** Sends this tab's channels and positions; `rewind`: channels to resume from them. */
Coordinator.prototype.report = function (rewind) {
  if (!this.bus) return;
  this.lastReport = now();
  this.bus.post({ t: 'tab', from: this.conn.id, chans: this.conn.positions(), rewind: rewind || [] });
};

/** This tab's channel set changed (coalesced per turn). */
Coordinator.prototype.changed = function () {
  var self = this;
  if (!this.started || this.changeTimer.pending()) return;
  this.changeTimer.set(0, function () {
    if (self.isLeader && self.driver) {
      if (self.driver.state === 'idle' || self.driver.state === 'closed') self.driver.start();
      else self.driver.channelsChanged();
      // Channels another tab already had: this tab starts where the connection is.
      var mine = self.conn.positions();
      for (var ch in mine) {
        if (hasOwn.call(mine, ch) && !mine[ch] && self.driver.position(ch)) self.conn.head(ch, self.driver.position(ch));
        // ...and knows who is in a presence channel another tab already had.
        var members = hasOwn.call(mine, ch) && !self.conn.knowsMembers(ch) && self.driver.membersNotice(ch);
        if (members) self.conn.receive(members);
      }
    } else self.report(null);
  });
};

/**
 * Credentials to present again (Connection.reauthorize, or a refused channel
 * subscribed again: `channels`). The leader's token option is the one used; a string
 * `token` from another tab replaces it unless it is a function.
 */
Coordinator.prototype.reauthorize = function (token, channels) {
  if (this.isLeader && this.driver) this.driver.reauthorize(channels);
  else if (this.bus) this.bus.post({ t: 'reauth', from: this.conn.id, token: token, channels: channels });
};

/** This tab needs `ch` again from its own position (it saw a gap, or `since`). */
Coordinator.prototype.rewind = function (ch, p) {
  if (this.isLeader && this.driver) this.driver.rewind(ch, p);
  else this.report([ch]);
};

Coordinator.prototype.heartbeat = function () {
  var hb = this.conn.options.tabHeartbeat;
  if (this.isLeader) {
    this.announce(null);
    this.prune();
    return;
  }
  // Timers of a background tab can be throttled to one a minute: after such a pause,
  // ask the leader to resume this tab's channels from its positions (a leader that
  // dropped this tab meanwhile would otherwise have skipped messages for it).
  var late = now() - this.lastReport > 3 * hb;
  var rewind = [];
  if (late) {
    var mine = this.conn.positions();
    for (var ch in mine) if (hasOwn.call(mine, ch) && mine[ch]) rewind.push(ch);
  }
  this.report(rewind);
  this.prune();
};

/** Forgets tabs that are gone: by their locks where available, else by silence. */
Coordinator.prototype.prune = function () {
  var self = this;
  var done = function (alive) {
    var pruned = false;
    for (var id in self.peers) {
      if (hasOwn.call(self.peers, id) && !alive(id, self.peers[id])) {
        delete self.peers[id];
        pruned = true;
      }
    }
    if (pruned && self.isLeader && self.driver) self.driver.channelsChanged();
  };
  if (this.aliveLock && G.navigator.locks.query) {
    G.navigator.locks.query().then(function (snapshot) {
      var held = {};
      var list = (snapshot && snapshot.held) || [];
      for (var i = 0; i < list.length; i++) held[list[i].name] = true;
      done(function (id, peer) {
        // A tab that just started may not hold its lock yet.
        return held[self.name + ' tab ' + id] || now() - peer.first < 5000;
      });
    }, noop);
    return;
  }
  var limit = 10 * this.conn.options.tabHeartbeat;
  var t = now();
  done(function (id, peer) {
    return t - peer.seen <= limit;
  });
};

/** Holds the exclusive lock `name` until release() (Web Locks). */
function tabLock(name) {
  var release = null;
  var released = false;
  G.navigator.locks
    .request(name, function () {
      if (released) return null;
      return new Promise(function (resolve) {
        release = resolve;
      });
    })
    ['catch'](noop);
  return {
    release: function () {
      released = true;
      if (release) release();
    }
  };
}

Coordinator.prototype.onBus = function (msg) {
  if (!msg || msg.from === this.conn.id) return;
  var conn = this.conn;
  switch (msg.t) {
    case 'tab':
      var peer = this.peers[msg.from];
      this.peers[msg.from] = { chans: msg.chans || {}, seen: now(), first: peer ? peer.first : now() };
      if (!this.isLeader || !this.driver) return;
      for (var i = 0; i < (msg.rewind || []).length; i++) {
        var ch = msg.rewind[i];
        if (msg.chans[ch]) this.driver.rewind(ch, msg.chans[ch]);
      }
      if (this.gathering) return; // the Driver starts with every answer gathered
      this.driver.channelsChanged();
      // A tab that does not know where a channel starts yet: tell it, and who is in it
      // (the stream told the members once, when the leader subscribed).
      for (var c in msg.chans) {
        if (!hasOwn.call(msg.chans, c) || msg.chans[c]) continue;
        if (this.driver.position(c)) this.bus.post({ t: 'h', from: conn.id, ch: c, p: this.driver.position(c) });
        var members = this.driver.membersNotice(c);
        if (members) this.bus.post({ t: 'm', from: conn.id, o: members });
      }
      return;
    case 'bye':
      delete this.peers[msg.from];
      if (msg.from === this.leaderId) this.leaderId = null;
      if (this.isLeader && this.driver) this.driver.channelsChanged();
      return;
    case 'leader':
      delete this.peers[msg.from]; // its channels are in its Driver
      if (this.isLeader) {
        // Two leaders (lease mode race): the lease decides at the next tick.
        if (this.election && this.election.tick) this.election.tick();
        return;
      }
      if (this.leaderId !== msg.from) {
        // A new leader: it must resume every channel from our positions at the latest.
        this.leaderId = msg.from;
        var mine = conn.positions();
        var rewind = [];
        for (var k in mine) if (hasOwn.call(mine, k) && mine[k]) rewind.push(k);
        this.report(rewind);
      }
      conn.setState({ state: msg.state, transport: msg.transport }, false);
      return;
    case 'm':
      if (!this.isLeader) conn.receive(msg.o);
      return;
    case 'h':
      if (!this.isLeader) conn.head(msg.ch, msg.p);
      return;
    case 'e':
      if (this.isLeader) return;
      var err = new Error(msg.message);
      if (msg.channel) {
        err.channel = msg.channel;
        err.status = msg.status;
        err.code = msg.code;
      }
      conn.emitError(err);
      return;
    case 'a':
      if (!this.isLeader) conn.emit('auth', msg.o);
      return;
    case 'reauth':
      if (!this.isLeader || !this.driver) return;
      if (typeof msg.token === 'string' && typeof conn.options.token !== 'function') conn.options.token = msg.token;
      this.driver.reauthorize(msg.channels || null);
      return;
  }
};

/** Leaves: stops the Driver (if leader), says bye, gives up the election. */
Coordinator.prototype.stop = function () {
  this.started = false;
  this.changeTimer.clear();
  if (this.timer) clearInterval(this.timer);
  this.timer = null;
  if (this.driver) this.driver.stop();
  this.driver = null;
  if (this.bus) {
    this.bus.post({ t: 'bye', from: this.conn.id });
    this.bus.close();
  }
  this.bus = null;
  if (this.election) this.election.stop();
  this.election = null;
  if (this.aliveLock) this.aliveLock.release();
  this.aliveLock = null;
  this.isLeader = false;
  this.leaderId = null;
  this.peers = {};
};

// ===== src/connection.js =====
// ---------------------------------------------------------------------------------
// connection.js: the public API. Comet.connect(url, options) → Connection.

var DEFAULT_OPTIONS = {
  // Credentials for private channels, sent as `token=` on every request and the
  // WebSocket handshake: a string, or a function returning one (or a Promise of one),
  // called before every connection and when the server says auth-expired.
  token: '',
  authRetry: 60000, // ms after which a refused channel is tried again (0: only on reauthorize())
  transports: DEFAULT_TRANSPORTS, // the order to try; one name forces that transport
  timeouts: {
    open: 8000, // ms for a transport to prove itself (a number, or {name: ms, default: ms})
    stall: 45000, // ms without any byte (heartbeats included) before reconnecting
    poll: 40000, // ms a long-poll request may be held (sidecar: --poll-timeout, 30 s)
    ping: 15000 // ms between WebSocket pings (the pong proves the socket alive)
  },
  pollInterval: 2000, // ms between requests of the 'poll' transport
  backoff: DEFAULT_BACKOFF, // {min, max, factor, jitter}
  withCredentials: false, // cookies on cross-origin requests (cookie / --auth-url flow; the page's origin must be listed in --allowed-origins)
  shareTabs: true, // one connection for all tabs of this origin (leader tab relays)
  tabHeartbeat: 2000, // ms between tab-sharing heartbeats
  takeoverGather: 100, // ms a new leader waits for other tabs' positions
  rememberTransport: true, // start at the transport that worked last (sessionStorage)
  debug: false // true: console.debug; or a function(...args)
};

var GAP_PATIENCE = 1000;

function mergeOptions(options) {
  var o = extend(DEFAULT_OPTIONS, options);
  o.timeouts = extend(DEFAULT_OPTIONS.timeouts, options && options.timeouts);
  o.backoff = extend(DEFAULT_BACKOFF, options && options.backoff);
  if (typeof o.transports === 'string') o.transports = o.transports.split(/[\s,]+/);
  return o;
}

/**
 * A connection to the sidecar at `url` (e.g. "https://push.example.com" or "/comet"
 * behind the same origin). Events (on(name, fn)):
 *   'state'      {state: 'idle'|'connecting'|'open'|'reconnecting'|'closed', transport, leader}
 *   'error'      Error (transport failures, fallbacks, handler exceptions): informative;
 *                a refused private channel has err.channel, err.status (401/403),
 *                err.code ('unauthorized'|'forbidden'|'auth-expired'|'token')
 *   'auth'       the server's {type:'auth-expired', grace} or {type:'auth', exp, sub}
 *   'reset'      a reset notice {ch, reason, epoch, id}: messages were lost
 *   'subscribed' {channel, epoch, id}: where a subscription starts (it is live)
 *   'message'    every message delivered to this tab (after the channel's handlers)
 *   'members'    {channel, members}: who is in a presence channel, when first known
 *   'join'       {channel, member}: a member came (member = {id, info})
 *   'leave'      {channel, member}: a member left (after the sidecar's grace period)
 */
function Connection(url, options) {
  var self = this;
  this.url = normalizeBase(url, G.location);
  this.options = mergeOptions(options);
  this.id = randomId();
  this.subs = {};
  this.pos = {};
  this.rewinds = {};
  this.refusedHere = {}; // channels of this tab the sidecar refused (reported as 'error')
  this.presence = {}; // presence channel → PresenceList
  this.emitter = new Emitter();
  this.state = 'connecting';
  this.transport = '';
  this.isLeader = false;
  this.closed = false;
  var dbg = this.options.debug;
  var tag = '[comet ' + this.id.slice(0, 4) + ']';
  this.log = !dbg
    ? noop
    : function () {
        var args = [tag].concat(Array.prototype.slice.call(arguments));
        if (typeof dbg === 'function') dbg.apply(null, args);
        else if (G.console) (G.console.debug || G.console.log).apply(G.console, args);
      };
  var unknown = [];
  for (var i = 0; i < this.options.transports.length; i++) {
    if (!TRANSPORTS[this.options.transports[i]]) unknown.push(this.options.transports[i]);
  }
  if (unknown.length) this.log('unknown transports ignored:', unknown.join(', '));
  var shared = !!this.options.shareTabs && Bus.available() && (locksAvailable() || storageWorks());
  this.coord = new Coordinator(this, shared);
  this.coord.start();
  if (G.addEventListener) {
    this.onPageHide = function () {
      // Leave now (the next tab takes over at once); a page restored from the
      // back/forward cache joins again.
      self.coord.stop();
    };
    this.onPageShow = function (e) {
      if (e.persisted && !self.closed) {
        self.coord = new Coordinator(self, shared);
        self.coord.start();
      }
    };
    G.addEventListener('pagehide', this.onPageHide);
    G.addEventListener('pageshow', this.onPageShow);
  }
}

/**
 * Subscribes `handler(message)` to `channel`; message = {ch, id, prev, epoch, event,
 * data}. Options: `since` ("EPOCH.ID", e.g. a saved subscription.position()) to resume
 * after a known message; `onReset(notice)`.
 */
Connection.prototype.subscribe = function (channel, handler, opts) {
  if (!validChannel(channel)) throw new Error('comet: invalid channel name ' + JSON.stringify(channel));
  if (typeof handler !== 'function') throw new Error('comet: subscribe needs a handler function');
  var sub = new Subscription(this, channel, handler, opts || {});
  var list = this.subs[channel];
  var fresh = !list;
  if (fresh) list = this.subs[channel] = [];
  list.push(sub);
  if (this.closed) return sub;
  if (this.refusedHere[channel]) {
    // Subscribing again to a refused channel is the app asking for another try.
    delete this.refusedHere[channel];
    this.coord.reauthorize(undefined, [channel]);
  }
  var since = sub.opts.since ? parsePosition(sub.opts.since) : null;
  if (since && (!this.pos[channel] || isBehind(since, this.pos[channel]))) {
    this.pos[channel] = since;
    this.coord.changed();
    this.coord.rewind(channel, since);
  } else if (fresh) this.coord.changed();
  return sub;
};

Connection.prototype.unsubscribeOne = function (sub) {
  var list = this.subs[sub.channel];
  if (!list) return;
  var i = indexOf(list, sub);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) {
    delete this.subs[sub.channel];
    delete this.pos[sub.channel];
    delete this.rewinds[sub.channel];
    delete this.refusedHere[sub.channel];
    delete this.presence[sub.channel];
    if (!this.closed) this.coord.changed();
  }
};

Connection.prototype.on = function (name, fn) {
  return this.emitter.on(name, fn);
};
Connection.prototype.off = function (name, fn) {
  this.emitter.off(name, fn);
};

/**
 * Presents credentials again now: `token` (optional: a string or a function) replaces
 * the token option. Refused channels are tried again; a WebSocket sends
 * {"cmd":"auth",…} and subscribes them in place, a stream reconnects from its cursor.
 * Call it after a login (cookie / --auth-url flow), or with a new string token.
 */
Connection.prototype.reauthorize = function (token) {
  if (token !== undefined) this.options.token = token;
  this.refusedHere = {};
  if (!this.closed) this.coord.reauthorize(typeof token === 'string' ? token : undefined, null);
};

/** This tab's cursor: "ch@EPOCH.ID,…" for the channels whose position is known. */
Connection.prototype.cursor = function () {
  return formatCursor(this.pos, this.channels());
};

Connection.prototype.close = function () {
  if (this.closed) return;
  this.closed = true;
  this.coord.stop();
  if (G.removeEventListener) {
    G.removeEventListener('pagehide', this.onPageHide);
    G.removeEventListener('pageshow', this.onPageShow);
  }
  this.setState({ state: 'closed', transport: '' }, this.isLeader);
};

// ---- used by the Coordinator ----

Connection.prototype.channels = function () {
  return keys(this.subs);
};

/** {ch: position or null} for this tab's channels. */
Connection.prototype.positions = function () {
  var out = {};
  for (var ch in this.subs) if (hasOwn.call(this.subs, ch)) out[ch] = this.pos[ch] || null;
  return out;
};

Connection.prototype.setState = function (s, leader) {
  if (this.closed && s.state !== 'closed') return;
  var changed = s.state !== this.state || (s.transport || '') !== this.transport || !!leader !== this.isLeader;
  this.state = s.state;
  this.transport = s.transport || '';
  this.isLeader = !!leader;
  if (changed) this.emit('state', { state: this.state, transport: this.transport, leader: this.isLeader });
};

Connection.prototype.emit = function (name, value) {
  var self = this;
  this.emitter.emit(name, value, function (e) {
    if (name !== 'error') self.emitError(e);
    else rethrowLater(e);
  });
};

Connection.prototype.emitError = function (err) {
  this.log('error', err && err.message);
  if (err && err.channel) {
    // A refusal concerns the tabs that subscribe to the channel.
    if (!this.subs[err.channel]) return;
    this.refusedHere[err.channel] = true;
  }
  this.emit('error', err);
};

/** Where `ch` starts, as the server told the leader. */
Connection.prototype.head = function (ch, p) {
  if (!this.subs[ch] || this.pos[ch]) return;
  this.pos[ch] = p;
  this.emit('subscribed', { channel: ch, epoch: p.epoch, id: p.id });
};

/** A server object relayed by the leader (or from this tab's own Driver). */
Connection.prototype.receive = function (o) {
  var kind = classify(o);
  var ch = o && o.ch;
  if (!this.subs[ch] || this.closed) return;
  if (kind === 'members' || kind === 'join' || kind === 'leave') return this.presenceNotice(ch, o);
  if (kind === 'reset') {
    var r = applyReset(this.pos[ch], o);
    this.pos[ch] = r.position;
    if (!r.surface) return;
    this.log('reset', ch, o.reason);
    this.emit('reset', o);
    var subs = this.subs[ch].slice();
    for (var j = 0; j < subs.length; j++) if (subs[j].opts.onReset) this.call(subs[j].opts.onReset, o);
    return;
  }
  if (kind !== 'msg') return;
  var held = this.pos[ch];
  var verdict = judge(held, o);
  if (verdict === 'duplicate') return;
  if (verdict === 'gap') {
    // Messages between ours and this one went past us (e.g. sent by a leader that
    // closed before we heard them): ask the leader once to resume from our position
    // and drop what arrives meanwhile (it comes again). If the resync never comes,
    // accept the gap after GAP_PATIENCE messages and report it.
    var key = formatPosition(held);
    var w = this.rewinds[ch];
    if (!w || w.at !== key) {
      w = this.rewinds[ch] = { at: key, dropped: 0 };
      this.log('gap in', ch, 'after', key, 'got', o.id, ': asking for a resync');
      this.coord.rewind(ch, held);
    }
    if (++w.dropped <= GAP_PATIENCE) return;
    this.emitError(new Error('messages of ' + ch + ' after ' + key + ' are missing'));
  }
  if (verdict !== 'bare') {
    var known = !!held;
    this.pos[ch] = makePosition(o.epoch, o.id);
    if (this.rewinds[ch]) delete this.rewinds[ch];
    if (!known) this.emit('subscribed', { channel: ch, epoch: o.epoch, id: o.id - 1 });
  }
  var list = this.subs[ch].slice();
  for (var i = 0; i < list.length; i++) if (list[i].active) this.call(list[i].handler, o);
  this.emit('message', o);
};

/** A presence notice: the list kept up to date, and the changes reported. */
Connection.prototype.presenceNotice = function (ch, o) {
  var p = this.presence[ch] || (this.presence[ch] = new PresenceList());
  var changes = p.apply(o);
  var subs = this.subs[ch].slice();
  var i;
  var j;
  if (changes.members) {
    this.emit('members', { channel: ch, members: changes.members.slice() });
    for (j = 0; j < subs.length; j++) subs[j].emit('members', changes.members.slice());
  }
  var events = [['leave', changes.left], ['join', changes.joined]];
  for (var e = 0; e < events.length; e++) {
    for (i = 0; i < events[e][1].length; i++) {
      var member = events[e][1][i];
      this.emit(events[e][0], { channel: ch, member: member });
      for (j = 0; j < subs.length; j++) subs[j].emit(events[e][0], member);
    }
  }
};

/** Whether this tab has a members list for `ch`. */
Connection.prototype.knowsMembers = function (ch) {
  return !!(this.presence[ch] && this.presence[ch].known);
};

Connection.prototype.call = function (fn, value) {
  try {
    fn(value);
  } catch (e) {
    this.emitError(e);
  }
};

/** One handler on one channel. */
function Subscription(conn, channel, handler, opts) {
  this.conn = conn;
  this.channel = channel;
  this.handler = handler;
  this.opts = opts;
  this.active = true;
  this.emitter = new Emitter();
}
/**
 * Presence channels: on('members', fn(list)) once the list is known, on('join',
 * fn(member)) and on('leave', fn(member)) as members come and go (member = {id, info}).
 * Returns a function that removes the listener.
 */
Subscription.prototype.on = function (name, fn) {
  return this.emitter.on(name, fn);
};
Subscription.prototype.off = function (name, fn) {
  this.emitter.off(name, fn);
};
Subscription.prototype.emit = function (name, value) {
  if (!this.active) return;
  var conn = this.conn;
  this.emitter.emit(name, value, function (e) {
    conn.emitError(e);
  });
};
/**
 * Who is in the channel now (a presence channel): [{id, info}], the subscriber itself
 * included; [] until the sidecar has told.
 */
Subscription.prototype.members = function () {
  var p = this.conn.presence[this.channel];
  return p ? p.members() : [];
};
Subscription.prototype.unsubscribe = function () {
  if (!this.active) return;
  this.active = false;
  this.conn.unsubscribeOne(this);
};
/** "EPOCH.ID" of the last message this tab has in the channel ('' if none yet). */
Subscription.prototype.position = function () {
  var p = this.conn.pos[this.channel];
  return p ? formatPosition(p) : '';
};

function connect(url, options) {
  return new Connection(url, options);
}

// ---------------------------------------------------------------------------------
// exports

return {
  version: '0.1.0',
  connect: connect,
  Connection: Connection,
  /** The default transport ladder, best first. */
  transports: DEFAULT_TRANSPORTS.slice(),
  /** Every transport name `transports` accepts. */
  allTransports: keys(TRANSPORTS),
  defaults: DEFAULT_OPTIONS,
  /** Internals for tests and diagnostics; not a stable API. */
  _internal: {
    backoffDelay: backoffDelay,
    normalizeBase: normalizeBase,
    buildUrl: buildUrl,
    toWsUrl: toWsUrl,
    parsePosition: parsePosition,
    formatPosition: formatPosition,
    parseCursor: parseCursor,
    formatCursor: formatCursor,
    judge: judge,
    applyReset: applyReset,
    mergeServerPosition: mergeServerPosition,
    minPosition: minPosition,
    isBehind: isBehind,
    validChannel: validChannel,
    validCallback: validCallback,
    SseParser: SseParser,
    LineParser: LineParser,
    MultipartParser: MultipartParser,
    boundaryOf: boundaryOf,
    parseScriptCalls: parseScriptCalls,
    parseJsonp: parseJsonp,
    classify: classify,
    PresenceList: PresenceList,
    Emitter: Emitter,
    Driver: Driver,
    TRANSPORTS: TRANSPORTS
  }
};
  }
);
