// The third-party clients the transport tests are driven by: `ws` (WebSocket) and
// `eventsource` (the WHATWG EventSource, v3+ API on top of fetch). Loaded dynamically
// so a missing node_modules fails with a message that says how to fix it.

import { Queue, withTimeout } from './async.mjs';

async function load(name) {
  try {
    return await import(name);
  } catch (err) {
    throw new Error(
      `integration test dependency '${name}' is not installed (${err.code ?? err.message}).\n` +
        'Run the setup first, from the repository root:  npm ci --prefix tests/integration',
    );
  }
}

const wsModule = await load('ws');
const eventsourceModule = await load('eventsource');

export const WebSocket = wsModule.WebSocket;
export const EventSource = eventsourceModule.EventSource;

/**
 * Opens a `ws` WebSocket to `url` and resolves once open. `client.messages` is a Queue
 * of the server's text messages parsed as JSON (binary ones as Buffers), and
 * `client.closed` resolves with {code, reason} when the socket closes.
 */
export async function openWs(url, { timeoutMs = 5000, ...options } = {}) {
  const ws = new WebSocket(url, options);
  const client = {
    ws,
    messages: new Queue(`WebSocket ${url}`),
    raw: [],
    closed: null,
  };
  client.closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      client.messages.close(`socket closed with ${code}`);
      resolve({ code, reason: reason.toString() });
    });
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      client.messages.push(data);
      return;
    }
    const text = data.toString('utf8');
    client.raw.push(text);
    client.messages.push(JSON.parse(text));
  });
  await withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => reject(new Error(`WebSocket handshake answered ${res.statusCode}`)));
    }),
    timeoutMs,
    `WebSocket ${url} to open`,
  );
  ws.on('error', () => {}); // errors after open surface as close codes
  return client;
}

/** Sends a JSON command on a `ws` client. */
export function sendJson(client, value) {
  client.ws.send(JSON.stringify(value));
}

/** Closes a `ws` client and waits for the close to complete. */
export async function closeWs(client, timeoutMs = 5000) {
  if (client.ws.readyState === WebSocket.CLOSED) return;
  client.ws.close();
  await withTimeout(client.closed, timeoutMs, 'WebSocket close');
}

/**
 * An EventSource (from the `eventsource` package) with its events collected:
 * `events` is a Queue of {type, data, lastEventId} for `message` and each name in
 * `eventNames`; `opens` and `errors` are Queues of open and error events.
 */
export function openEventSource(url, { eventNames = [], fetch: fetchImpl } = {}) {
  const es = new EventSource(url, fetchImpl ? { fetch: fetchImpl } : undefined);
  const client = {
    es,
    events: new Queue(`EventSource ${url}`),
    opens: new Queue(`EventSource opens ${url}`),
    errors: new Queue(`EventSource errors ${url}`),
  };
  const collect = (ev) => client.events.push({ type: ev.type, data: ev.data, lastEventId: ev.lastEventId });
  es.addEventListener('message', collect);
  for (const name of eventNames) es.addEventListener(name, collect);
  es.addEventListener('open', () => client.opens.push(Date.now()));
  es.addEventListener('error', (ev) => client.errors.push({ message: ev.message, code: ev.code, at: Date.now() }));
  return client;
}
