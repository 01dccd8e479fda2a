#!/usr/bin/env node
// Builds comet.js from src/ (plain concatenation inside the UMD wrapper; no bundler).
//   node build.js          write comet.js
//   node build.js --check  exit 1 if comet.js is not what src/ builds (CI, tests)
//   node build.js --minify OUT
//                          write the minified build of comet.js to OUT (what the sidecar
//                          serves; the build runs this). Needs terser (Debian: terser).
'use strict';
var fs = require('fs');
var path = require('path');

var dir = __dirname;
var version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
// Order matters only for readability (function declarations are hoisted; the few
// top-level `var`s a later file uses at load time come first).
var modules = ['util.js', 'cursor.js', 'framing.js', 'presence.js', 'transports.js', 'session.js', 'tabs.js', 'connection.js'];

function build() {
  var parts = [read('head.js')];
  modules.forEach(function (name) {
    parts.push('\n// ===== src/' + name + ' =====\n' + read(name));
  });
  parts.push('\n' + read('tail.js'));
  return parts.join('').replace(/@VERSION@/g, version);
}

function read(name) {
  return fs.readFileSync(path.join(dir, 'src', name), 'utf8');
}

// ES5 in, ES5 out: the client still runs where only htmlfile or JSONP work. Terser's ie8
// and safari10 options keep the output clear of those engines' bugs. A fixed preamble and
// no timestamp, so the same source gives the same bytes (and ETag) on every build.
function minify(outFile) {
  var childProcess = require('child_process');
  var env = Object.assign({}, process.env);
  // Debian's terser lives in /usr/share/nodejs, which a Node.js from elsewhere does not search.
  env.NODE_PATH = [env.NODE_PATH, '/usr/share/nodejs'].filter(Boolean).join(path.delimiter);
  var terser = env.TERSER || 'terser';
  var args = [path.join(dir, 'comet.js'), '--ecma', '5', '--ie8', '--safari10', '--compress', 'passes=2',
    '--mangle', '--comments', 'false', '--format',
    'preamble=' + JSON.stringify('/*! comet.js ' + version + ' | Comet Sidecar browser client | readable source: comet.js */'),
    '-o', outFile];
  var result = childProcess.spawnSync(terser, args, { env: env, stdio: 'inherit' });
  if (result.error || result.status !== 0) {
    console.error('build.js: minifying with ' + terser + ' failed' +
      (result.error ? ' (' + result.error.message + '; install terser: apt-get install terser)' : ''));
    process.exit(1);
  }
}

function main() {
  var minifyAt = process.argv.indexOf('--minify');
  if (minifyAt >= 0) {
    if (!process.argv[minifyAt + 1]) {
      console.error('usage: node build.js --minify OUT');
      process.exit(2);
    }
    minify(path.resolve(process.argv[minifyAt + 1]));
    return;
  }
  var out = build();
  var target = path.join(dir, 'comet.js');
  if (process.argv.indexOf('--check') >= 0) {
    var current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    if (current !== out) {
      console.error('js-client/comet.js is out of date: run  node js-client/build.js');
      process.exit(1);
    }
    console.log('js-client/comet.js is up to date');
  } else {
    fs.writeFileSync(target, out);
    console.log('wrote ' + path.relative(process.cwd(), target) + ' (' + out.split('\n').length + ' lines)');
  }
}

if (require.main === module) main();

module.exports = { build: build };
