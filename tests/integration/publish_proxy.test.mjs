// The publish policy behind a real reverse proxy, with the SHIPPED recipe
// (deploy/nginx/comet-http.conf included in http { } with only its upstream address
// changed, deploy/nginx/comet-locations.conf included in server { }): a browser-facing proxy must
// never let anyone publish. The recipe refuses /comet/pub itself, and the sidecar refuses
// a keyless publish that comes through a proxy (public listener: key required; publish
// listener: X-Forwarded-For, which the recipe sets, marks the request as relayed) even
// where that rule is missing. Streams still go through. Optionally the same through
// Apache (deploy/apache/comet-proxy.conf, included unchanged after a Define of
// COMET_SIDECAR) when apache2 is installed.
//
// Needs nginx (Debian package "nginx"; COMET_NGINX_BIN to use another binary). The
// Apache part needs apache2 (COMET_APACHE_BIN, COMET_APACHE_MODULES) or is skipped.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { openEventSource, openWs, closeWs } from './lib/clients.mjs';
import { canConnect, findBinary, killGroup } from './lib/processes.mjs';
import { freePort } from './lib/redis.mjs';
import { poll, publishOk, rawRequest, startSidecar, uniqueChannel, waitUntil, withTimeout } from './lib/sidecar.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NGINX_HTTP_RECIPE = path.join(repoRoot, 'deploy/nginx/comet-http.conf');
const NGINX_LOCATIONS_RECIPE = path.join(repoRoot, 'deploy/nginx/comet-locations.conf');
const APACHE_RECIPE = path.join(repoRoot, 'deploy/apache/comet-proxy.conf');
const KEY = 'k3y-for-the-proxy-test';
const EVIL = 'https://evil.example';

// ---------------------------------------------------------------------------------
// Helpers

/**
 * One HTTP request on a fresh connection (no pooling, any header allowed, Origin
 * included). Returns {status, headers, text, json}.
 */
function request(url, { method = 'GET', headers = {}, body, timeoutMs = 5000 } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => {
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    }),
    timeoutMs,
    `${method} ${url}`,
  );
}

/** POST `data` to `<base>/pub/<ch>` (base: a listener, or a proxy's /comet). */
function post(base, ch, data, headers = {}) {
  return request(`${base}/pub/${ch}`, { method: 'POST', headers, body: data });
}

/** Asserts that nothing was ever published to `ch` (a wait=0 poll still starts at `@.0`). */
async function assertNothingPublished(sidecar, ch) {
  const res = await poll(sidecar, { ch, wait: '0' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.cursor, `${ch}@.0`, `${ch} must have no message`);
  assert.deepEqual(res.json.messages, []);
}

/** The messages of `ch` (from its beginning). */
async function messagesOf(sidecar, ch) {
  const res = await poll(sidecar, { ch, cursor: `${ch}@.0`, wait: '0' });
  assert.equal(res.status, 200, res.text);
  return res.json.messages;
}

/** Asserts a refusal that no browser may read with credentials. */
function assertNoCredentials(res, what) {
  assert.equal(res.headers['access-control-allow-credentials'], undefined, `${what}: no Access-Control-Allow-Credentials`);
}

/** Asserts a 403 written by the sidecar (its JSON error body), not by the proxy. */
function assertSidecarRefusal(res, status, what) {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.text}`);
  assert.ok(res.json, `${what}: the sidecar's JSON error body, got ${JSON.stringify(res.text.slice(0, 200))}`);
  assert.equal(res.json.status, status, what);
  assert.equal(typeof res.json.error, 'string', what);
}

/** Asserts a 403 written by the proxy itself (the request never reached the sidecar). */
function assertProxyRefusal(res, what) {
  assert.equal(res.status, 403, `${what}: ${res.status} ${res.text}`);
  assert.equal(res.json, undefined, `${what}: refused by the proxy, not by the sidecar: ${res.text.slice(0, 200)}`);
}

// ---------------------------------------------------------------------------------
// nginx with the shipped recipe

