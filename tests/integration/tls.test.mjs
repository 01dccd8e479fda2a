// TLS on the public listener (issue 15): every transport over https:// and wss:// with a
// certificate the test makes (openssl CLI), a bad certificate path refused at start
// (exit 2 with the reason), and SIGHUP loading a new certificate while connections
// opened with the old one go on receiving.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { publishOk, SIDECAR_BIN, startSidecar, uniqueChannel, waitUntil } from './lib/sidecar.mjs';
import { makeCertificate as makeTestCertificate } from './lib/certificates.mjs';
import { collect } from './lib/tokens.mjs';

const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const makeCertificate = (name) => makeTestCertificate(dir, name);

/** GET over https (trusting `ca`), collecting the body until `until(body)` or `ms`. */
const httpsCollect = (url, ca, { ms = 3000, until } = {}) => collect(url, { ca, ms, until });

function subjectOf(port, ca) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const cn = socket.getPeerCertificate().subject.CN;
      socket.end();
      resolve(cn);
    });
    socket.on('error', reject);
  });
}

describe('TLS on the public listener', () => {
  let sc;
  let first;
  before(async () => {
    first = makeCertificate('first');
    // A stream byte budget above the burst test's 3 MB (streams end there to reconnect).
    sc = await startSidecar(['--tls-cert', first.cert, '--tls-key', first.key, '--stream-byte-budget', '64m']);
  });
  after(() => sc?.stop());
  const httpsUrl = (p) => `https://127.0.0.1:${sc.port}${p}`;

  test('every HTTP transport over https', async () => {
    const cases = [
      ['sse', (ch) => `/sse?ch=${ch}`],
      ['xhr', (ch) => `/stream?format=xhr&ch=${ch}`],
      ['iframe', (ch) => `/stream?format=iframe&cb=got&ch=${ch}`],
      ['htmlfile', (ch) => `/stream?format=htmlfile&cb=got&ch=${ch}`],
      ['multipart', (ch) => `/stream?format=multipart&ch=${ch}`],
      ['dom-event-stream', (ch) => `/stream?format=dom-event-stream&ch=${ch}`],
      ['long-poll', (ch) => `/poll?ch=${ch}&cursor=${ch}@.0`],
      ['jsonp', (ch) => `/poll?ch=${ch}&cursor=${ch}@.0&callback=got`],
    ];
    for (const [name, target] of cases) {
      const ch = uniqueChannel(`tls-${name}`);
      const data = `over tls ${name}`;
      const pending = httpsCollect(httpsUrl(target(ch)), first.pem, { until: (b) => b.includes(data) });
      await new Promise((r) => setTimeout(r, 200));
      await publishOk(sc, ch, data);
      const res = await pending;
      assert.equal(res.status, 200, `${name}: ${res.body}`);
      assert.ok(res.body.includes(data), `${name} delivered over TLS: ${JSON.stringify(res.body.slice(0, 300))}`);
      assert.equal(res.alpn, 'http/1.1', `${name}: ALPN`);
    }
    // Plain polling: the message is there already.
    const ch = uniqueChannel('tls-poll');
    await publishOk(sc, ch, 'polled');
    const res = await httpsCollect(httpsUrl(`/poll?ch=${ch}&cursor=${ch}@.0&wait=0`), first.pem);
    assert.match(res.body, /polled/);
    assert.match(res.protocol, /^TLSv1\.[23]$/);
  });

  test('a burst bigger than the socket buffer arrives whole (records, partial writes)', async () => {
    const ch = uniqueChannel('tls-burst');
    const big = 'x'.repeat(20000);
    // 800 KB at once: many 16 KiB records and writes the kernel takes in part, yet under
    // --max-output-bytes (1 MiB), beyond which a reader is cut as slow (and resumes).
    const count = 40;
    const pending = httpsCollect(httpsUrl(`/stream?format=xhr&ch=${ch}`), first.pem, {
      ms: 20000,
      until: (b) => {
        const last = b.indexOf(`"id":${count},`);
        return last >= 0 && b.indexOf('\n', last) >= 0; // the whole last line
      },
    });
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all(Array.from({ length: count }, (_, i) => publishOk(sc, ch, `${i + 1}:${big}`)));
    const res = await pending;
    assert.equal(res.status, 200, res.body.slice(0, 300));
    const lines = res.body.split('\n').filter((l) => l.includes('"data"')).map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((m) => m.id), Array.from({ length: count }, (_, i) => i + 1));
    assert.equal(new Set(lines.map((m) => m.data)).size, count, 'every message, whole');
    assert.ok(lines.every((m) => m.data.endsWith(big)));
  });

  test('WebSocket over wss', async () => {
    const ch = uniqueChannel('tls-ws');
    const ws = new WebSocket(`wss://127.0.0.1:${sc.port}/ws?ch=${ch}`, { ca: first.pem });
    const got = [];
    ws.on('message', (m) => got.push(JSON.parse(m.toString())));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await waitUntil(() => got.some((e) => e.type === 'subscribed'), { what: 'subscribed' });
    for (let i = 1; i <= 3; i++) await publishOk(sc, ch, `wss ${i}`);
    await waitUntil(() => got.filter((e) => e.id).length === 3, { what: '3 messages over wss' });
    assert.deepEqual(got.filter((e) => e.id).map((e) => e.data), ['wss 1', 'wss 2', 'wss 3']);
    ws.close();
  });

  test('plain HTTP to the TLS port is refused; old protocols are not offered', async () => {
    const res = await fetch(`http://127.0.0.1:${sc.port}/healthz`).catch((e) => e);
    assert.ok(res instanceof Error || res.status >= 400, 'no plain HTTP answer on the TLS port');
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: sc.port, ca: first.pem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, resolve);
        s.on('error', reject);
      }),
      /protocol|version|alert/i,
    );
    // The sidecar is fine afterwards.
    const ok = await httpsCollect(httpsUrl('/livez'), first.pem);
    assert.equal(ok.status, 200);
  });

  test('SIGHUP loads a new certificate; connections opened before keep receiving', async () => {
    const ch = uniqueChannel('tls-reload');
    const early = [];
    const ws = new WebSocket(`wss://127.0.0.1:${sc.port}/ws?ch=${ch}`, { ca: first.pem });
    ws.on('message', (m) => early.push(JSON.parse(m.toString())));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const sse = httpsCollect(httpsUrl(`/sse?ch=${ch}`), first.pem, { ms: 8000, until: (b) => b.includes('after reload') });
    await waitUntil(() => early.some((e) => e.type === 'subscribed'), { what: 'subscribed' });
    assert.equal(await subjectOf(sc.port, first.pem), 'first');

    // Replace the files in place (what a certificate renewal does), then SIGHUP.
    const second = makeCertificate('second');
    writeFileSync(first.cert, second.pem);
    writeFileSync(first.key, readFileSync(second.key));
    sc.child.kill('SIGHUP');
    await waitUntil(async () => (await subjectOf(sc.port, second.pem).catch(() => '')) === 'second', {
      what: 'new connections to get the new certificate',
    });
    await publishOk(sc, ch, 'after reload');
    await waitUntil(() => early.some((e) => e.data === 'after reload'), { what: 'the old wss connection to get it' });
    assert.match((await sse).body, /after reload/, 'the old https stream got it');
    ws.close();
    // A broken file on the next SIGHUP keeps the certificate in use.
    writeFileSync(first.key, 'not a key');
    sc.child.kill('SIGHUP');
    await waitUntil(() => /TLS reload failed/.test(sc.stderr + sc.stdout), { what: 'the failed reload to be logged' });
    assert.equal(await subjectOf(sc.port, second.pem), 'second');
  });
});

