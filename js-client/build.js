#!/usr/bin/env node
// Builds comet.js from src/ (plain concatenation inside the UMD wrapper; no bundler).
//   node build.js          write comet.js
//   node build.js --check  exit 1 if comet.js is not what src/ builds (CI, tests)
'use strict';
var fs = require('fs');
var path = require('path');

var dir = __dirname;
var version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
// Order matters only for readability (function declarations are hoisted; the few
// top-level `var`s a later file uses at load time come first).
var modules = ['util.js', 'cursor.js', 'framing.js', 'transports.js', 'session.js', 'tabs.js', 'connection.js'];

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

function main() {
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
