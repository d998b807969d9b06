// @ts-check
import { Cursor } from './cursor.js';
import { Emitter } from './emitter.js';
import { EventQueue } from './queue.js';

/** @import { GlassboxClient } from './client.js' */
/** @import { GlassboxError } from './errors.js' */
/** @import { ErrorEvent, EventOfType, InterruptEvent, Json, Resync, RunEndedEvent, RunEvent, RunRecord, RunSettings } from './types.js' */
/** @typedef {{op: 'run' | 'resume' | 'join', body: Record<string, any>}} RunRequest */
/** @typedef {{epoch?: string, first_seq?: number, recovered?: boolean, status?: string}} ResyncInfo */

/**
 * What a run's control needs from the client that drives it.
 * @typedef {object} RunOwner
 * @property {(control: RunControl) => void} forget the run is over: drop what refers to it
 * @property {(control: RunControl) => void} gap events are missing: ask for them again
 * @property {(control: RunControl, info: ResyncInfo) => void} resync the log cannot say: reload
 */

/**
 * What a run's listeners get, by event: each event type (`message_delta` …), every event
 * (`event`), and the run's own news. `error` carries an error event of the run, or the
 * GlassboxError that ended its handle.
 * @typedef {Omit<{[T in RunEvent['type']]: EventOfType<T>}, 'error'> & {
 *   event: RunEvent,
 *   error: ErrorEvent | GlassboxError,
 *   accepted: {runId: string, threadId: string},
 *   resync: Resync,
 *   end: RunEndedEvent,
 * }} RunEvents
 */

/**
 * One run as the application sees it: an async iterator and an emitter of its events
 * (`event` for all, or by type: `message_delta`, `interrupt`, `run_ended` …), plus
 * `accepted`, `resync` and `error`. Events pushed before the first `for await` are kept
 * for it, so nothing is missed by starting the loop late.
 * @extends {Emitter<RunEvents>}
 */
export class Run extends Emitter {
  /** @type {RunControl} */
  #control;

  /** @param {GlassboxClient} client @param {RunControl} control */
  constructor(client, control) {
    super();
    this.client = client;
    this.#control = control;
    const { body } = control.request;
    /** @type {string} */
    this.threadId = body.thread_id ?? '';
    /** @type {string} */
    this.runId = body.run_id ?? '';
    /** The cursor: the last event handed to the application. */
    this.epoch = control.cursor.epoch;
    this.lastSeq = control.cursor.lastSeq;
    /** @type {'starting' | 'running' | 'ended' | 'failed'} */
    this.status = 'starting';
    /** @type {InterruptEvent[]} this run's interrupt events, in order */
    this.interrupts = [];
    /** @type {RunEndedEvent | null} the run_ended event, once it came */
    this.result = null;
    this.stats = { delivered: 0, duplicatesDropped: 0, reattached: 0, resynced: 0 };
    /** Resolves with {runId, threadId} once the edge took the run. */
    this.accepted = control.accepted.promise;
    /** Resolves with the run_ended event; rejects when the run could not start or broke. */
    this.done = control.done.promise;
  }

  get finished() {
    return this.status === 'ended' || this.status === 'failed';
  }

  /**
   * Answer this run's interrupts; the continuation is a new run on the same thread.
   * @param {{ [interruptId: string]: Json }} answers the answer per interrupt id
   * @param {RunSettings} [options] streamModes, config … as for `run`
   * @returns {Run}
   */
  resume(answers, options = {}) {
    return this.client.resume({ ...options, threadId: this.threadId, answers });
  }

  /** Stop the run; its run_ended event (status cancelled) still arrives. @returns {Promise<RunRecord>} */
  cancel() {
    return this.client.cancel(this);
  }

  /** @returns {AsyncIterator<RunEvent> & AsyncIterable<RunEvent>} */
  [Symbol.asyncIterator]() {
    return this.#control.subscribe();
  }
}

/** @template T */
class Deferred {
  constructor() {
    /** @type {(value: T) => void} */
    this.resolve = () => {};
    /** @type {(error: unknown) => void} */
    this.reject = () => {};
    /** @type {Promise<T>} */
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Awaiting it is optional: never report it as unhandled.
    this.promise.catch(() => {});
  }
}

/**
 * The client's side of a run: its request, its cursor and where its events go. Transports
 * feed it (`accept`, `receive`); it hands events to the Run in order, exactly once.
 */
