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
