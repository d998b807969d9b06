// The emitter and the queue under `for await`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Emitter } from '../src/emitter.js';
import { EventQueue } from '../src/queue.js';

test('a queue hands over its backlog, then what is pushed, then ends', async () => {
  const queue = new EventQueue([1]);
  queue.push(2);
  const got = [];
  const loop = (async () => {
    for (;;) {
      const { value, done } = await queue.next();
      if (done) return;
      got.push(value);
    }
  })();
  await Promise.resolve();
  queue.push(3);
  queue.end();
  queue.push(4); // after the end: dropped
  await loop;
  assert.deepEqual(got, [1, 2, 3]);
});

test('a queue ended with an error rejects the waiting pull after what is queued', async () => {
  const queue = new EventQueue();
  const waiting = queue.next();
  queue.end(new Error('broke'));
  await assert.rejects(waiting, /broke/);
  const other = new EventQueue(['a']);
  other.end(new Error('late'));
  assert.deepEqual(await other.next(), { value: 'a', done: false });
  await assert.rejects(other.next(), /late/);
  assert.deepEqual(await other.next(), { value: undefined, done: true });
});

test('a listener that throws is reported and the others still run', (t) => {
  const reported = [];
  const before = globalThis.reportError;
  globalThis.reportError = (err) => reported.push(err);
  t.after(() => { globalThis.reportError = before; });
  const emitter = new Emitter();
  const got = [];
  emitter.on('x', () => { throw new Error('listener bug'); });
  emitter.on('x', (v) => got.push(v));
  emitter.once('x', (v) => got.push(`once ${v}`));
  emitter.emit('x', 1);
  emitter.emit('x', 2);
  assert.deepEqual(got, [1, 'once 1', 2]);
  assert.equal(reported.length, 2);
  const off = emitter.on('y', (v) => got.push(v));
  off();
  emitter.emit('y', 3);
  assert.equal(got.length, 3);
});
