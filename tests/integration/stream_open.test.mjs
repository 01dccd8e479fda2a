// Every streaming format shows its open notice at once with the default settings (no
// --heartbeat override): a reader must not wait for the next heartbeat (15 s) to take a
// part in. Multipart was the case: a part counts as complete only when the next
// delimiter arrives, so the sidecar sends it right after each part.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { publishOk, startSidecar, uniqueChannel } from './lib/sidecar.mjs';
import { collect } from './lib/tokens.mjs';

/** Multipart parts as a reader that needs the next delimiter sees them (comet.js's rule). */
function completeParts(body) {
  const delim = '--comet-part';
  const parts = [];
  let at = body.indexOf(delim);
  while (at >= 0) {
    const next = body.indexOf(`\r\n${delim}`, at + delim.length);
    if (next < 0) break;
    const part = body.slice(at + delim.length, next);
    const blank = part.indexOf('\r\n\r\n');
    if (blank >= 0) parts.push(JSON.parse(part.slice(blank + 4)));
    at = next + 2;
  }
  return parts;
}

describe('streams open at once with default settings', () => {
  let sc;
  before(async () => {
    sc = await startSidecar([]); // the default --heartbeat (15 s)
  });
  after(() => sc?.stop());

  test('multipart: the open notice and each message are complete parts as soon as sent', async () => {
    const ch = uniqueChannel('mp');
    const started = Date.now();
    const pending = collect(`${sc.url}/stream?format=multipart&ch=${ch}`, {
      ms: 5000,
      until: (b) => completeParts(b).some((p) => p.data === 'now'),
    });
    await new Promise((r) => setTimeout(r, 300));
    await publishOk(sc, ch, 'now');
    const res = await pending;
    const took = Date.now() - started;
    const parts = completeParts(res.body);
    assert.equal(parts[0]?.type, 'open', res.body);
    assert.equal(parts[1]?.data, 'now', res.body);
    assert.ok(took < 3000, `the message part was complete after ${took} ms`);
  });

  test('multipart: the stream ends with the closing delimiter after a complete last part', async () => {
    const budget = await startSidecar(['--stream-byte-budget', '1024']);
    try {
      const ch = uniqueChannel('mpend');
      const pending = collect(`${budget.url}/stream?format=multipart&ch=${ch}`, { ms: 5000 });
      await new Promise((r) => setTimeout(r, 300));
      await publishOk(budget, ch, 'x'.repeat(1500)); // over the byte budget: the stream ends
      const { body } = await pending;
      assert.ok(body.endsWith('\r\n--comet-part--\r\n'), JSON.stringify(body.slice(-60)));
      const parts = completeParts(body);
      assert.equal(parts.at(-1)?.type, 'reconnect');
    } finally {
      await budget.stop();
    }
  });
});
