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