const NGINX_BIN = findBinary('COMET_NGINX_BIN', 'nginx', ['/usr/sbin/nginx', '/usr/local/sbin/nginx']);

/**
 * The shipped recipe, adapted to a test: comet-http.conf (the upstream block and the
 * map, http level) with the server address replaced by `upstream`, and
 * comet-locations.conf (server level) as it is, or without the /comet/pub refusal when
 * `deny` is false. Returns the two files' texts; the shipped locations file is included
 * from the repository itself when nothing changes.
 */
function adaptNginxRecipe({ upstream, deny = true }) {
  const httpRecipe = readFileSync(NGINX_HTTP_RECIPE, 'utf8');
  const servers = [...httpRecipe.matchAll(/^\s*server\s+([^\s;]+)[^;]*;/gm)].map((m) => m[1]);
  // The recipe proxies the public listener (8080) and never the publish listener (8081).
  assert.deepEqual(servers, ['127.0.0.1:8080'], `${NGINX_HTTP_RECIPE}: upstream servers`);
  assert.match(httpRecipe, /^map \$http_upgrade \$connection_upgrade \{[^}]*''\s+'';[^}]*\}/m, `${NGINX_HTTP_RECIPE}: the map`);
  const http = httpRecipe.replace(/(^\s*server\s+)127\.0\.0\.1:8080;/m, `$1${upstream};`);
  let server = readFileSync(NGINX_LOCATIONS_RECIPE, 'utf8');
  const denyBlock = /^location\s+(?:\^~\s+)?\/comet\/pub\/?\s*\{[^}]*return\s+403;[^}]*\}[ \t]*\n/m;
  assert.match(server, denyBlock, `${NGINX_LOCATIONS_RECIPE}: the /comet/pub refusal`);
  if (!deny) server = server.replace(denyBlock, '');
  return { http, server: deny ? null : server };
}

class Nginx {
  /**
   * Runs nginx with the recipe adapted to `upstream` on a free loopback port, in a
   * temporary prefix, as the current user. `url` is its base URL.
   */
  static async start({ upstream, deny = true, name = 'nginx' }) {
    if (!NGINX_BIN || !existsSync(NGINX_BIN)) {
      throw new Error(
        'nginx not found: this test runs the shipped deploy/nginx/comet-*.conf in a real nginx. ' +
          'Install the Debian package "nginx" (apt-get install nginx), or set COMET_NGINX_BIN',
      );
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), `comet-${name}-`));
    const port = await freePort();
    const { http: httpPart, server } = adaptNginxRecipe({ upstream, deny });
    // Both parts included as their comments say: http-level and server-level files.
    writeFileSync(path.join(dir, 'comet-http.conf'), httpPart);
    const locations = server === null ? NGINX_LOCATIONS_RECIPE : path.join(dir, 'comet-locations.conf');
    if (server !== null) writeFileSync(locations, server);
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
    for (const t of temp) mkdirSync(path.join(dir, t));
    const conf = [
      'worker_processes 1;',
      'events { worker_connections 256; }',
      'http {',
      '  access_log off;',
      ...temp.map((t) => `  ${t}_temp_path ${path.join(dir, t)};`),
      `  include ${path.join(dir, 'comet-http.conf')};`,
      '  server {',
      `    listen 127.0.0.1:${port};`,
      '    server_name localhost;',
      `    include ${locations};`,
      '  }',
      '}',
      '',
    ].join('\n');
    writeFileSync(path.join(dir, 'nginx.conf'), conf);
    const child = spawn(
      NGINX_BIN,
      ['-e', 'stderr', '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')}; error_log stderr;`],
      // Its own process group, so a failed stop can kill the workers too.
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    const proc = new Nginx(child, dir, port, conf);
    await proc.#waitReady();
    return proc;
  }

  constructor(child, dir, port, conf) {
    this.child = child;
    this.dir = dir;
    this.port = port;
    this.conf = conf;
    this.output = '';
    this.exit = null;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c) => {
      this.output += c;
    });
    child.stderr.on('data', (c) => {
      this.output += c;
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      child.on('error', (error) => {
        this.exit = { code: null, signal: null, error };
        resolve(this.exit);
      });
    });
    // No nginx outlives the test process.
    this.onExit = () => killGroup(child);
    process.on('exit', this.onExit);
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The recipe's prefix on this proxy. */
  get comet() {
    return `${this.url}/comet`;
  }

  async #waitReady() {
    try {
      await waitUntil(
        async () => {
          if (this.exit) throw new Error(`nginx exited at start (${JSON.stringify(this.exit)})`);
          return canConnect(this.port);
        },
        { timeoutMs: 10000, intervalMs: 50, what: `nginx to listen on ${this.port}` },
      );
    } catch (err) {
      await this.stop();
      throw new Error(`${err.message}\n--- nginx output ---\n${this.output}\n--- nginx.conf ---\n${this.conf}`);
    }
  }

  async stop() {
    if (this.exit === null) {
      this.child.kill('SIGTERM');
      try {
        await withTimeout(this.exited, 10000, 'nginx to exit after SIGTERM');
      } catch {
        killGroup(this.child);
        await this.exited;
      }
    }
    process.off('exit', this.onExit);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Stops every item (skipping ones never started), then reports the first failure. */
async function stopAll(items) {
  const errors = [];
  for (const item of items) {
    try {
      await item?.stop();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}

/** GET url with Accept-Encoding: gzip: the sidecar's gzip copy of comet.js, unchanged. */
async function assertCometJsCompressed(url, proxy) {
  const { status, headers } = await new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { 'Accept-Encoding': 'gzip' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.on('error', reject);
  });
  assert.equal(status, 200, `GET comet.js through ${proxy}`);
  assert.equal(headers['content-encoding'], 'gzip', `comet.js through ${proxy} is gzip-compressed`);
  assert.match(headers.etag ?? '', /-gz"$/, `the sidecar's gzip ETag survives ${proxy}`);
}

