// A reverse proxy that buffers responses, like an old or misconfigured proxy in front
// of the sidecar: nothing of a response (headers included) is forwarded until `limit`
// bytes of its body arrived or it ended. Streams therefore never get through in time,
// whole answers (pages, long-poll answers) do. It does not do WebSocket (502).

import http from 'node:http';
import net from 'node:net';

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

export async function startBufferingProxy(target, { limit = 256 * 1024 } = {}) {
  const stats = { requests: 0, buffered: 0, upgradesRefused: 0 };
  const server = http.createServer((req, res) => {
    stats.requests += 1;
    const headers = { ...req.headers };
    for (const h of HOP) delete headers[h];
    const upstream = http.request(
      { host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers },
      (up) => {
        const chunks = [];
        let size = 0;
        let flowing = false;
        const outHeaders = {};
        for (const [k, v] of Object.entries(up.headers)) if (!HOP.has(k)) outHeaders[k] = v;
        const flush = () => {
          flowing = true;
          res.writeHead(up.statusCode, outHeaders);
          for (const c of chunks) res.write(c);
          chunks.length = 0;
        };
        up.on('data', (c) => {
          if (flowing) return res.write(c);
          chunks.push(c);
          size += c.length;
          if (size >= limit) flush();
        });
        up.on('end', () => {
          if (!flowing) {
            outHeaders['content-length'] = String(size);
            flush();
          }
          res.end();
        });
        up.on('error', () => res.destroy());
        if (!up.complete) stats.buffered += 1;
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
    // The browser gave up (aborted stream): close the upstream too.
    res.on('close', () => upstream.destroy());
  });
  server.on('upgrade', (req, socket) => {
    stats.upgradesRefused += 1;
    socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stats,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Connects `client` to 127.0.0.1:`port`; the two close together, and the pair stays in
 * `pairs` while open. Returns the pair.
 */
function connectPair(client, port, pairs) {
  const upstream = net.connect({ host: '127.0.0.1', port });
  const pair = { client, upstream };
  pairs.add(pair);
  const close = () => {
    pairs.delete(pair);
    client.destroy();
    upstream.destroy();
  };
  for (const socket of [client, upstream]) {
    socket.on('error', close);
    socket.on('close', close);
  }
  return pair;
}

/**
 * A TCP proxy to `target` whose connections can be cut: cut() destroys every open
 * connection and refuses (resets) new ones until restore(). For "the network went away
 * for a while" without touching the sidecar.
 */
export async function startCutProxy(target) {
  const sockets = new Set();
  let refusing = false;
  const stats = { accepted: 0, refused: 0, cut: 0 };
  const server = net.createServer((client) => {
    if (refusing) {
      stats.refused += 1;
      client.resetAndDestroy();
      return;
    }
    stats.accepted += 1;
    const { upstream } = connectPair(client, target.port, sockets);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stats,
    get open() {
      return sockets.size;
    },
    cut() {
      refusing = true;
      for (const { client, upstream } of sockets) {
        stats.cut += 1;
        client.resetAndDestroy();
        upstream.destroy();
      }
      sockets.clear();
    },
    restore() {
      refusing = false;
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A TCP proxy to `targetPort` that delays what clients send by `delayMs` (order kept):
 * put between a sidecar and Redis, it widens the moment between a sidecar taking a
 * subscription and Redis hearing of it.
 */
export async function startDelayProxy(targetPort, delayMs) {
  const pairs = new Set();
  const server = net.createServer((client) => {
    const { upstream } = connectPair(client, targetPort, pairs);
    client.on('data', (chunk) => setTimeout(() => upstream.write(chunk), delayMs));
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
