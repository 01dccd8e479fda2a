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