// ---------------------------------------------------------------------------------

describe('nginx with deploy/nginx/comet-{http,locations}.conf, sidecar without a publish key', () => {
  let sidecar;
  let shipped; // the recipe as shipped
  let noDeny; // the recipe without its /comet/pub refusal
  let misrouted; // the recipe without the refusal, its upstream pointed at the publish listener

  before(async () => {
    sidecar = await startSidecar(['--workers', '1']);
    assert.ok(sidecar.publishPort, 'the sidecar prints its publish listener');
    shipped = await Nginx.start({ upstream: `127.0.0.1:${sidecar.port}`, name: 'nginx-shipped' });
    noDeny = await Nginx.start({ upstream: `127.0.0.1:${sidecar.port}`, deny: false, name: 'nginx-nodeny' });
    misrouted = await Nginx.start({ upstream: `127.0.0.1:${sidecar.publishPort}`, deny: false, name: 'nginx-misrouted' });
  });
  after(async () => {
    await stopAll([shipped, noDeny, misrouted]);
    await sidecar?.stop();
  });

  test('(a) a keyless publish through the shipped recipe is refused by nginx, nothing is published', async () => {
    const ch = uniqueChannel('proxy-a');
    for (const [target, method] of [
      [`/comet/pub/${ch}`, 'POST'],
      [`/comet/pub/${ch}`, 'PUT'],
      [`/comet/pub/${ch}?event=x`, 'POST'],
      // Spellings that reach the sidecar's /pub after nginx decodes and merges the path.
      [`/comet/%70ub/${ch}`, 'POST'],
      [`/comet//pub/${ch}`, 'POST'],
      [`/comet/pub%2F${ch}`, 'POST'],
    ]) {
      const res = await request(`${shipped.url}${target}`, { method, body: 'hi' });
      assertProxyRefusal(res, `${method} ${target}`);
    }
    await assertNothingPublished(sidecar, ch);
  });

  test('(b) without the recipe\'s refusal, the sidecar itself refuses a keyless publish through the proxy', async () => {
    const ch = uniqueChannel('proxy-b');
    const res = await post(noDeny.comet, ch, 'hi');
    assertSidecarRefusal(res, 403, 'keyless publish relayed to the public listener');
    assert.match(res.json.error, /publish-key|publish listener/);
    await assertNothingPublished(sidecar, ch);
    // The same publish straight to the publish listener (the app on this host) works.
    await publishOk(sidecar, ch, 'from the app');
    assert.deepEqual((await messagesOf(sidecar, ch)).map((m) => m.data), ['from the app']);
  });

  test('(b) even a proxy pointed at the publish listener by mistake relays nothing: the recipe\'s X-Forwarded-For marks it', async () => {
    const ch = uniqueChannel('proxy-b-misrouted');
    const res = await post(misrouted.comet, ch, 'hi');
    assertSidecarRefusal(res, 403, 'keyless publish relayed to the publish listener');
    await assertNothingPublished(sidecar, ch);
  });

  test('(d) a cross-origin browser-style publish is refused everywhere, never with credentials', async () => {
    const ch = uniqueChannel('proxy-d');
    const headers = { Origin: EVIL, 'Content-Type': 'text/plain' };
    const direct = await post(sidecar.url, ch, 'hi', headers);
    assertSidecarRefusal(direct, 403, 'Origin on the public listener');
    assertNoCredentials(direct, 'public listener');
    const onPublishListener = await post(sidecar.publishUrl, ch, 'hi', headers);
    assertSidecarRefusal(onPublishListener, 403, 'Origin on the publish listener');
    assertNoCredentials(onPublishListener, 'publish listener');
    const viaShipped = await post(shipped.comet, ch, 'hi', headers);
    assertProxyRefusal(viaShipped, 'Origin through the shipped recipe');
    assertNoCredentials(viaShipped, 'shipped recipe');
    const viaNoDeny = await post(noDeny.comet, ch, 'hi', headers);
    assertSidecarRefusal(viaNoDeny, 403, 'Origin through the recipe without its refusal');
    assertNoCredentials(viaNoDeny, 'recipe without refusal');
    // The preflight a browser would send first does not grant credentials either.
    const preflight = await request(`${noDeny.comet}/pub/${ch}`, {
      method: 'OPTIONS',
      headers: { Origin: EVIL, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'x-comet-key' },
    });
    assertNoCredentials(preflight, 'preflight');
    await assertNothingPublished(sidecar, ch);
  });

  test('(e) SSE through the shipped recipe delivers what the app publishes on the publish listener', async () => {
    const ch = uniqueChannel('proxy-e');
    const es = openEventSource(`${shipped.comet}/sse?ch=${ch}&format=json`);
    try {
      await es.opens.take(5000);
      const sent = await publishOk(sidecar, ch, 'through nginx');
      const ev = await es.events.take(5000);
      const envelope = JSON.parse(ev.data);
      assert.equal(envelope.ch, ch);
      assert.equal(envelope.id, sent.id);
      assert.equal(envelope.data, 'through nginx');
    } finally {
      es.es.close();
    }
  });

  test('comet.js arrives through the shipped recipe gzip-compressed by the sidecar, with its ETag', async () => {
    await assertCometJsCompressed(`${shipped.comet}/comet.js`, 'nginx');
  });

  test('(e) WebSocket through the shipped recipe delivers too', async () => {
    const ch = uniqueChannel('proxy-e-ws');
    const ws = await openWs(`ws://127.0.0.1:${shipped.port}/comet/ws?ch=${ch}`);
    try {
      const subscribed = await ws.messages.take(5000, (m) => m.type === 'subscribed');
      assert.equal(subscribed.ch, ch);
      const sent = await publishOk(sidecar, ch, 'ws through nginx');
      const msg = await ws.messages.take(5000, (m) => m.ch === ch && m.id !== undefined);
      assert.equal(msg.id, sent.id);
      assert.equal(msg.data, 'ws through nginx');
    } finally {
      await closeWs(ws);
    }
  });
});