test('attacks on the handshake: silence, a stalled ClientHello, garbage and renegotiation are cut', async () => {
  const cert = makeCertificate('attack');
  const sc = await startSidecar(['--tls-cert', cert.cert, '--tls-key', cert.key, '--request-timeout', '1s']);
  try {
    const net = await import('node:net');
    const closedAfter = (send) =>
      new Promise((resolve) => {
        const started = performance.now();
        const s = net.connect(sc.port, '127.0.0.1', () => send(s));
        s.on('error', () => {});
        s.on('data', () => {});
        s.on('close', () => resolve(performance.now() - started));
        setTimeout(() => s.destroy(), 8000);
      });
    // A connection that never says hello holds nothing for longer than the request timeout.
    const silent = await closedAfter(() => {});
    assert.ok(silent > 800 && silent < 4000, `a silent connection was closed after ${silent.toFixed(0)} ms`);
    // Half a ClientHello, then nothing.
    const stalled = await closedAfter((s) => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])));
    assert.ok(stalled < 4000, `a stalled handshake was closed after ${stalled.toFixed(0)} ms`);
    // Not TLS at all: closed at once.
    const garbage = await closedAfter((s) => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.ok(garbage < 1000, `plain HTTP on the TLS port was closed after ${garbage.toFixed(0)} ms`);
    // TLS 1.2 renegotiation (a CPU attack, and a source of old bugs) is refused.
    const renegotiated = await new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: sc.port, ca: cert.pem, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => {
        s.renegotiate({}, (err) => {
          s.destroy();
          resolve(err ?? null);
        });
      });
      s.on('error', (err) => resolve(err));
    });
    assert.ok(renegotiated instanceof Error, 'renegotiation refused');
    // And the sidecar still serves.
    const ok = await httpsCollect(`https://127.0.0.1:${sc.port}/livez`, cert.pem);
    assert.equal(ok.status, 200);
  } finally {
    await sc.stop();
  }
});

