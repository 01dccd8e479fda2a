// Private channels (docs/protocol.md, "Private channels and authorization"): every
// transport and format × every way a token can be missing, forged or wrong. Exactly the
// authorized cases deliver; a refused one gets 401/403 (WebSocket: an error naming the
// channel, the socket open) and no byte of the channel's messages.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openWs, sendJson, closeWs } from './lib/clients.mjs';
import { publishOk, startSidecar, uniqueChannel, delay } from './lib/sidecar.mjs';
import { collect, signToken, tokenFor } from './lib/tokens.mjs';

const SECRET = 'integration-test-secret';

const HTTP_TRANSPORTS = [
  ['sse', '/sse?'],
  ['sse format=json', '/sse?format=json&'],
  ['dom-event-stream', '/sse?format=dom-event-stream&'],
  ['xhr', '/stream?format=xhr&'],
  ['iframe', '/stream?format=iframe&cb=f&'],
  ['htmlfile', '/stream?format=htmlfile&cb=f&'],
  ['multipart', '/stream?format=multipart&'],
  ['long-poll', '/poll?'],
  ['jsonp', '/poll?callback=cb&'],
  ['poll', '/poll?wait=0&'],
];

describe('private channels: transport × token case', () => {
  let sc;
  let ch;
  let epoch;
  const table = new Map(); // transport -> {case: outcome}

  before(async () => {
    sc = await startSidecar(['--token-secret', SECRET]);
    ch = `private:user/7/${uniqueChannel('inbox')}`;
    epoch = (await publishOk(sc, ch, 'SECRET-1')).epoch;
    await publishOk(sc, ch, 'SECRET-2');
  });
  after(async () => {
    const cases = [...(table.values().next().value ? Object.keys(table.values().next().value) : [])];
    if (cases.length) {
      const rows = [['transport', ...cases].join(' | ')];
      for (const [name, outcomes] of table) rows.push([name, ...cases.map((c) => outcomes[c])].join(' | '));
      console.log(`\n${rows.join('\n')}\n`);
    }
    await sc?.stop();
  });

  // Each case: the query (channels and cursor), the token, and what must happen.
  function cases() {
    const now = Math.floor(Date.now() / 1000);
    const payload = { channels: [ch], exp: now + 300, iat: now };
    return [
      { name: 'no token', query: { ch, cursor: `${ch}@.0` }, expect: 401 },
      { name: 'bad signature', query: { ch, cursor: `${ch}@.0` }, token: tokenFor(ch, 'another-secret'), expect: 403 },
      {
        name: 'alg none',
        query: { ch, cursor: `${ch}@.0` },
        token: `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`,
        expect: 403,
      },
      {
        name: 'HS512',
        query: { ch, cursor: `${ch}@.0` },
        token: signToken(payload, SECRET, { header: { alg: 'HS512', typ: 'JWT' }, hash: 'sha512' }),
        expect: 403,
      },
      { name: 'expired', query: { ch, cursor: `${ch}@.0` }, token: tokenFor(ch, SECRET, { ttl: -120 }), expect: 403 },
      { name: 'another channel', query: { ch, cursor: `${ch}@.0` }, token: tokenFor('private:user/8/inbox', SECRET), expect: 403 },
      { name: 'prefix match', query: { ch, cursor: `${ch}@.0` }, token: tokenFor('private:user/7/*', SECRET), expect: 'delivered' },
      { name: 'valid', query: { ch, cursor: `${ch}@.0` }, token: tokenFor(ch, SECRET), expect: 'delivered' },
      { name: 'cursor-only, no token', query: { cursor: `${ch}@.0` }, expect: 401 },
      { name: 'cursor-only, valid', query: { cursor: `${ch}@.0` }, token: tokenFor(ch, SECRET), expect: 'delivered' },
      { name: 'public + private, no token', query: { ch: `news,${ch}`, cursor: `${ch}@.0` }, expect: 401 },
      { name: 'resume, wrong token', query: { ch, cursor: `${ch}@${epoch}.1` }, token: tokenFor('private:user/8/*', SECRET), expect: 403 },
      { name: 'resume, valid', query: { ch, cursor: `${ch}@${epoch}.1` }, token: tokenFor(ch, SECRET), expect: 'resumed' },
    ];
  }

  function queryString(c) {
    const q = new URLSearchParams(c.query);
    if (c.token !== undefined) q.set('token', c.token);
    return q.toString();
  }

  function record(transport, name, outcome) {
    if (!table.has(transport)) table.set(transport, {});
    table.get(transport)[name] = outcome;
  }

  for (const [transport, prefix] of HTTP_TRANSPORTS) {
    test(`${transport}: only authorized requests deliver`, async () => {
      const failures = [];
      for (const c of cases()) {
        const res = await collect(`${sc.url}${prefix}${queryString(c)}`, { until: (b) => b.includes('SECRET-2') });
        const leaked = res.body.includes('SECRET');
        let ok;
        if (typeof c.expect === 'number') {
          let body;
          try {
            body = JSON.parse(res.body);
          } catch {
            body = {};
          }
          ok = res.status === c.expect && !leaked && body.ch === ch && body.status === c.expect;
          record(transport, c.name, ok ? `refused ${res.status}` : `WRONG ${res.status}`);
        } else {
          const first = res.body.includes('SECRET-1');
          ok = res.status === 200 && res.body.includes('SECRET-2') && (c.expect === 'resumed' ? !first : first);
          record(transport, c.name, ok ? 'delivered' : `WRONG ${res.status}`);
        }
        if (!ok) failures.push(`${c.name}: expected ${c.expect}, got ${res.status} ${res.body.slice(0, 300)}`);
      }
      assert.deepEqual(failures, []);
    });
  }

  test('ws: only authorized subscriptions deliver; a refused one gets an error and the socket stays open', async () => {
    const failures = [];
    for (const c of cases()) {
      const client = await openWs(`${sc.wsUrl}/ws?${queryString(c)}`);
      const got = [];
      const deadline = Date.now() + 1500;
      while (Date.now() < deadline) {
        const m = await client.messages.take(deadline - Date.now()).catch(() => null);
        if (m === null) break;
        got.push(m);
        if (m.type === 'error' || m.data === 'SECRET-2') break;
      }
      const text = JSON.stringify(got);
      let ok;
      if (typeof c.expect === 'number') {
        const error = got.find((m) => m.type === 'error');
        const code = c.expect === 401 ? 'unauthorized' : 'forbidden';
        ok = !text.includes('SECRET') && error?.error === code && error?.ch === ch && error?.status === c.expect;
        // The socket stays open for other channels.
        sendJson(client, { cmd: 'ping' });
        const pong = await client.messages.take(2000).catch(() => null);
        ok = ok && pong?.type === 'pong';
        record('ws', c.name, ok ? `refused ${c.expect}` : 'WRONG');
      } else {
        const first = text.includes('SECRET-1');
        ok = text.includes('SECRET-2') && (c.expect === 'resumed' ? !first : first);
        record('ws', c.name, ok ? 'delivered' : 'WRONG');
      }
      if (!ok) failures.push(`${c.name}: expected ${c.expect}, got ${text.slice(0, 300)}`);
      await closeWs(client);
    }
    assert.deepEqual(failures, []);
  });
});

