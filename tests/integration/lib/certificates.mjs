// Test certificates: a self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost,
// made with the openssl CLI (shared by the integration and browser tests).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Writes DIR/NAME.crt and DIR/NAME.key (subject CN=NAME); returns {cert, key, pem}. */
export function makeCertificate(dir, name) {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { cert, key, pem: readFileSync(cert) };
}