test('pipelined requests over TLS while output is throttled: every one answered', async () => {
  // Input pauses while the client leaves output unread; bytes TLS had already decrypted
  // must be read when it resumes (no socket readiness announces them). 10,000-byte
  // records sent at once do not line up with the 64 KiB reads, so some wait in the SSL.
  // (Python's ssl: it sends the records corked, as Node's TLS socket cannot.)
  const cert = makeCertificate('pipeline');
  const sc = await startSidecar(['--tls-cert', cert.cert, '--tls-key', cert.key, '--max-output-bytes', '16k', '--request-timeout', '3s']);
  try {
    const script = new URL('./fixtures/tls_pipeline.py', import.meta.url).pathname;
    const run = spawnSync('python3', [script, String(sc.port), '10000', '70000'], { encoding: 'utf8', timeout: 20000 });
    assert.match(run.stdout, /answered (\d+) of \1\b/, `${run.stdout}${run.stderr}`);
  } finally {
    await sc.stop();
  }
});

test('a bad certificate path or a key without its certificate: exit 2 with the reason', () => {
  const run = (args) => spawnSync(SIDECAR_BIN, ['--listen', '127.0.0.1:0', '--publish-listen', 'off', ...args], { encoding: 'utf8', timeout: 10000 });
  const missing = run(['--tls-cert', path.join(dir, 'nope.crt'), '--tls-key', path.join(dir, 'nope.key')]);
  assert.equal(missing.status, 2, missing.stderr);
  assert.match(missing.stderr, /cannot read the certificate chain .*nope\.crt/);
  const { cert } = makeCertificate('lonely');
  const alone = run(['--tls-cert', cert]);
  assert.equal(alone.status, 2);
  assert.match(alone.stderr, /needs both --tls-cert and --tls-key/);
  const other = makeCertificate('other');
  const mismatch = run(['--tls-cert', cert, '--tls-key', other.key]);
  assert.equal(mismatch.status, 2);
  assert.match(mismatch.stderr, /does not match|cannot read the private key/);
});

/** GET over https with TLS options (maxVersion...), collecting the body until `until(body)`. */
function httpsGetWith(url, tlsOptions, until, ms = 5000) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tlsOptions, servername: 'localhost' }, (res) => {
      const protocol = res.socket.getProtocol();
      let body = '';
      const finish = () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode, body, protocol });
      };
      const timer = setTimeout(finish, ms);
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
        if (until(body)) finish();
      });
      res.on('end', finish);
    });
    req.on('error', reject);
  });
}

test('TLS 1.3 connections leave OpenSSL after the handshake; TLS 1.2 clients keep it and work', async () => {
  const cert = makeCertificate('offload');
  const sc = await startSidecar(['--tls-cert', cert.cert, '--tls-key', cert.key, '--log-level', 'debug']);
  try {
    const logs = () => sc.stderr + sc.stdout;
    for (const version of ['TLSv1.2', 'TLSv1.3']) {
      const options = { ca: cert.pem, minVersion: version, maxVersion: version };
      const ch = uniqueChannel(`tls-${version}`);
      const sse = httpsGetWith(`https://127.0.0.1:${sc.port}/sse?ch=${ch}`, options, (b) => b.includes(`sse over ${version}`));
      const ws = new WebSocket(`wss://127.0.0.1:${sc.port}/ws?ch=${ch}`, options);
      const got = [];
      ws.on('message', (m) => got.push(JSON.parse(m.toString())));
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      await waitUntil(() => got.some((e) => e.type === 'subscribed'), { what: `subscribed over ${version}` });
      await new Promise((r) => setTimeout(r, 100));
      await publishOk(sc, ch, `sse over ${version}`);
      await publishOk(sc, ch, 'x'.repeat(60000)); // several records
      const res = await sse;
      assert.equal(res.protocol, version);
      assert.match(res.body, new RegExp(`sse over ${version.replace('.', '\\.')}`));
      await waitUntil(() => got.filter((e) => e.id).length === 2, { what: `2 messages over wss ${version}` });
      assert.equal(got.filter((e) => e.id)[1].data.length, 60000);
      ws.close();
    }
    await waitUntil(() => /TLSv1\.2: records stay in OpenSSL/.test(logs()), { what: 'the TLS 1.2 connections to keep OpenSSL' });
    await waitUntil(() => /TLSv1\.3: records offloaded/.test(logs()), { what: 'the TLS 1.3 connections to be offloaded' });
    assert.doesNotMatch(logs(), /TLSv1\.3: records stay in OpenSSL/);
  } finally {
    await sc.stop();
  }
});

