// Parsing of every framing, fed in arbitrary chunks (a byte at a time included): the
// network splits responses anywhere.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { I } from './load.mjs';

/** Feeds `text` to `push` in chunks of `size` (and at every split point when size is 0). */
function feed(push, text, size) {
  for (let i = 0; i < text.length; i += size) push(text.slice(i, i + size));
}
const SIZES = [1, 2, 3, 7, 64, 100000];

const ENV1 = '{"ch":"a","id":1,"prev":0,"epoch":"7dl52vr1bdsc","data":"hi"}';
const ENV2 = '{"ch":"a","id":2,"prev":1,"epoch":"7dl52vr1bdsc","data":"line \\u003cb\\u003e\\u2028 two"}';

test('SSE: the sidecar’s stream (retry, id-only event, messages, resets, heartbeats)', () => {
  const body =
    'retry: 2000\n\n' +
    'id: a@7dl52vr1bdsc.1\n\n' +
    `id: a@7dl52vr1bdsc.2\ndata: ${ENV1}\n\n` +
    ':\n\n' +
    'event: comet-reset\ndata: {"type":"reset","ch":"a","reason":"history-expired","epoch":"7dl52vr1bdsc","id":40}\n\n' +
    `id: a@7dl52vr1bdsc.41\ndata: ${ENV2}\n\n`;
  for (const size of SIZES) {
    const events = [];
    const comments = [];
    const p = new I.SseParser((e) => events.push(e), (c) => comments.push(c));
    feed((t) => p.push(t), body, size);
    assert.deepEqual(
      events.map((e) => [e.event, e.id, JSON.parse(e.data).type ?? JSON.parse(e.data).id]),
      [
        ['message', 'a@7dl52vr1bdsc.2', 1],
        ['comet-reset', 'a@7dl52vr1bdsc.2', 'reset'],
        ['message', 'a@7dl52vr1bdsc.41', 2],
      ],
      `chunk size ${size}`,
    );
    assert.equal(comments.length, 1);
    assert.equal(JSON.parse(events[2].data).data, 'line <b>\u2028 two');
  }
});

test('SSE: CR, LF and CRLF line ends, multi-line data, field without space or value', () => {
  const body = 'data:one\r\ndata: two\rdata\n\nevent: x\r\ndata: y\r\n\r\n: c\rid: 7\n\ndata: z\n\n';
  for (const size of SIZES) {
    const events = [];
    const p = new I.SseParser((e) => events.push(e));
    feed((t) => p.push(t), body, size);
    assert.deepEqual(events, [
      { event: 'message', data: 'one\ntwo\n', id: '' },
      { event: 'x', data: 'y', id: '' },
      { event: 'message', data: 'z', id: '7' },
    ], `chunk size ${size}`);
  }
});

test('dom-event-stream (legacy SSE): "Event: comet" with the padding comment', () => {
  const body = `:${' '.repeat(2048)}\n\nEvent: comet\ndata: {"type":"open","cursor":"a@E.1"}\n\nEvent: comet\ndata: ${ENV1}\n\nEvent: comet\ndata: {"type":"hb"}\n\n`;
  for (const size of SIZES) {
    const events = [];
    const p = new I.SseParser((e) => events.push(e), null, true);
    feed((t) => p.push(t), body, size);
    assert.deepEqual(events.map((e) => [e.event, I.classify(JSON.parse(e.data))]), [
      ['comet', 'open'],
      ['comet', 'msg'],
      ['comet', 'hb'],
    ]);
  }
  // Without legacy mode the capitalised field is unknown (that is why the mode exists).
  const events = [];
  new I.SseParser((e) => events.push(e)).push('Event: comet\ndata: x\n\n');
  assert.equal(events[0].event, 'message');
});

test('ndjson (xhr streaming): padding prelude, blank lines, bad lines', () => {
  const body = `${' '.repeat(2048)}\n{"type":"open","cursor":"a@7dl52vr1bdsc.0,b@.0"}\n${ENV1}\n\n{"type":"hb"}\nnot json\n${ENV2}\n{"type":"reconnect","cursor":"a@7dl52vr1bdsc.2,b@.0"}\n`;
  for (const size of SIZES) {
    const objs = [];
    const bad = [];
    const p = new I.LineParser((o) => objs.push(o), (l) => bad.push(l));
    feed((t) => p.push(t), body, size);
    assert.deepEqual(objs.map(I.classify), ['open', 'msg', 'hb', 'msg', 'reconnect'], `chunk size ${size}`);
    assert.deepEqual(bad, ['not json']);
    assert.equal(objs[3].data, 'line <b>\u2028 two');
    assert.equal(p.buf, '', 'nothing left over');
  }
  // Kilobytes of padding are not kept while the first line is pending.
  const p = new I.LineParser(() => {});
  p.push(' '.repeat(5000));
  assert.equal(p.buf, '');
});

