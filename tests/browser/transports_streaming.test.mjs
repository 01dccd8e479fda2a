// Each streaming transport forced in turn: 2 channels × 200 messages, each once, in
// order (see lib/transport_cases.mjs); a screenshot per transport.
import { runTransportCases } from './lib/transport_cases.mjs';

runTransportCases([
  { transport: 'websocket' },
  { transport: 'sse' },
  { transport: 'xhr-stream' },
  { transport: 'iframe' },
  // multipart/x-mixed-replace: browsers no longer render it, comet.js reads it with fetch.
  { transport: 'multipart' },
  // Selectable, not on the default ladder: htmlfile (an iframe here; the ActiveX
  // document on old IE) and Opera's application/x-dom-event-stream read with fetch.
  { transport: 'htmlfile', n: 50 },
  { transport: 'dom-event-stream', n: 50 },
  { transport: 'xhr-stream', crossOrigin: true, n: 50, shot: false },
  // Long messages: compressed once per message (permessage-deflate, which Chromium offers).
  { transport: 'websocket', pad: 1500, n: 50, shot: false },
]);
