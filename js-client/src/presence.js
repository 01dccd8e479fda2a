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
