// The demo app (deploy/demo-app) served by Apache with the prefork MPM and mod_php, the
// sidecar behind it through the SHIPPED deploy/apache/comet-proxy.conf (included
// unchanged, COMET_SIDECAR defined before it): every comet.js transport forced in turn,
// chat lines posted through the PHP form and counted on a second page, the dashboard fed
// by the PHP CLI script, the private inbox with comet_token(). See lib/deploy_matrix.mjs.
// Also: the recipe's default sidecar address, and what one open stream costs under
// prefork (MaxRequestWorkers processes = that many open browser connections).
//
// Needs apache2-bin, libapache2-mod-php, php-cli, chromium.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import { waitUntil } from './lib/harness.mjs';
import { DEMO_APP, runDeployMatrix } from './lib/deploy_matrix.mjs';
import { apacheDumpRunConfig, startApache } from './lib/webservers.mjs';

runDeployMatrix({
  recipe: 'apache+mod_php',
  expectSapi: 'apache2handler',
  startFront: ({ sidecar, appEnv }) => startApache({ docRoot: DEMO_APP, sidecarUrl: sidecar.url, env: appEnv }),
  extraTests: (ctx) => {
    test('prefork cost: with MaxRequestWorkers 4, four open SSE streams through the recipe leave PHP no process', async () => {
      const apache = await startApache({ docRoot: DEMO_APP, sidecarUrl: ctx.sidecar.url, env: ctx.appEnv, maxWorkers: 4, name: 'apache-4' });
      const streams = [];
      try {
        const before = await timedGet(`${apache.url}/index.php`, 5000);
        assert.equal(before.status, 200);
        for (let i = 0; i < 4; i++) {
          streams.push(
            await new Promise((resolve, reject) => {
              const req = http.get(`${apache.url}/comet/sse?ch=prefork-${i}`, { agent: false }, (res) => {
                assert.equal(res.statusCode, 200);
                res.once('data', () => resolve(req));
              });
              req.on('error', reject);
            }),
          );
        }
        const blocked = await timedGet(`${apache.url}/index.php`, 3000);
        assert.equal(blocked.status, 'timeout', `the PHP page answered while 4 streams held the 4 processes: ${JSON.stringify(blocked)}`);
        for (const req of streams) req.destroy();
        streams.length = 0;
        const closedAt = performance.now();
        // A closed client is noticed by its Apache process at the stream's next write:
        // the sidecar's heartbeat (15 s here) at the latest.
        const after = await waitUntil(async () => {
          const r = await timedGet(`${apache.url}/index.php`, 2000);
          return r.status === 200 ? r : null;
        }, { timeoutMs: 25000, intervalMs: 200, what: 'the PHP page once the streams closed' });
        console.log(
          `DEPLOY apache+mod_php prefork: MaxRequestWorkers 4: index.php ${Math.round(before.ms)} ms with no stream open; ` +
            `no answer within 3000 ms with 4 SSE streams open; answered again ${Math.round(performance.now() - closedAt)} ms after ` +
            `the browsers closed them (${Math.round(after.ms)} ms for that request)`,
        );
      } finally {
        for (const req of streams) req.destroy();
        await apache.stop();
      }
    });

    test("the recipe's sidecar address: http://127.0.0.1:8080 unless COMET_SIDECAR is defined before it", async () => {
      assert.match(await apacheDumpRunConfig(), /^Define: COMET_SIDECAR=http:\/\/127\.0\.0\.1:8080$/m);
      const defined = await apacheDumpRunConfig({ sidecarUrl: 'http://sidecar:8080' });
      assert.match(defined, /^Define: COMET_SIDECAR=http:\/\/sidecar:8080$/m);
      assert.doesNotMatch(defined, /127\.0\.0\.1:8080/);
    });
  },
});

/** GET `url` on a fresh connection: {status, ms}, status 'timeout' after `timeoutMs`. */
function timedGet(url, timeoutMs) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      resolve({ status: 'timeout', ms: performance.now() - t0 });
    });
    req.on('error', (err) => resolve({ status: `error ${err.code}`, ms: performance.now() - t0 }));
  });
}
