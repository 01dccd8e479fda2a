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