/** `openssl s_client` (TLS 1.3, -crlf) as a raw TLS client whose stdin takes commands. */
function sClient(port) {
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-tls1_3', '-crlf'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const client = { child, out: '', err: '' };
  child.stdout.setEncoding('latin1');
  child.stdout.on('data', (d) => (client.out += d));
  child.stderr.on('data', (d) => (client.err += d));
  client.send = (text) => child.stdin.write(text);
  // One stdin read per command: s_client takes a chunk starting with K as "key update".
  client.keyUpdate = async () => {
    const before = client.err.split('KEYUPDATE').length;
    client.send('K\n');
    await waitUntil(() => client.err.split('KEYUPDATE').length > before, { what: 's_client to send a KeyUpdate' });
    await new Promise((r) => setTimeout(r, 100));
  };
  return client;
}

test('a KeyUpdate from openssl s_client mid-stream: requests, SSE and WebSocket go on', async () => {
  const cert = makeCertificate('keyupdate');
  const sc = await startSidecar(['--tls-cert', cert.cert, '--tls-key', cert.key]);
  const clients = [];
  try {
    // SSE, after a first request on the same connection: the second request is read
    // with the client's next key, the stream's messages go out under ours.
    const ch = uniqueChannel('tls-ku-sse');
    const sse = sClient(sc.port);
    clients.push(sse);
    await waitUntil(() => sse.out.includes('Verify return code'), { what: 's_client handshake' });
    sse.send(`GET /livez HTTP/1.1\nHost: localhost\n\n`);
    await waitUntil(() => /HTTP\/1\.1 200/.test(sse.out), { what: 'the first answer' });
    await sse.keyUpdate();
    sse.send(`GET /sse?ch=${ch} HTTP/1.1\nHost: localhost\n\n`);
    await waitUntil(() => sse.out.includes('text/event-stream'), { what: 'the SSE answer after a KeyUpdate' });
    await publishOk(sc, ch, 'ku-sse-one');
    await waitUntil(() => sse.out.includes('ku-sse-one'), { what: 'the first SSE message' });
    await sse.keyUpdate();
    await publishOk(sc, ch, 'ku-sse-two');
    await waitUntil(() => sse.out.includes('ku-sse-two'), { what: 'an SSE message after a mid-stream KeyUpdate' });
    await sse.keyUpdate();
    await sse.keyUpdate();
    await publishOk(sc, ch, 'ku-sse-three');
    await waitUntil(() => sse.out.includes('ku-sse-three'), { what: 'an SSE message after two more' });

    // WebSocket: the upgrade by hand, then the frames' text in s_client's output.
    const wch = uniqueChannel('tls-ku-ws');
    const ws = sClient(sc.port);
    clients.push(ws);
    await waitUntil(() => ws.out.includes('Verify return code'), { what: 's_client handshake' });
    ws.send(
      `GET /ws?ch=${wch} HTTP/1.1\nHost: localhost\nUpgrade: websocket\nConnection: Upgrade\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n`,
    );
    await waitUntil(() => ws.out.includes('"subscribed"'), { what: 'the WebSocket subscription' });
    await publishOk(sc, wch, 'ku-ws-one');
    await waitUntil(() => ws.out.includes('ku-ws-one'), { what: 'the first WebSocket message' });
    await ws.keyUpdate();
    await publishOk(sc, wch, 'ku-ws-two');
    await waitUntil(() => ws.out.includes('ku-ws-two'), { what: 'a WebSocket message after a KeyUpdate' });
    assert.doesNotMatch(sse.err + ws.err, /alert|SSL routines/i);
  } finally {
    for (const c of clients) c.child.kill();
    await sc.stop();
  }
});
