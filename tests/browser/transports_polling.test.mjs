// Each request/response transport forced in turn: 2 channels × 200 messages, each
// once, in order (see lib/transport_cases.mjs); a screenshot per transport. JSONP runs
// cross-origin, the way it is used.
import { runTransportCases } from './lib/transport_cases.mjs';

runTransportCases([
  { transport: 'long-poll' },
  { transport: 'jsonp', crossOrigin: true },
  { transport: 'poll', query: { poll: '100' } },
  { transport: 'long-poll', crossOrigin: true, n: 50, shot: false },
]);
