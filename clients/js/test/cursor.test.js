// The resume rules on their own: exactly once, in order, whatever order events come in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cursor } from '../src/cursor.js';

/** @param {number} seq @param {string} [epoch] */
const ev = (seq, epoch = 'e1') => /** @type {any} */ ({ type: 'custom', run_id: 'r', thread_id: 't', epoch, seq, ns: [], time: 0 });
const seqs = (offer) => offer.deliver.map((e) => e.seq);

test('events in order are delivered one by one', () => {
  const cursor = new Cursor();
  assert.deepEqual(seqs(cursor.offer(ev(1))), [1]);
  assert.deepEqual(seqs(cursor.offer(ev(2))), [2]);
  assert.equal(cursor.lastSeq, 2);
  assert.equal(cursor.epoch, 'e1');
});

test('an event at or below the cursor is a duplicate', () => {
  const cursor = new Cursor('e1', 5);
  const offer = cursor.offer(ev(5));
  assert.equal(offer.duplicate, true);
  assert.deepEqual(offer.deliver, []);
  assert.equal(cursor.offer(ev(3)).duplicate, true);
  assert.equal(cursor.lastSeq, 5);
});

test('an early event waits for the gap, then both go in order', () => {
  const cursor = new Cursor('e1', 1);
  const early = cursor.offer(ev(3));
  assert.equal(early.gap, true);
  assert.deepEqual(early.deliver, []);
  assert.equal(cursor.offer(ev(4)).gap, true);
  assert.deepEqual(seqs(cursor.offer(ev(2))), [2, 3, 4]);
  assert.equal(cursor.lastSeq, 4);
  // the replayed copies that follow a re-join are dropped
  assert.equal(cursor.offer(ev(3)).duplicate, true);
  assert.deepEqual(seqs(cursor.offer(ev(5))), [5]);
});

test('another epoch mid-run is foreign: nothing is guessed', () => {
  const cursor = new Cursor('e1', 4);
  const offer = cursor.offer(ev(9, 'e2'));
  assert.equal(offer.foreign, true);
  assert.deepEqual(offer.deliver, []);
  assert.equal(cursor.epoch, 'e1');
  assert.equal(cursor.lastSeq, 4);
});

test('a rebase starts afresh at the next event, in its epoch', () => {
  const cursor = new Cursor('e1', 4);
  cursor.offer(ev(7)); // waiting for 5 and 6, which the lost log will never send
  cursor.rebase();
  assert.deepEqual(seqs(cursor.offer(ev(20, 'e2'))), [20]);
  assert.equal(cursor.epoch, 'e2');
  assert.deepEqual(seqs(cursor.offer(ev(21, 'e2'))), [21]);
});

test('a cursor with an epoch but no seq takes the first event it sees', () => {
  const cursor = new Cursor('old', 0);
  assert.deepEqual(seqs(cursor.offer(ev(1, 'new'))), [1]);
  assert.equal(cursor.epoch, 'new');
});
