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
