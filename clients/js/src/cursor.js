// @ts-check
// A run's place in its event log, and the rules that keep delivery exactly once and in
// order whatever the connection does: pure, so the rules have tests of their own.

/** @import { RunEvent } from './types.js' */

/**
 * What to do with one event offered to the cursor:
 * - `deliver`: the events now in order (this one, and any that waited for it)
 * - `duplicate`: at or below the cursor; drop it
 * - `gap`: ahead of the cursor; it waits, ask for the missing events
 * - `foreign`: from another log epoch, unannounced; reload rather than guess
 * @typedef {{deliver: RunEvent[], duplicate: boolean, gap: boolean, foreign: boolean}} Offer
 */

export class Cursor {
  /** @type {Map<number, RunEvent>} events that came early, waiting for the gap to fill */
  #early = new Map();
  #rebase = false;

  /** @param {string} [epoch] @param {number} [lastSeq] the last event already handed on */
  constructor(epoch = '', lastSeq = 0) {
    this.epoch = epoch;
    this.lastSeq = lastSeq;
  }

  /** The next event starts the cursor afresh (after a resync, in the log's new epoch). */
  rebase() {
    this.#rebase = true;
  }

  /** @param {RunEvent} event @returns {Offer} */
  offer(event) {
    const offer = { deliver: /** @type {RunEvent[]} */ ([]), duplicate: false, gap: false, foreign: false };
    if (this.#rebase || (this.epoch && event.epoch !== this.epoch && !this.lastSeq)) {
      this.#rebase = false;
      this.epoch = event.epoch;
      this.lastSeq = event.seq - 1;
      this.#early.clear();
    }
    if (this.epoch && event.epoch !== this.epoch) {
      // Only a lost log changes the epoch, and a join announces that (recovered: false).
      offer.foreign = true;
    } else if (event.seq <= this.lastSeq) {
      offer.duplicate = true;
    } else if (event.seq > this.lastSeq + 1) {
      this.#early.set(event.seq, event);
      offer.gap = true;
    } else {
      this.#advance(event, offer.deliver);
      for (let next = this.#early.get(this.lastSeq + 1); next; next = this.#early.get(this.lastSeq + 1)) {
        this.#early.delete(next.seq);
        this.#advance(next, offer.deliver);
      }
      for (const seq of this.#early.keys()) if (seq <= this.lastSeq) this.#early.delete(seq);
    }
    return offer;
  }

  /** @param {RunEvent} event @param {RunEvent[]} into */
  #advance(event, into) {
    this.epoch = event.epoch;
    this.lastSeq = event.seq;
    into.push(event);
  }
}
