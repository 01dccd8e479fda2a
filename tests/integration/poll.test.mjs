// Long-poll, plain polling (wait=0) and JSONP (GET /poll).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import vm from 'node:vm';

import {
  assertEnvelope,
  delay,
  headCursor,
  parseCursor,
  poll,
  publishMany,
  publishOk,
  RawClient,
  sendAndHalfClose,
  startSidecar,
  uniqueChannel,
} from './lib/sidecar.mjs';

describe('poll', () => {
  let sc;
  before(async () => {
    sc = await startSidecar(['--workers', '2', '--poll-timeout', '1s']);
  });
  after(async () => {
    await sc?.stop();
  });

  test('wait=0 answers at once: empty, with the head cursor, JSON headers', async () => {
    const ch = uniqueChannel('poll-empty');
    const res = await poll(sc, { ch, wait: '0' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(res.json, { cursor: `${ch}@.0`, messages: [] });
    for (const falsy of ['false', 'no']) {
      const again = await poll(sc, { ch, wait: falsy });
      assert.deepEqual(again.json, { cursor: `${ch}@.0`, messages: [] });
    }
  });

  test('messages published between polls come back together, in order, with envelopes', async () => {
    const ch = uniqueChannel('poll-batch');
    const cursor = await headCursor(sc, ch);
    const answers = await publishMany(sc, ch, ['one', 'two', 'three'], { event: 'e1' });
    const res = await poll(sc, { ch, cursor });
    assert.equal(res.status, 200);
    assert.equal(res.json.messages.length, 3);
    res.json.messages.forEach((m, i) =>
      assertEnvelope(m, { ch, id: i + 1, epoch: answers[i].epoch, event: 'e1', data: ['one', 'two', 'three'][i] }),
    );
    assert.equal(res.json.cursor, `${ch}@${answers[2].epoch}.3`);
    // wait=0 with a cursor also returns what is retained after it.
    const plain = await poll(sc, { ch, cursor: `${ch}@${answers[0].epoch}.1`, wait: '0' });
    assert.deepEqual(
      plain.json.messages.map((m) => m.data),
      ['two', 'three'],
    );
  });

  test('a long-poll is held until a message arrives', async () => {
    const ch = uniqueChannel('poll-held');
    const cursor = await headCursor(sc, ch);
    const client = await RawClient.connect(sc.port);
    try {
      client.write(`GET /poll?ch=${ch}&cursor=${encodeURIComponent(cursor)} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await delay(200); // proving a negative: nothing is answered while nothing is published
      assert.equal(client.totalBytes, 0, 'a long-poll with nothing to report must be held');
      const p = await publishOk(sc, ch, 'wake up');
      const res = await client.readResponse(5000);
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection, 'keep-alive');
      const body = res.json;
      assert.equal(body.messages.length, 1);
      assertEnvelope(body.messages[0], { ch, id: 1, epoch: p.epoch, data: 'wake up' });
      assert.equal(body.cursor, `${ch}@${p.epoch}.1`);
    } finally {
      client.destroy();
    }
  });

  test('an unanswered long-poll times out after --poll-timeout with the same cursor', async () => {
    const ch = uniqueChannel('poll-timeout');
    await publishOk(sc, ch, 'old');
    const cursor = await headCursor(sc, ch);
    const started = Date.now();
    const res = await poll(sc, { ch, cursor });
    const elapsed = Date.now() - started;
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { cursor, messages: [] });
    assert.ok(elapsed >= 900 && elapsed < 5000, `answered after ${elapsed} ms with --poll-timeout 1s`);
  });

  test('a long-poll whose client half-closes still times out, is answered, then closed', async () => {
    // After the client's FIN nothing more is read, but the held poll keeps its timeout.
    const ch = uniqueChannel('poll-halfclose');
    const cursor = await headCursor(sc, ch);
    const started = Date.now();
    const answer = await sendAndHalfClose(
      sc.port,
      `GET /poll?ch=${ch}&cursor=${encodeURIComponent(cursor)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      5000,
    );
    const elapsed = Date.now() - started;
    assert.match(answer, /^HTTP\/1\.1 200 OK/);
    assert.ok(answer.includes('"messages":[]'), answer);
    assert.ok(elapsed >= 900 && elapsed < 4000, `answered after ${elapsed} ms with --poll-timeout 1s`);
  });

  test('a polling loop against a concurrent publisher sees every message exactly once, in order', async () => {
    const ch = uniqueChannel('poll-loop');
    let cursor = await headCursor(sc, ch);
    const total = 60;
    const publisher = (async () => {
      for (let i = 1; i <= total; i++) {
        await publishOk(sc, ch, `n${i}`);
        if (i % 7 === 0) await delay(5); // let some polls be held and some find a backlog
      }
    })();
    const seen = [];
    let rounds = 0;
    while (seen.length < total && rounds < 500) {
      rounds += 1;
      const res = await poll(sc, { ch, cursor });
      assert.equal(res.status, 200, res.text);
      for (const m of res.json.messages) seen.push(m.data);
      cursor = res.json.cursor;
    }
    await publisher;
    assert.deepEqual(
      seen,
      Array.from({ length: total }, (_, i) => `n${i + 1}`),
    );
    assert.equal(parseCursor(cursor)[ch].id, total);
  });

  test('two channels in one poll; the cursor alone names the channels', async () => {
    const a = uniqueChannel('poll-a');
    const b = uniqueChannel('poll-b');
    const cursor = await headCursor(sc, `${a},${b}`);
    assert.deepEqual(Object.keys(parseCursor(cursor)).sort(), [a, b].sort());
    await publishOk(sc, a, 'for a');
    await publishOk(sc, b, 'for b');
    await publishOk(sc, a, 'for a again');
    const res = await poll(sc, { cursor }); // no ch: the cursor's channels
    // Replayed messages are in order per channel (the protocol promises no order across channels).
    const of = (ch) => res.json.messages.filter((m) => m.ch === ch).map((m) => [m.id, m.data]);
    assert.equal(res.json.messages.length, 3);
    assert.deepEqual(of(a), [
      [1, 'for a'],
      [2, 'for a again'],
    ]);
    assert.deepEqual(of(b), [[1, 'for b']]);
    const next = parseCursor(res.json.cursor);
    assert.equal(next[a].id, 2);
    assert.equal(next[b].id, 1);
  });

  test('JSONP: /**/NAME({...}); as application/javascript, runnable as a script', async () => {
    const ch = uniqueChannel('jsonp');
    const cursor = await headCursor(sc, ch);
    const p = await publishOk(sc, ch, 'line\u2028sep </script> & "quotes"');
    for (const name of ['cb', 'My.ns_1.$handler', '_', 'a1.b2']) {
      const res = await poll(sc, { ch, cursor, callback: name });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/javascript; charset=utf-8');
      assert.ok(res.text.startsWith(`/**/${name}(`), res.text);
      assert.ok(res.text.endsWith(');\n'), res.text);
      assert.doesNotMatch(res.text, /<|>|&|\u2028/);
      let captured;
      const sandbox = {};
      const parts = name.split('.');
      let obj = sandbox;
      for (const part of parts.slice(0, -1)) obj = obj[part] = {};
      obj[parts.at(-1)] = (value) => {
        captured = value;
      };
      vm.runInNewContext(res.text, sandbox);
      captured = JSON.parse(JSON.stringify(captured)); // out of the sandbox's realm
      assert.equal(captured.cursor, `${ch}@${p.epoch}.1`);
      assertEnvelope(captured.messages[0], { ch, id: 1, epoch: p.epoch, data: 'line\u2028sep </script> & "quotes"' });
    }
  });

  test('JSONP long-poll is held like a plain one', async () => {
    const ch = uniqueChannel('jsonp-held');
    const cursor = await headCursor(sc, ch);
    const pending = poll(sc, { ch, cursor, callback: 'cb' });
    const p = await publishOk(sc, ch, 'later');
    const res = await pending;
    assert.ok(res.text.startsWith('/**/cb('), res.text);
    const body = JSON.parse(res.text.slice('/**/cb('.length, -');\n'.length));
    assertEnvelope(body.messages[0], { ch, id: 1, epoch: p.epoch, data: 'later' });
  });

  test('keep-alive: successive polls reuse one connection', async () => {
    const ch = uniqueChannel('poll-ka');
    const client = await RawClient.connect(sc.port);
    try {
      let cursor = '';
      for (let i = 1; i <= 3; i++) {
        await publishOk(sc, ch, `k${i}`);
        const query = cursor ? `ch=${ch}&cursor=${encodeURIComponent(cursor)}` : `ch=${ch}&cursor=${ch}%40.0`;
        client.write(`GET /poll?${query} HTTP/1.1\r\nHost: x\r\n\r\n`);
        const res = await client.readResponse();
        assert.equal(res.status, 200);
        const body = res.json;
        assert.equal(body.messages.at(-1).data, `k${i}`);
        assert.equal(body.messages.length, 1);
        cursor = body.cursor;
      }
      assert.equal(client.ended, false);
    } finally {
      client.destroy();
    }
  });
});
