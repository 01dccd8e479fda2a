// comet.js is the file the sidecar serves: it must be what js-client/src builds, ES5
// only, and a UMD module (CommonJS export, window.Comet as a plain <script>).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';
import * as acorn from 'acorn';

import { Comet, cometPath, repoRoot } from './load.mjs';

const require = createRequire(import.meta.url);
const source = readFileSync(cometPath, 'utf8');

test('comet.js is up to date with js-client/src (run node js-client/build.js)', () => {
  const { build } = require(path.join(repoRoot, 'js-client/build.js'));
  assert.ok(build() === source, 'js-client/comet.js differs from what js-client/src builds: run  node js-client/build.js');
});

test('comet.js parses as ECMAScript 5', () => {
  assert.doesNotThrow(() => acorn.parse(source, { ecmaVersion: 5, sourceType: 'script' }));
});

test('CommonJS export', () => {
  assert.equal(typeof Comet.connect, 'function');
  assert.deepEqual(Comet.transports, ['websocket', 'sse', 'xhr-stream', 'iframe', 'long-poll', 'jsonp']);
  for (const t of ['websocket', 'sse', 'xhr-stream', 'iframe', 'htmlfile', 'multipart', 'dom-event-stream', 'long-poll', 'jsonp', 'poll']) {
    assert.ok(Comet.allTransports.includes(t), t);
  }
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'js-client/package.json'), 'utf8'));
  assert.equal(Comet.version, pkg.version);
  assert.equal(pkg.main, 'comet.js');
});

test('a plain <script> defines window.Comet', () => {
  const window = {};
  window.window = window;
  window.self = window;
  const context = vm.createContext(window);
  // No globalThis lookup trick: in a classic script `this` / `self` is the window.
  vm.runInContext(source, context);
  assert.equal(typeof context.Comet.connect, 'function');
});
