// ---------------------------------------------------------------------------------
// exports

return {
  version: '@VERSION@',
  connect: connect,
  Connection: Connection,
  /** The default transport ladder, best first. */
  transports: DEFAULT_TRANSPORTS.slice(),
  /** Every transport name `transports` accepts. */
  allTransports: keys(TRANSPORTS),
  defaults: DEFAULT_OPTIONS,
  /** Internals for tests and diagnostics; not a stable API. */
  _internal: {
    backoffDelay: backoffDelay,
    normalizeBase: normalizeBase,
    buildUrl: buildUrl,
    toWsUrl: toWsUrl,
    parsePosition: parsePosition,
    formatPosition: formatPosition,
    parseCursor: parseCursor,
    formatCursor: formatCursor,
    judge: judge,
    applyReset: applyReset,
    mergeServerPosition: mergeServerPosition,
    minPosition: minPosition,
    isBehind: isBehind,
    validChannel: validChannel,
    validCallback: validCallback,
    SseParser: SseParser,
    LineParser: LineParser,
    MultipartParser: MultipartParser,
    boundaryOf: boundaryOf,
    parseScriptCalls: parseScriptCalls,
    parseJsonp: parseJsonp,
    classify: classify,
    PresenceList: PresenceList,
    Emitter: Emitter,
    Driver: Driver,
    TRANSPORTS: TRANSPORTS
  }
};
  }
);