test('multipart/x-mixed-replace: parts with headers, split anywhere, final boundary', () => {
  const part = (o) => `--comet-part\r\nContent-Type: application/json\r\n\r\n${o}\r\n`;
  const body = part('{"type":"open","cursor":"a@7dl52vr1bdsc.1"}') + part(ENV1) + part('{"type":"hb"}') + part(ENV2) + '--comet-part--\r\n';
  assert.equal(I.boundaryOf('multipart/x-mixed-replace; boundary="comet-part"'), 'comet-part');
  assert.equal(I.boundaryOf('multipart/x-mixed-replace;boundary=xyz; charset=utf-8'), 'xyz');
  assert.equal(I.boundaryOf('text/plain'), '');
  for (const size of SIZES) {
    const parts = [];
    let ended = false;
    const p = new I.MultipartParser('comet-part', (b, h) => parts.push([JSON.parse(b), h['content-type']]), () => {
      ended = true;
    });
    feed((t) => p.push(t), body, size);
    assert.deepEqual(parts.map(([o, ct]) => [I.classify(o), ct]), [
      ['open', 'application/json'],
      ['msg', 'application/json'],
      ['hb', 'application/json'],
      ['msg', 'application/json'],
    ], `chunk size ${size}`);
    assert.ok(ended);
  }
  // A part is only complete once the next delimiter is seen (a body may contain CRLF).
  const parts = [];
  const p = new I.MultipartParser('b', (x) => parts.push(x));
  p.push('preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2');
  assert.deepEqual(parts, []);
  p.push('\r\n--b\r\n');
  assert.deepEqual(parts, ['line1\r\nline2']);
});

test('forever iframe / htmlfile bodies: the parent.CB(...) calls', () => {
  const html =
    `<!DOCTYPE html><html><head><script>document.domain="example.com";</script></head><body><!--${' '.repeat(300)}-->\n` +
    '<script>parent.__comet.f1_x({"type":"open","cursor":"a@7dl52vr1bdsc.1"});</script>\n' +
    `<script>parent.__comet.f1_x(${ENV2});</script>\n` +
    '<script>parent.__comet.f1_x({"type":"hb"});</script>\n' +
    '<script>parent.other({"type":"hb"});</script>\n';
  const calls = I.parseScriptCalls(html, '__comet.f1_x');
  assert.deepEqual(calls.map(I.classify), ['open', 'msg', 'hb']);
  assert.equal(calls[1].data, 'line <b>\u2028 two');
  // The envelope escapes < > & so no data can close the script element early.
  assert.ok(!ENV2.includes('</script>'));
});

test('JSONP bodies', () => {
  const text = `/**/__comet.j3_ab({"cursor":"a@7dl52vr1bdsc.2","messages":[${ENV2}]});`;
  const answer = I.parseJsonp(text, '__comet.j3_ab');
  assert.equal(answer.cursor, 'a@7dl52vr1bdsc.2');
  assert.equal(answer.messages[0].id, 2);
  assert.equal(I.parseJsonp(text, '__comet.j4_ab'), undefined, 'another callback');
  assert.equal(I.parseJsonp('/**/cb(not json);', 'cb'), undefined);
});

test('classify: every object kind of the protocol', () => {
  const cases = [
    [JSON.parse(ENV1), 'msg'],
    [{ ch: 'a', data: 'bare' }, 'msg'],
    [{ type: 'reset', ch: 'a', reason: 'epoch-changed', epoch: 'E', id: 0 }, 'reset'],
    [{ type: 'open', cursor: '' }, 'open'],
    [{ type: 'hb' }, 'hb'],
    [{ type: 'reconnect', cursor: 'a@E.1' }, 'reconnect'],
    [{ type: 'cursor', cursor: 'a@E.1' }, 'cursor'],
    [{ type: 'subscribed', ch: 'a', epoch: 'E', id: 3 }, 'subscribed'],
    [{ type: 'unsubscribed', ch: 'a' }, 'unsubscribed'],
    [{ type: 'pong' }, 'pong'],
    [{ type: 'error', error: 'bad command' }, 'error'],
    [{ type: 'error', error: 'forbidden', ch: 'private:a', status: 403, message: 'm' }, 'error'],
    [{ type: 'auth-expired', grace: 30 }, 'auth-expired'],
    [{ type: 'auth', exp: 1700000300, sub: '7' }, 'auth'],
    [{ type: 'future' }, 'unknown'],
    [null, 'unknown'],
    ['text', 'unknown'],
    [{ ch: 'a' }, 'unknown'],
  ];
  for (const [obj, kind] of cases) assert.equal(I.classify(obj), kind, JSON.stringify(obj));
});
