// Every transport in Chromium with the page and the sidecar over TLS (https/wss, the
// sidecar's own --tls-cert; issue 15): 2 channels × 50 messages each, once, in order,
// through the planned stream restarts (see lib/transport_cases.mjs).
import { runTransportCases } from './lib/transport_cases.mjs';

runTransportCases(
  [
    { transport: 'websocket', n: 50 },
    { transport: 'sse', n: 50 },
    { transport: 'xhr-stream', n: 50 },
    { transport: 'iframe', n: 50 },
    { transport: 'multipart', n: 50 },
    { transport: 'htmlfile', n: 50 },
    { transport: 'dom-event-stream', n: 50 },
    { transport: 'long-poll', n: 50 },
    { transport: 'jsonp', crossOrigin: true, n: 50 },
    { transport: 'poll', query: { poll: '100' }, n: 50 },
  ],
  { tls: true },
);
