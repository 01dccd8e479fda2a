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
