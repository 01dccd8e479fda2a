/*!
 * comet.js @VERSION@: the browser client of Comet Sidecar.
 * ES5, no dependencies, UMD (<script> tag: window.Comet; CommonJS; AMD).
 * Built from js-client/src/*.js by js-client/build.js: edit those, not this file.
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory(root);
  else if (typeof define === 'function' && define.amd) define([], function () { return factory(root); });
  else root.Comet = factory(root);
})(
  typeof globalThis !== 'undefined' ? globalThis : typeof self !== 'undefined' ? self : typeof window !== 'undefined' ? window : this,
  function (G) {
'use strict';
