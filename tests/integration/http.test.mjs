// HTTP plumbing: keep-alive, pipelining (also behind a held long-poll), timeouts, CORS
// and origins, /healthz, /comet.js and --static-dir.

import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { gunzipSync } from 'node:zlib';

import {
  delay,
  headCursor,
  healthz,
  publishOk,
  RawClient,
  rawRequest,
  SIDECAR_BIN,
  SseStream,
  startSidecar,
  uniqueChannel,
} from './lib/sidecar.mjs';

const WITH_KEY = { headers: { 'X-Comet-Key': 'k' } };
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** GET with exactly these headers (fetch would add and undo Accept-Encoding); raw body. */
function httpGet(port, target, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: target, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe('keep-alive and pipelining', () => {
  let sc;
  before(async () => {
    // Pipelines below mix publishes with polls on one connection: the public listener
    // publishes only with the key.
    sc = await startSidecar(['--workers', '2', '--request-timeout', '1s', '--publish-key', 'k']);
  });
  after(async () => {
    await sc?.stop();
  });

  test('three pipelined requests in one write are answered in order', async () => {
    const ch = uniqueChannel('pipe');
    const cursor = await headCursor(sc, ch);
    const client = await RawClient.connect(sc.port);
    try {
      client.write(
        'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' +
          `POST /pub/${ch}?key=k HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\npipelined` +
          `GET /poll?cursor=${encodeURIComponent(cursor)}&wait=0 HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      const first = await client.readResponse();
      const second = await client.readResponse();
      const third = await client.readResponse();
      assert.equal(first.status, 200);
      assert.equal(first.json.status, 'ok');
      assert.equal(second.status, 200);
      assert.equal(second.json.ch, ch);
      assert.equal(second.json.id, 1);
      assert.equal(third.status, 200);
      assert.deepEqual(
        third.json.messages.map((m) => m.data),
        ['pipelined'],
      );
      for (const r of [first, second, third]) assert.equal(r.headers.connection, 'keep-alive');
      assert.equal(client.buf.length, 0, 'nothing extra');
    } finally {
      client.destroy();
    }
  });

  test('requests split across reads at awkward places are answered in order', async () => {
    // The sidecar parses straight from the bytes just read and keeps only the rest; a
    // request that starts in one read and ends in another, with a whole request before
    // and after it, must come out the same as one write.
    const ch = uniqueChannel('split');
    const client = await RawClient.connect(sc.port);
    try {
      const pub = (body) => `POST /pub/${ch}?key=k HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const stream = pub('one') + pub('two') + pub('three') + 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
      const cuts = [5, pub('one').length + 7, pub('one').length + pub('two').length - 2, stream.length - 3];
      let from = 0;
      for (const cut of cuts) {
        client.write(stream.slice(from, cut));
        from = cut;
        await delay(30);
      }
      client.write(stream.slice(from));
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await client.readResponse()).json.id);
      assert.deepEqual(ids, [1, 2, 3]);
      assert.equal((await client.readResponse()).json.status, 'ok');
      assert.equal(client.buf.length, 0, 'nothing extra');
    } finally {
      client.destroy();
    }
  });

  test('a request pipelined behind a held long-poll waits for it', async () => {
    const ch = uniqueChannel('pipe-held');
    const cursor = await headCursor(sc, ch);
    const client = await RawClient.connect(sc.port);
    try {
      client.write(
        `GET /poll?cursor=${encodeURIComponent(cursor)} HTTP/1.1\r\nHost: x\r\n\r\n` +
          'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' +
          `GET /poll?ch=${ch}&wait=0 HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      await delay(200); // proving a negative: the held poll blocks the rest
      assert.equal(client.totalBytes, 0, 'nothing may be answered before the held poll');
      await publishOk(sc, ch, 'release', WITH_KEY);
      const held = await client.readResponse();
      assert.equal(held.status, 200);
      assert.deepEqual(
        held.json.messages.map((m) => m.data),
        ['release'],
      );
      const health = await client.readResponse();
      assert.equal(health.json.status, 'ok');
      const plain = await client.readResponse();
      assert.deepEqual(plain.json.messages, []);
      assert.equal(plain.json.cursor, held.json.cursor);
    } finally {
      client.destroy();
    }
  });

  test('a long pipeline (200 requests in one write) is answered in order', async () => {
    const client = await RawClient.connect(sc.port);
    try {
      let bytes = '';
      for (let i = 0; i < 200; i++) {
        bytes += i % 2 === 0 ? 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' : `GET /missing-${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
      }
      client.write(bytes);
      for (let i = 0; i < 200; i++) {
        const res = await client.readResponse();
        assert.equal(res.status, i % 2 === 0 ? 200 : 404, `response ${i}`);
      }
    } finally {
      client.destroy();
    }
  });

  test('Connection: close and HTTP/1.0 close after the answer; HTTP/1.0 keep-alive stays', async () => {
    const close = await RawClient.connect(sc.port);
    close.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal((await close.readResponse()).headers.connection, 'close');
    await close.waitClosed();

    const old = await RawClient.connect(sc.port);
    old.write('GET /healthz HTTP/1.0\r\n\r\n');
    const res = await old.readResponse();
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, 'close');
    await old.waitClosed();

    const oldKa = await RawClient.connect(sc.port);
    try {
      oldKa.write('GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
      assert.equal((await oldKa.readResponse()).headers.connection, 'keep-alive');
      oldKa.write('GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
      assert.equal((await oldKa.readResponse()).status, 200);
    } finally {
      oldKa.destroy();
    }
  });

  test('an idle keep-alive connection is closed after --request-timeout', async () => {
    const client = await RawClient.connect(sc.port);
    client.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await client.readResponse();
    const started = Date.now();
    await client.waitClosed(5000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 800, `closed after ${elapsed} ms with --request-timeout 1s`);
    assert.equal(client.buf.length, 0, 'an idle close sends nothing');
  });

  test('streams outlive --request-timeout: SSE and XHR streaming stay open while idle', async () => {
    // The request timeout guards reading a request; once a stream has started it must
    // not carry over (only heartbeats and the client's going away end a stream).
    const ch = uniqueChannel('outlive');
    const sse = await SseStream.open(sc.port, `/sse?ch=${ch}`);
    const xhr = await RawClient.connect(sc.port);
    try {
      xhr.write(`GET /stream?format=xhr&ch=${ch} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await delay(2500);
      await publishOk(sc, ch, 'still here', WITH_KEY);
      const m = await sse.nextEvent(3000);
      assert.equal(m.data, 'still here');
      await xhr.waitFor((buf) => buf.toString().includes('"data":"still here"') || undefined, 3000, 'the XHR stream message');
    } finally {
      sse.close();
      xhr.destroy();
    }
  });

  test('a request not completed within --request-timeout gets 408 and a close', async () => {
    const client = await RawClient.connect(sc.port);
    client.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const started = Date.now();
    const res = await client.readResponse(5000);
    assert.equal(res.status, 408);
    assert.equal(res.json.status, 408);
    await client.waitClosed(5000);
    assert.ok(Date.now() - started >= 800);
  });

  test('/healthz reports counters', async () => {
    const before = await healthz(sc);
    assert.equal(before.bus, 'embedded');
    for (const key of ['connections', 'subscriptions', 'published', 'slow_readers_cut']) {
      assert.equal(typeof before[key], 'number', key);
    }
    await publishOk(sc, uniqueChannel('count'), 'x', WITH_KEY);
    const afterPublish = await healthz(sc);
    assert.equal(afterPublish.published, before.published + 1);
  });

  test('/metrics exposes the counters in Prometheus text format', async () => {
    const ch = uniqueChannel('metrics');
    const sse = await rawRequest(sc.port, `GET /poll?ch=${ch}&wait=0 HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(sse.status, 200);
    const before = await rawRequest(sc.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(before.status, 200);
    assert.match(before.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    const value = (text, name) => {
      const line = text.split('\n').find((l) => l.startsWith(name + ' '));
      assert.ok(line, `${name} present`);
      return Number(line.slice(name.length + 1));
    };
    assert.match(before.body, /^# TYPE comet_published_total counter$/m);
    assert.match(before.body, /^comet_sessions\{transport="ws"\} \d+$/m);
    const published = value(before.body, 'comet_published_total');
    assert.ok(value(before.body, 'comet_connections') >= 1);
    await publishOk(sc, ch, 'x', WITH_KEY);
    const after = await rawRequest(sc.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(value(after.body, 'comet_published_total'), published + 1);
  });
});

describe('CORS and origins', () => {
  let sc;
  before(async () => {
    sc = await startSidecar(['--allowed-origins', 'https://a.example,https://b.example']);
  });
  after(async () => {
    await sc?.stop();
  });

  test('preflight: 204 with the allowed methods and headers for an allowed origin', async () => {
    const res = await rawRequest(
      sc.port,
      'OPTIONS /poll?ch=a HTTP/1.1\r\nHost: x\r\nOrigin: https://b.example\r\nAccess-Control-Request-Method: GET\r\n\r\n',
    );
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], 'https://b.example');
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    assert.match(res.headers.vary ?? '', /Origin/);
    assert.match(res.headers['access-control-allow-methods'], /GET/);
    for (const h of ['Content-Type', 'Last-Event-ID', 'X-Comet-Key', 'Authorization']) {
      assert.match(res.headers['access-control-allow-headers'], new RegExp(h));
    }
    const pub = await rawRequest(sc.port, 'OPTIONS /pub/a HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n');
    assert.equal(pub.status, 204);
    assert.match(pub.headers['access-control-allow-methods'], /POST/);
    const denied = await rawRequest(sc.port, 'OPTIONS /poll HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n');
    assert.equal(denied.status, 403);
  });

  test('allowed origins get CORS headers on poll, SSE and publish; others get 403', async () => {
    const ch = uniqueChannel('cors');
    const ok = await fetch(`${sc.url}/poll?ch=${ch}&wait=0`, { headers: { Origin: 'https://a.example' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://a.example');
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
    await ok.text();

    // A browser never publishes without the key (not even from a listed origin, not even
    // from loopback), and /pub never allows credentials.
    const keyless = await fetch(`${sc.url}/pub/${ch}`, { method: 'POST', body: 'x', headers: { Origin: 'https://a.example' } });
    assert.equal(keyless.status, 403);
    await keyless.text();
    const viaPublishListener = await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: 'x', headers: { Origin: 'https://a.example' } });
    assert.equal(viaPublishListener.status, 403);
    await viaPublishListener.text();

    const sse = await RawClient.connect(sc.port);
    try {
      sse.write(`GET /sse?ch=${ch} HTTP/1.1\r\nHost: x\r\nOrigin: https://b.example\r\n\r\n`);
      const head = await sse.waitFor((buf) => (buf.includes('\r\n\r\n') ? buf.toString('latin1') : undefined));
      assert.match(head, /^HTTP\/1\.1 200/);
      assert.match(head, /\r\nAccess-Control-Allow-Origin: https:\/\/b\.example\r\n/i);
    } finally {
      sse.destroy();
    }

    for (const request of [
      `GET /poll?ch=${ch}&wait=0 HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n`,
      `GET /sse?ch=${ch} HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n`,
      `POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example.evil\r\nContent-Length: 1\r\n\r\nx`,
      `GET /poll?ch=${ch}&wait=0 HTTP/1.1\r\nHost: x\r\nOrigin: null\r\n\r\n`,
    ]) {
      const res = await rawRequest(sc.port, request);
      assert.equal(res.status, 403, request);
      assert.equal(res.json.status, 403);
    }
  });

  test('requests without Origin (servers) need no CORS; JSONP needs a Referer from a listed origin', async () => {
    const plain = await rawRequest(sc.port, 'GET /poll?ch=a&wait=0 HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['access-control-allow-origin'], undefined);
    // A <script> tag sends no Origin: the Referer says which page embeds the answer.
    const jsonp = (extra) => rawRequest(sc.port, `GET /poll?ch=a&wait=0&callback=cb HTTP/1.1\r\nHost: x\r\n${extra}\r\n`);
    const listed = await jsonp('Referer: https://a.example/chat?room=1\r\n');
    assert.equal(listed.status, 200);
    assert.equal(listed.headers['access-control-allow-origin'], undefined);
    for (const extra of ['', 'Referer: https://evil.example/\r\n', 'Referer: https://a.example.evil/\r\n']) {
      const refused = await jsonp(extra);
      assert.equal(refused.status, 403, extra);
      assert.match(refused.json.error, /JSONP needs a Referer/);
    }
  });
});

describe('static files', () => {
  let sc;
  let dir;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'comet-static-'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>demo</title>');
    mkdirSync(path.join(dir, 'css'));
    writeFileSync(path.join(dir, 'css', 'site.css'), 'body{}');
    // What must never be served: a symlink out of the directory, dotfiles, dot-dirs.
    writeFileSync(path.join(dir, '.env'), 'SECRET=1');
    mkdirSync(path.join(dir, '.git'));
    writeFileSync(path.join(dir, '.git', 'config'), 'SECRET');
    symlinkSync('/etc/passwd', path.join(dir, 'passwd'));
    symlinkSync(path.join(dir, 'index.html'), path.join(dir, 'alias.html'));
    sc = await startSidecar(['--static-dir', dir]);
  });
  after(async () => {
    await sc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('files from --static-dir, index.html for /, /comet.js always', async () => {
    const index = await fetch(`${sc.url}/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await index.text(), '<!doctype html><title>demo</title>');
    const css = await fetch(`${sc.url}/css/site.css`);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal(await css.text(), 'body{}');
    const js = await fetch(`${sc.url}/comet.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type'), /^application\/javascript/);
    assert.ok((await js.text()).length > 0);
  });

  test('/comet.js is the built-in minified client with no flag; an ETag revalidation costs a 304', async () => {
    // The build minifies js-client/comet.js next to the binary (sidecar/comet.min.js).
    const minified = readFileSync(path.join(path.dirname(SIDECAR_BIN), 'comet.min.js'), 'utf8');
    const readable = readFileSync(path.join(repoRoot, 'js-client/comet.js'), 'utf8');
    const version = JSON.parse(readFileSync(path.join(repoRoot, 'js-client/package.json'), 'utf8')).version;
    assert.ok(minified.length < readable.length * 0.6, `minified ${minified.length} bytes vs readable ${readable.length}`);
    assert.match(minified, new RegExp(`^/\\*! comet\\.js ${version.replace(/\./g, '\\.')} `));
    // Same API as the readable build: evaluate both and compare what they export.
    const api = (source) => {
      const sandbox = { module: { exports: {} } };
      vm.runInNewContext(source, sandbox);
      const Comet = sandbox.module.exports;
      return { version: Comet.version, keys: Object.keys(Comet).sort() };
    };
    assert.deepEqual(api(minified), api(readable));
    assert.equal(api(minified).version, version);

    const res = await httpGet(sc.port, '/comet.js');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString('utf8'), minified);
    assert.equal(res.headers['content-encoding'], undefined, 'no Accept-Encoding, no gzip');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers.vary, 'Accept-Encoding');
    const etag = res.headers.etag;
    assert.match(etag, /^"[0-9a-f]{24}"$/);
    const client = await RawClient.connect(sc.port);
    try {
      client.write(`GET /comet.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: ${etag}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
      const again = await client.readResponse(5000, { noBody: true });
      assert.equal(again.status, 304);
      assert.equal(again.headers.etag, etag);
      assert.equal(again.headers['content-length'], undefined);
      assert.equal((await client.readResponse()).status, 200, 'no body after the 304: the next answer follows');
    } finally {
      client.destroy();
    }
  });

  test('/comet.js: gzip (compressed once) for browsers that accept it, with its own ETag', async () => {
    const minified = readFileSync(path.join(path.dirname(SIDECAR_BIN), 'comet.min.js'));
    const packed = await httpGet(sc.port, '/comet.js', { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(packed.status, 200);
    assert.equal(packed.headers['content-encoding'], 'gzip');
    assert.equal(packed.headers.vary, 'Accept-Encoding');
    assert.ok(gunzipSync(packed.body).equals(minified));
    assert.ok(packed.body.length < minified.length / 2, `gzip ${packed.body.length} bytes`);
    assert.match(packed.headers.etag, /^"[0-9a-f]{24}-gz"$/);
    // Compressed once: every answer is the same bytes.
    const again = await httpGet(sc.port, '/comet.js', { 'Accept-Encoding': 'gzip' });
    assert.ok(again.body.equals(packed.body));
    const revalidated = await httpGet(sc.port, '/comet.js', { 'Accept-Encoding': 'gzip', 'If-None-Match': packed.headers.etag });
    assert.equal(revalidated.status, 304);
    const refused = await httpGet(sc.port, '/comet.js', { 'Accept-Encoding': 'gzip;q=0' });
    assert.equal(refused.headers['content-encoding'], undefined);
    assert.ok(refused.body.equals(minified));
  });

  test('/comet-<version>.min.js may be cached for a year; another version is revalidated', async () => {
    const version = JSON.parse(readFileSync(path.join(repoRoot, 'js-client/package.json'), 'utf8')).version;
    const current = await httpGet(sc.port, `/comet-${version}.min.js`);
    assert.equal(current.status, 200);
    assert.equal(current.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.ok(current.body.equals(readFileSync(path.join(path.dirname(SIDECAR_BIN), 'comet.min.js'))));
    const older = await httpGet(sc.port, '/comet-0.0.0-old.min.js');
    assert.equal(older.status, 200, 'a page naming an older version still gets a client');
    assert.equal(older.headers['cache-control'], 'no-cache');
    assert.ok(older.body.equals(current.body));
  });

  test('HEAD has the headers of GET and no body; other methods 405; unknown 404', async () => {
    const client = await RawClient.connect(sc.port);
    try {
      client.write('HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      const head = await client.readResponse(5000, { noBody: true });
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String('<!doctype html><title>demo</title>'.length));
      const next = await client.readResponse();
      assert.equal(next.status, 200, 'HEAD sent no body: the next answer follows directly');
      assert.equal(next.json.status, 'ok');
    } finally {
      client.destroy();
    }
    const post = await fetch(`${sc.url}/index.html`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.match(post.headers.get('allow'), /GET/);
    for (const target of [
      '/nope.html',
      '/../../etc/passwd',
      '/%2E%2E/%2E%2E/etc/passwd',
      '/passwd',
      '/alias.html',
      '/.env',
      '/.git/config',
      '/css/../index.html%00',
      '/css',
    ]) {
      const res = await rawRequest(sc.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.ok(res.status === 404 || res.status === 400, `${target}: ${res.status}`);
      assert.doesNotMatch(res.body, /root:|SECRET/, target);
    }
  });
});
