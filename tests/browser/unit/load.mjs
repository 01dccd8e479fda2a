// Loads js-client/comet.js the way a CommonJS user would (its UMD export).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const cometPath = path.join(repoRoot, 'js-client/comet.js');
const require = createRequire(import.meta.url);
export const Comet = require(cometPath);
export const I = Comet._internal;