describe('private channels: refusals are counted', () => {
  test('/metrics comet_auth_refused_total counts each refused subscription', async () => {
    const sc = await startSidecar(['--token-secret', SECRET]);
    try {
      const ch = `private:${uniqueChannel('count')}`;
      await collect(`${sc.url}/poll?wait=0&ch=${ch}`);
      await collect(`${sc.url}/sse?ch=${ch}&token=${tokenFor('other', SECRET)}`);
      const ws = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
      assert.equal((await ws.messages.take(3000)).error, 'unauthorized');
      await closeWs(ws);
      await collect(`${sc.url}/poll?wait=0&ch=${ch}&token=${tokenFor(ch, SECRET)}`);  // allowed
      const metrics = await (await fetch(`${sc.url}/metrics`)).text();
      assert.match(metrics, /^comet_auth_refused_total 3$/m);
    } finally {
      await sc.stop();
    }
  });
});

describe('private channels: how tokens are presented', () => {
  let sc;
  before(async () => {
    sc = await startSidecar(['--token-secret', SECRET, '--allowed-origins', 'https://app.example']);
  });
  after(() => sc?.stop());

  async function privateChannel() {
    const ch = `private:${uniqueChannel('present')}`;
    await publishOk(sc, ch, 'SECRET-1');
    return ch;
  }

  test('Authorization: Bearer, and it wins over a bad token= in the query', async () => {
    const ch = await privateChannel();
    const res = await collect(`${sc.url}/poll?wait=0&ch=${ch}&cursor=${ch}@.0&token=garbage`, {
      headers: { Authorization: `Bearer ${tokenFor(ch, SECRET)}` },
    });
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /SECRET-1/);
  });

  test('a comet_token cookie counts without Origin and from a listed origin, never from another site', async () => {
    const ch = await privateChannel();
    const cookie = `PHPSESSID=abc; comet_token=${tokenFor(ch, SECRET)}`;
    const url = `${sc.url}/poll?wait=0&ch=${ch}&cursor=${ch}@.0`;
    assert.equal((await collect(url, { headers: { Cookie: cookie } })).status, 200);
    const listed = await collect(url, { headers: { Cookie: cookie, Origin: 'https://app.example' } });
    assert.equal(listed.status, 200);
    assert.equal(listed.headers['access-control-allow-credentials'], 'true');
    // JSONP runs in the embedding page: its cookie counts only with a Referer from a listed origin.
    const jsonp = `${sc.url}/poll?wait=0&callback=cb&ch=${ch}&cursor=${ch}@.0`;
    const fromApp = await collect(jsonp, { headers: { Cookie: cookie, Referer: 'https://app.example/page' } });
    assert.equal(fromApp.status, 200, fromApp.body);
    const evil = await collect(jsonp, { headers: { Cookie: cookie, Referer: 'https://evil.example/' } });
    assert.equal(evil.status, 403); // JSONP needs a listed Referer when origins are a list
    assert.doesNotMatch(evil.body, /SECRET/);
  });

  test('with --allowed-origins *, a cookie from a cross-origin request does not count', async () => {
    const open = await startSidecar(['--token-secret', SECRET]);
    try {
      const ch = `private:${uniqueChannel('star')}`;
      await publishOk(open, ch, 'SECRET-1');
      const cookie = `comet_token=${tokenFor(ch, SECRET)}`;
      const res = await collect(`${open.url}/poll?wait=0&ch=${ch}&cursor=${ch}@.0`, {
        headers: { Cookie: cookie, Origin: 'https://evil.example' },
      });
      assert.equal(res.status, 401);
      assert.match(JSON.parse(res.body).error, /cookies count only from origins listed/);
      assert.equal(res.headers['access-control-allow-credentials'], undefined);
      // The same cookie through a JSONP <script> from any site: not used either.
      const jsonp = await collect(`${open.url}/poll?wait=0&callback=cb&ch=${ch}&cursor=${ch}@.0`, {
        headers: { Cookie: cookie, Referer: 'https://evil.example/' },
      });
      assert.equal(jsonp.status, 401);
      assert.doesNotMatch(jsonp.body, /SECRET/);
    } finally {
      await open.stop();
    }
  });

  test('WebSocket: auth command, per-channel refusal, public channels unaffected', async () => {
    const ch = await privateChannel();
    const client = await openWs(`${sc.wsUrl}/ws`);
    sendJson(client, { cmd: 'sub', ch: ['news', ch] });
    const seen = [await client.messages.take(3000), await client.messages.take(3000)];
    assert.ok(seen.some((m) => m.type === 'subscribed' && m.ch === 'news'), JSON.stringify(seen));
    assert.ok(seen.some((m) => m.type === 'error' && m.error === 'unauthorized' && m.ch === ch), JSON.stringify(seen));
    sendJson(client, { cmd: 'auth', token: 'not.a.token' });
    const refused = await client.messages.take(3000);
    assert.equal(refused.type, 'error');
    assert.equal(refused.error, 'forbidden');
    sendJson(client, { cmd: 'auth', token: tokenFor(ch, SECRET, { sub: '7' }) });
    const ok = await client.messages.take(3000);
    assert.equal(ok.type, 'auth');
    assert.equal(ok.sub, '7');
    sendJson(client, { cmd: 'sub', ch, since: '.0' });
    const sub = await client.messages.take(3000);
    assert.equal(sub.type, 'subscribed');
    const msg = await client.messages.take(3000);
    assert.equal(msg.data, 'SECRET-1');
    await closeWs(client);
  });
});