describe('nginx with deploy/nginx/comet-{http,locations}.conf, sidecar with --publish-key', () => {
  let sidecar;
  let shipped;
  let noDeny;

  before(async () => {
    sidecar = await startSidecar(['--workers', '1', '--publish-key', KEY]);
    shipped = await Nginx.start({ upstream: `127.0.0.1:${sidecar.port}`, name: 'nginx-shipped-key' });
    noDeny = await Nginx.start({ upstream: `127.0.0.1:${sidecar.port}`, deny: false, name: 'nginx-nodeny-key' });
  });
  after(async () => {
    await stopAll([shipped, noDeny]);
    await sidecar?.stop();
  });

  test('(c) the shipped recipe refuses /comet/pub even with the key: the app publishes to the sidecar directly', async () => {
    const ch = uniqueChannel('proxy-c-shipped');
    for (const headers of [{ 'X-Comet-Key': KEY }, { Authorization: `Bearer ${KEY}` }]) {
      assertProxyRefusal(await post(shipped.comet, ch, 'hi', headers), `through the shipped recipe with ${Object.keys(headers)[0]}`);
    }
    assertProxyRefusal(await request(`${shipped.comet}/pub/${ch}?key=${KEY}`, { method: 'POST', body: 'hi' }), '?key=');
    await assertNothingPublished(sidecar, ch);
    // Straight to the public listener (an app on another host) with the key: published.
    const direct = await post(sidecar.url, ch, 'with the key', { 'X-Comet-Key': KEY });
    assert.equal(direct.status, 200, direct.text);
    assert.equal(direct.json.id, 1);
    assert.deepEqual((await messagesOf(sidecar, ch)).map((m) => m.data), ['with the key']);
  });

  test('(c) without the recipe\'s refusal, only the key publishes through the proxy', async () => {
    const ch = uniqueChannel('proxy-c-nodeny');
    assertSidecarRefusal(await post(noDeny.comet, ch, 'no key'), 401, 'keyless through the proxy');
    assertSidecarRefusal(await post(noDeny.comet, ch, 'wrong key', { 'X-Comet-Key': 'nope' }), 401, 'wrong key');
    await assertNothingPublished(sidecar, ch);
    const ok = await post(noDeny.comet, ch, 'keyed through nginx', { 'X-Comet-Key': KEY });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual((await messagesOf(sidecar, ch)).map((m) => m.data), ['keyed through nginx']);
  });

  test('(d) with a key configured, a browser-style publish without it is refused, never with credentials', async () => {
    const ch = uniqueChannel('proxy-d-key');
    const headers = { Origin: EVIL };
    for (const [base, via] of [
      [sidecar.url, 'public listener'],
      [sidecar.publishUrl, 'publish listener'],
      [noDeny.comet, 'proxy without refusal'],
    ]) {
      const res = await post(base, ch, 'hi', headers);
      assertSidecarRefusal(res, 401, `Origin, no key, ${via}`);
      assertNoCredentials(res, via);
    }
    const viaShipped = await post(shipped.comet, ch, 'hi', headers);
    assertProxyRefusal(viaShipped, 'Origin through the shipped recipe');
    assertNoCredentials(viaShipped, 'shipped recipe');
    await assertNothingPublished(sidecar, ch);
    // With the key the publish goes through, and still grants no credentials.
    const keyed = await post(sidecar.url, ch, 'keyed', { ...headers, 'X-Comet-Key': KEY });
    assert.equal(keyed.status, 200, keyed.text);
    assertNoCredentials(keyed, 'keyed publish with Origin');
  });

  test('(e) the publish listener still needs the key once one is configured; SSE through the proxy works', async () => {
    const ch = uniqueChannel('proxy-e-key');
    const es = openEventSource(`${shipped.comet}/sse?ch=${ch}&format=json`);
    try {
      await es.opens.take(5000);
      assertSidecarRefusal(await post(sidecar.publishUrl, ch, 'keyless'), 401, 'keyless on the publish listener');
      const sent = await post(sidecar.publishUrl, ch, 'keyed', { 'X-Comet-Key': KEY });
      assert.equal(sent.status, 200, sent.text);
      const envelope = JSON.parse((await es.events.take(5000)).data);
      assert.deepEqual([envelope.id, envelope.data], [sent.json.id, 'keyed']);
    } finally {
      es.es.close();
    }
  });
});