export class RunControl {
  /** @param {GlassboxClient} client @param {RunOwner} owner @param {RunRequest} request */
  constructor(client, owner, request) {
    this.owner = owner;
    this.request = request;
    this.cursor = new Cursor(request.body.epoch ?? '', request.body.after_seq ?? 0);
    /** @type {Deferred<{runId: string, threadId: string}>} */
    this.accepted = new Deferred();
    /** @type {Deferred<RunEndedEvent>} */
    this.done = new Deferred();
    /** An edge took this run at least once (later acceptances are re-attaches). */
    this.attached = false;
    /** @type {RunEvent[] | null} events held while a resync loads state */
    this.held = null;
    /** @type {RunEvent[] | null} events for the first `for await`, until it starts */
    this.backlog = [];
    /** @type {Set<EventQueue<RunEvent>>} */
    this.queues = new Set();
    /** @type {GlassboxError | null} */
    this.error = null;
    this.run = new Run(client, this);
  }

  get finished() {
    return this.run.finished;
  }

  /** An edge took the run (a run, resume or join answer; an SSE response). @param {{run_id: string, thread_id: string}} ids */
  accept(ids) {
    const run = this.run;
    if (this.attached) run.stats.reattached += 1;
    this.attached = true;
    if (run.status !== 'starting') return;
    run.runId = ids.run_id;
    run.threadId = ids.thread_id;
    run.status = 'running';
    const value = { runId: run.runId, threadId: run.threadId };
    this.accepted.resolve(value);
    run.emit('accepted', value);
  }

  /** @param {RunEvent[]} events */
  receive(events) {
    for (const event of events) {
      if (this.held) this.held.push(event);
      else this.#take(event);
    }
  }

  /** Hold events until `release` (a resync is loading state); false when already held. */
  hold() {
    if (this.held) return false;
    this.held = [];
    this.run.stats.resynced += 1;
    return true;
  }

  /** Tell the application what was reloaded, then go on from the next event afresh. @param {Resync} resync */
  release(resync) {
    /** @type {RunEvent[]} */
    const held = this.held ?? [];
    this.held = null;
    this.cursor.rebase();
    this.run.emit('resync', resync);
    this.receive(held);
  }

  /** @param {RunEvent} event */
  #take(event) {
    if (this.finished) return;
    const offer = this.cursor.offer(event);
    if (offer.foreign) {
      this.owner.resync(this, { epoch: event.epoch, first_seq: event.seq, recovered: false });
      this.held?.push(event);
    } else if (offer.duplicate) {
      this.run.stats.duplicatesDropped += 1;
    } else if (offer.gap) {
      this.owner.gap(this);
    }
    for (const next of offer.deliver) this.#deliver(next);
  }

  /** @param {RunEvent} event */
  #deliver(event) {
    const run = this.run;
    run.epoch = event.epoch;
    run.lastSeq = event.seq;
    run.runId ||= event.run_id;
    run.threadId ||= event.thread_id;
    if (run.status === 'starting') run.status = 'running';
    run.stats.delivered += 1;
    if (event.type === 'interrupt') run.interrupts.push(event);
    this.backlog?.push(event);
    for (const queue of this.queues) queue.push(event);
    run.emit('event', event);
    run.emit(event.type, event);
    if (event.type === 'run_ended') this.finish(event);
  }

  /** @param {RunEndedEvent} event */
  finish(event) {
    if (this.finished) return;
    this.run.status = 'ended';
    this.run.result = event;
    for (const queue of this.queues) queue.end();
    this.queues.clear();
    this.owner.forget(this);
    this.done.resolve(event);
    this.run.emit('end', event);
  }

  /** @param {GlassboxError} error */
  fail(error) {
    if (this.finished) return;
    this.run.status = 'failed';
    this.error = error;
    for (const queue of this.queues) queue.end(error);
    this.queues.clear();
    this.owner.forget(this);
    this.accepted.reject(error);
    this.done.reject(error);
    this.run.emit('error', error);
  }

  /** A loop over the run's events: the backlog for the first, live events after. */
  subscribe() {
    /** @type {EventQueue<RunEvent>} */
    const queue = new EventQueue(this.backlog ?? []);
    this.backlog = null;
    if (this.finished) queue.end(this.run.status === 'failed' ? this.error : undefined);
    else this.queues.add(queue);
    const queues = this.queues;
    return {
      next: () => queue.next(),
      return: () => {
        queues.delete(queue);
        queue.end();
        return Promise.resolve(/** @type {IteratorResult<RunEvent, undefined>} */ ({ value: undefined, done: true }));
      },
      [Symbol.asyncIterator]() { return this; },
    };
  }
}