describe('private channels: expiry on long-lived connections', () => {
  let sc;
  before(async () => {
    // Heartbeats every 200 ms check expiry; 1 s of grace.
    sc = await startSidecar(['--token-secret', SECRET, '--heartbeat', '200ms', '--token-grace', '1s']);
  });
  after(() => sc?.stop());

  // Tokens carry whole seconds: one that expires at the next second boundary + 1.
  const soon = () => tokenFor('private:*', SECRET, { ttl: 1 });

  test('SSE: told at expiry, nothing private after expiry + grace, the stream ends', async () => {
    const ch = `private:${uniqueChannel('exp')}`;
    const token = soon();
    const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).exp * 1000;
    const res = collect(`${sc.url}/sse?ch=${ch}&token=${token}`, { ms: 6000 });
    await delay(200);
    await publishOk(sc, ch, 'before-expiry');
    await delay(Math.max(0, exp + 1000 + 300 - Date.now()));
    await publishOk(sc, ch, 'AFTER-GRACE');
    const { body } = await res;
    assert.match(body, /before-expiry/);
    assert.match(body, /event: comet-auth-expired\ndata: \{"type":"auth-expired","grace":1\}/);
    assert.doesNotMatch(body, /AFTER-GRACE/);
  });

  const expOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).exp * 1000;

  test('long-poll: a message past expiry + grace is withheld, and the cursor does not pass it', async () => {
    const ch = `private:${uniqueChannel('lpexp')}`;
    const token = soon();
    await publishOk(sc, ch, 'first');
    const head = await collect(`${sc.url}/poll?wait=0&ch=${ch}&token=${token}`);
    const cursor = JSON.parse(head.body).cursor;
    const held = collect(`${sc.url}/poll?cursor=${encodeURIComponent(cursor)}&token=${token}`, { ms: 8000 });
    await delay(Math.max(0, expOf(token) + 1000 + 300 - Date.now()));
    await publishOk(sc, ch, 'WITHHELD');
    const res = await held;
    assert.equal(res.status, 200, res.body);
    const answer = JSON.parse(res.body);
    assert.deepEqual(answer.messages, []);
    assert.equal(answer.cursor, cursor, 'the cursor must not skip the withheld message');
    // With a fresh token the client resumes from that cursor and gets it, exactly once.
    const again = await collect(`${sc.url}/poll?wait=0&cursor=${encodeURIComponent(answer.cursor)}&token=${tokenFor(ch, SECRET)}`);
    assert.deepEqual(JSON.parse(again.body).messages.map((m) => m.data), ['WITHHELD']);
  });

  test('xhr stream: told, then ended with a reconnect cursor just before the withheld message', async () => {
    const ch = `private:${uniqueChannel('xhrexp')}`;
    const token = soon();
    const res = collect(`${sc.url}/stream?format=xhr&ch=${ch}&token=${token}`, { ms: 8000 });
    await delay(200);
    const first = await publishOk(sc, ch, 'before');
    await delay(Math.max(0, expOf(token) + 1000 + 300 - Date.now()));
    await publishOk(sc, ch, 'WITHHELD');
    const { body } = await res;
    const objects = body.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    assert.ok(objects.some((o) => o.data === 'before'));
    assert.ok(objects.some((o) => o.type === 'auth-expired' && o.grace === 1), body);
    assert.ok(!objects.some((o) => o.data === 'WITHHELD'), body);
    const reconnect = objects.find((o) => o.type === 'reconnect');
    assert.equal(reconnect?.cursor, `${ch}@${first.epoch}.${first.id}`);
  });

  test('WebSocket: a refreshed token keeps the channel; without refresh it ends after the grace', async () => {
    const ch = `private:${uniqueChannel('wsexp')}`;
    const refreshed = await openWs(`${sc.wsUrl}/ws?ch=${ch}&token=${soon()}`);
    const lapsed = await openWs(`${sc.wsUrl}/ws?ch=${ch}&token=${soon()}`);
    assert.equal((await refreshed.messages.take(3000)).type, 'subscribed');
    assert.equal((await lapsed.messages.take(3000)).type, 'subscribed');
    const expired = await refreshed.messages.take(4000);
    assert.equal(expired.type, 'auth-expired');
    sendJson(refreshed, { cmd: 'auth', token: tokenFor(ch, SECRET, { ttl: 300 }) });
    assert.equal((await refreshed.messages.take(3000)).type, 'auth');
    assert.equal((await lapsed.messages.take(4000)).type, 'auth-expired');
    const ended = await lapsed.messages.take(4000);
    assert.deepEqual([ended.type, ended.error, ended.ch], ['error', 'auth-expired', ch]);
    await publishOk(sc, ch, 'after-grace');
    assert.equal((await refreshed.messages.take(3000)).data, 'after-grace');
    const late = await lapsed.messages.take(500).catch(() => null);
    assert.equal(late, null, `the lapsed socket got ${JSON.stringify(late)}`);
    await closeWs(refreshed);
    await closeWs(lapsed);
  });
});
