// Tokens as comet_token() issues them (docs/protocol.md, "Tokens"), and forged ones,
// for the authorization tests.

import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

export const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A JWT over `payload` with `header`, signed with HMAC-`hash` under `secret`. */
export function signToken(payload, secret, { header = { alg: 'HS256', typ: 'JWT' }, hash = 'sha256' } = {}) {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

/** A token for `channels` valid for `ttl` seconds (negative: expired that long ago). */
export function tokenFor(channels, secret, { ttl = 300, sub, extra = {} } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { channels: [].concat(channels), exp: now + ttl, iat: now, ...extra };
  if (sub !== undefined) payload.sub = sub;
  return signToken(payload, secret);
}

/**
 * GET `url` and collect the answer for up to `ms` (streams never end), or until
 * `until(body)` is true. Returns {status, headers, body} (and over https, `alpn` and
 * `protocol`: the TLS version). `ca`: the certificate to trust for https.
 */
export function collect(url, { headers = {}, ms = 1500, until = () => false, ca } = {}) {
  const secure = url.startsWith('https:');
  // Over TLS, offer h2 first as a browser does: the sidecar must pick http/1.1.
  const options = secure ? { headers, ca, ALPNProtocols: ['h2', 'http/1.1'] } : { headers };
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).get(url, options, (res) => {
      const tls = secure ? { alpn: res.socket.alpnProtocol, protocol: res.socket.getProtocol() } : {};
      let body = '';
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, body, ...tls });
      };
      const timer = setTimeout(finish, ms);
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
        if (until(body)) finish();
      });
      res.on('end', finish);
      res.on('error', finish);
    });
    req.on('error', (err) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
  });
}