describe('nginx keeps its upstream connections to the sidecar alive', () => {
  test('requests through the shipped recipe reuse idle upstream connections (keepalive)', async () => {
    const sidecar = await startSidecar(['--workers', '1']);
    let nginx;
    try {
      nginx = await Nginx.start({ upstream: `127.0.0.1:${sidecar.port}`, name: 'nginx-keepalive' });
      for (let i = 0; i < 5; i++) {
        // A new client connection each time: only nginx's upstream pool can be reused.
        const res = await request(`${nginx.comet}/poll?ch=keepalive&wait=0`);
        assert.equal(res.status, 200);
      }
      // The sidecar still holds nginx's idle upstream connection(s) besides this one.
      // With "Connection: close" sent upstream (the recipe's old map) it held none.
      const health = await rawRequest(sidecar.publishPort, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.ok(health.json.connections >= 2, `connections open at the sidecar: ${health.json.connections}`);
    } finally {
      await sidecar.stop();
      await nginx?.stop();
    }
  });
});

// ---------------------------------------------------------------------------------
// Apache with the shipped recipe (optional)

const APACHE_BIN = findBinary('COMET_APACHE_BIN', 'apache2', ['/usr/sbin/apache2', '/usr/sbin/httpd']);
const APACHE_MODULES = process.env.COMET_APACHE_MODULES || '/usr/lib/apache2/modules';

class Apache {
  static async start({ sidecarPort }) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-apache-'));
    mkdirSync(path.join(dir, 'htdocs'));
    mkdirSync(path.join(dir, 'run'));
    const port = await freePort();
    const recipe = readFileSync(APACHE_RECIPE, 'utf8');
    const directives = recipe.replace(/^\s*#.*$/gm, '');
    assert.doesNotMatch(directives, /:8081\b/, `${APACHE_RECIPE} must not proxy to the publish listener`);
    assert.match(recipe, /<Location "\/comet\/pub">\s*Require all denied\s*<\/Location>/, `${APACHE_RECIPE}: the /comet/pub refusal`);
    // The recipe's sidecar address comes from COMET_SIDECAR, defined before it.
    assert.match(recipe, /ProxyPass "\$\{COMET_SIDECAR\}\/"/, `${APACHE_RECIPE}: ProxyPass to \${COMET_SIDECAR}`);
    const compiledIn = execFileSync(APACHE_BIN, ['-l'], { encoding: 'utf8' });
    // What the recipe says it needs (a2enmod proxy proxy_http headers env), nothing more.
    const modules = ['mpm_event', 'authz_core', 'proxy', 'proxy_http', 'headers', 'env']
      .filter((m) => !compiledIn.includes(`mod_${m}.c`))
      .map((m) => `LoadModule ${m}_module ${path.join(APACHE_MODULES, `mod_${m}.so`)}`);
    const conf = [
      `ServerRoot "${dir}"`,
      `DefaultRuntimeDir "${path.join(dir, 'run')}"`,
      `PidFile "${path.join(dir, 'run/httpd.pid')}"`,
      ...modules,
      ...(process.getuid?.() === 0 ? ['User nobody', 'Group nogroup'] : []),
      `Listen 127.0.0.1:${port}`,
      'ServerName localhost',
      '<Directory "/">',
      '  AllowOverride None',
      '</Directory>',
      `ErrorLog "${path.join(dir, 'error.log')}"`,
      'LogLevel warn',
      `DocumentRoot "${path.join(dir, 'htdocs')}"`,
      `Define COMET_SIDECAR http://127.0.0.1:${sidecarPort}`,
      `Include "${APACHE_RECIPE}"`,
      '',
    ].join('\n');
    writeFileSync(path.join(dir, 'httpd.conf'), conf);
    const child = spawn(APACHE_BIN, ['-d', dir, '-f', path.join(dir, 'httpd.conf'), '-D', 'FOREGROUND'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a failed stop can kill the children too
    });
    const proc = new Apache(child, dir, port);
    try {
      await waitUntil(
        async () => {
          if (proc.exit) throw new Error(`apache2 exited at start (${JSON.stringify(proc.exit)})`);
          return canConnect(port);
        },
        { timeoutMs: 10000, intervalMs: 50, what: `apache2 to listen on ${port}` },
      );
    } catch (err) {
      const log = existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
      await proc.stop();
      throw new Error(`${err.message}\n--- apache2 output ---\n${proc.output}${log}\n--- httpd.conf ---\n${conf}`);
    }
    return proc;
  }

  constructor(child, dir, port) {
    this.child = child;
    this.dir = dir;
    this.port = port;
    this.output = '';
    this.exit = null;
    for (const s of [child.stdout, child.stderr]) {
      s.setEncoding('utf8');
      s.on('data', (c) => {
        this.output += c;
      });
    }
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve((this.exit = { code, signal })));
      child.on('error', (error) => resolve((this.exit = { code: null, signal: null, error })));
    });
    this.onExit = () => killGroup(child);
    process.on('exit', this.onExit);
  }

  get comet() {
    return `http://127.0.0.1:${this.port}/comet`;
  }

  async stop() {
    if (this.exit === null) {
      this.child.kill('SIGTERM');
      try {
        await withTimeout(this.exited, 10000, 'apache2 to exit after SIGTERM');
      } catch {
        killGroup(this.child);
        await this.exited;
      }
    }
    process.off('exit', this.onExit);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('Apache with deploy/apache/comet-proxy.conf (optional)', () => {
  test('a keyless publish through Apache is refused, nothing is published; SSE goes through', async (t) => {
    if (!APACHE_BIN || !existsSync(APACHE_BIN)) {
      t.skip('apache2 not installed');
      return;
    }
    const sidecar = await startSidecar(['--workers', '1']);
    let apache;
    try {
      apache = await Apache.start({ sidecarPort: sidecar.port });
      const ch = uniqueChannel('apache');
      for (const [target, headers] of [
        [`/pub/${ch}`, {}],
        [`/pub/${ch}`, { Origin: EVIL }],
        [`/%70ub/${ch}`, {}],
      ]) {
        const res = await request(`${apache.comet}${target}`, { method: 'POST', headers, body: 'hi' });
        assertProxyRefusal(res, `POST /comet${target} through Apache`);
        assertNoCredentials(res, 'Apache');
      }
      await assertNothingPublished(sidecar, ch);
      const es = openEventSource(`${apache.comet}/sse?ch=${ch}&format=json`);
      try {
        await es.opens.take(5000);
        const sent = await publishOk(sidecar, ch, 'through apache');
        const envelope = JSON.parse((await es.events.take(5000)).data);
        assert.deepEqual([envelope.id, envelope.data], [sent.id, 'through apache']);
      } finally {
        es.es.close();
      }
      // comet.js keeps the sidecar's gzip (and its ETag) through the recipe.
      await assertCometJsCompressed(`${apache.comet}/comet.js`, 'Apache');
      // WebSocket through the recipe (the handshake must reach the sidecar as an
      // upgrade: a RewriteRule inside <Location> ran after ProxyPass and never did).
      const ws = await openWs(`ws://127.0.0.1:${apache.port}/comet/ws?ch=${ch}`);
      try {
        assert.equal((await ws.messages.take(5000)).type, 'subscribed');
        await publishOk(sidecar, ch, 'ws through apache');
        assert.equal((await ws.messages.take(5000)).data, 'ws through apache');
      } finally {
        ws.ws.terminate();
      }
    } finally {
      // The sidecar first: an Apache child still relaying a stream would only notice
      // the closed client at the next heartbeat, and hold up Apache's exit until then.
      await sidecar.stop();
      await apache?.stop();
    }
  });
});
