// @ts-check
/**
 * Glassbox browser client: run agents through a Glassbox edge and see every event of a
 * run exactly once, in order, across network drops. No dependencies; types in
 * glassbox.d.ts.
 *
 *     import { GlassboxClient } from '/glassbox.js';
 *     const gb = new GlassboxClient({ url: 'https://edge.example', token });
 *     const run = gb.run({ graph: 'demo', input: { messages: [{ role: 'user', content: 'hi' }] } });
 *     for await (const event of run) if (event.type === 'message_delta') show(event.token);
 *
 * Transport: WebSocket /v1/ws (subprotocol glassbox.v1; the token travels as a
 * `bearer.<token>` subprotocol, never in the URL). Where WebSockets are missing or never
 * get through, SSE over fetch: POST …/runs/stream, then GET …/runs/{id}/stream with
 * Last-Event-ID. Either way a dropped connection is re-attached at the run's {epoch, seq}
 * cursor and anything at or below it is dropped, so the application sees no duplicate and
 * no gap. When the server can no longer fill a gap (recovered: false), the client reloads
 * the thread's state over REST and says so with a `resync` event.
 */

export const PROTOCOL = 'glassbox.v1';

/** WebSocket close codes the edge uses (see the error catalogue). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  RESTART: 1012,
  TRY_LATER: 1013,
  UNAUTHENTICATED: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
  SLOW_CONSUMER: 4408,
  RATE_LIMITED: 4429,
});

/** @type {Set<number>} */
const FATAL_CLOSE = new Set([CloseCode.UNAUTHENTICATED, CloseCode.FORBIDDEN]);
const TERMINAL = new Set(['success', 'interrupted', 'error', 'cancelled']);
// RFC 6455 subprotocol names are HTTP tokens; other tokens go in the first frame.
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DEFAULTS = {
  transport: 'auto',
  reconnect: { initialDelayMs: 250, maxDelayMs: 10_000, factor: 2 },
  pingIntervalMs: 15_000,
  pongTimeoutMs: 10_000,
  welcomeTimeoutMs: 10_000,
  fallbackAfter: 2,
};

/** An error from the edge's catalogue: `code`, `retryable`, and a hint a person can act on. */
export class GlassboxError extends Error {
  /**
   * @param {{code?: string, message?: string, hint?: string, retryable?: boolean}} body
   * @param {number} [status] HTTP status or WebSocket close code, when there was one
   */
  constructor(body, status) {
    super(body.message || body.code || 'request failed');
    this.name = 'GlassboxError';
    this.code = body.code || 'UNKNOWN';
    this.hint = body.hint || '';
    this.retryable = Boolean(body.retryable);
    this.status = status;
  }
}

/** A tiny event emitter; a listener that throws is reported, never breaks the client. */
class Emitter {
  /** @type {Map<string, Set<Function>>} */
  #listeners = new Map();

  /** @param {string} type @param {Function} fn @returns {() => void} */
  on(type, fn) {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** @param {string} type @param {Function} fn */
  off(type, fn) {
    this.#listeners.get(type)?.delete(fn);
  }

  /** @param {string} type @param {Function} fn */
  once(type, fn) {
    const off = this.on(type, (/** @type {unknown} */ value) => {
      off();
      fn(value);
    });
    return off;
  }

  /** @param {string} type @param {unknown} [value] */
  emit(type, value) {
    for (const fn of [...(this.#listeners.get(type) ?? [])]) {
      try {
        fn(value);
      } catch (err) {
        report(err);
      }
    }
  }
}

/** @param {unknown} err */
function report(err) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
  else setTimeout(() => { throw err; });
}

/** A random UUID, also where crypto.randomUUID is missing (plain-http pages). */
export function newId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** @param {number} ms @param {AbortSignal} [signal] */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(undefined); }, { once: true });
  });
}

/** Events for one `for await` loop: pushed by the run, pulled by the loop. */
class EventQueue {
  /** @param {any[]} backlog */
  constructor(backlog) {
    this.items = backlog;
    /** @type {((r: IteratorResult<any>) => void) | null} */
    this.wake = null;
    this.closed = false;
    /** @type {unknown} */
    this.error = null;
  }

  /** @param {any} item */
  push(item) {
    if (this.wake) {
      const wake = this.wake;
      this.wake = null;
      wake({ value: item, done: false });
    } else this.items.push(item);
  }

  /** @param {unknown} [error] */
  end(error) {
    this.closed = true;
    this.error = error ?? null;
    if (this.wake && !error) this.wake({ value: undefined, done: true });
    else if (this.wake) this.next().then(this.wake, this.wake);
  }

  /** @returns {Promise<IteratorResult<any>>} */
  next() {
    if (this.items.length) return Promise.resolve({ value: this.items.shift(), done: false });
    if (this.closed && this.error) {
      const error = this.error;
      this.error = null;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.wake = (r) => (r instanceof Error ? reject(r) : resolve(r));
    });
  }
}

/**
 * One run as the application sees it: an async iterator and an emitter of its events
 * (`event` for all, or by type: `message_delta`, `interrupt`, `run_ended` …), plus
 * `accepted`, `resync` and `error`. Events pushed before the first `for await` are kept
 * for it, so nothing is missed by starting the loop late.
 */
export class Run extends Emitter {
  /**
   * @param {GlassboxClient} client
   * @param {{op: 'run' | 'resume' | 'join', body: Record<string, any>}} request
   */
  constructor(client, request) {
    super();
    this.client = client;
    this.request = request;
    /** @type {string} */
    this.threadId = request.body.thread_id ?? '';
    /** @type {string} */
    this.runId = request.body.run_id ?? '';
    /** The cursor: the last event handed to the application. */
    this.epoch = request.body.epoch ?? '';
    this.lastSeq = request.body.after_seq ?? 0;
    /** @type {'starting' | 'running' | 'ended' | 'failed'} */
    this.status = 'starting';
    /** @type {any[]} pending interrupts of this run, from its interrupt events */
    this.interrupts = [];
    /** @type {any} the run_ended event, once it came */
    this.result = null;
    this.stats = { delivered: 0, duplicatesDropped: 0, reattached: 0, resynced: 0 };
    /** @type {any[] | null} */
    this._backlog = [];
    /** @type {Set<EventQueue>} */
    this._queues = new Set();
    /** @type {Map<number, any>} events that came early, waiting for the gap to fill */
    this._early = new Map();
    /** @type {any[] | null} events held while a resync loads state */
    this._held = null;
    this._rebase = false;
    /** an edge took this run at least once (later acceptances are re-attaches) */
    this._attached = false;
    /** its thread is ours to create first (a new conversation) */
    this._needsThread = false;
    this._createdThread = false;
    /** an SSE loop drives it */
    this._sse = false;
    /** @type {GlassboxError | null} */
    this._error = null;
    /** @type {(v: any) => void} */
    let acceptedResolve = () => {};
    /** @type {(e: unknown) => void} */
    let acceptedReject = () => {};
    /** Resolves with {runId, threadId} once the edge took the run. */
    this.accepted = new Promise((resolve, reject) => {
      acceptedResolve = resolve;
      acceptedReject = reject;
    });
    this._acceptedResolve = acceptedResolve;
    this._acceptedReject = acceptedReject;
    /** @type {(v: any) => void} */
    let doneResolve = () => {};
    /** @type {(e: unknown) => void} */
    let doneReject = () => {};
    /** Resolves with the run_ended event; rejects when the run could not start or broke. */
    this.done = new Promise((resolve, reject) => {
      doneResolve = resolve;
      doneReject = reject;
    });
    this._doneResolve = doneResolve;
    this._doneReject = doneReject;
    // Awaiting these is optional: never report them as unhandled.
    this.accepted.catch(() => {});
    this.done.catch(() => {});
  }

  get finished() {
    return this.status === 'ended' || this.status === 'failed';
  }

  /**
   * Answer this run's interrupts; the continuation is a new run on the same thread.
   * @param {Record<string, any>} answers the answer per interrupt id
   * @param {Record<string, any>} [options] stream_modes, config … as for `run`
   */
  resume(answers, options = {}) {
    return this.client.resume({ ...options, threadId: this.threadId, answers });
  }

  /** Stop the run; its run_ended event (status cancelled) still arrives. */
  cancel() {
    return this.client.cancel(this);
  }

  [Symbol.asyncIterator]() {
    const queue = new EventQueue(this._backlog ?? []);
    this._backlog = null;
    if (this.finished) queue.end(this.status === 'failed' ? this._error : undefined);
    else this._queues.add(queue);
    return {
      next: () => queue.next(),
      return: () => {
        this._queues.delete(queue);
        queue.end();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() { return this; },
    };
  }

  /** @param {{run_id: string, thread_id: string}} frame */
  _accepted(frame) {
    this.runId = frame.run_id;
    this.threadId = frame.thread_id;
    if (this.status === 'starting') this.status = 'running';
    this._acceptedResolve({ runId: this.runId, threadId: this.threadId });
    this.emit('accepted', { runId: this.runId, threadId: this.threadId });
  }

  /** @param {any[]} events */
  _receive(events) {
    for (const event of events) {
      if (this._held) this._held.push(event);
      else this._take(event);
    }
  }

  /** @param {any} event */
  _take(event) {
    if (this.finished) return;
    if (this._rebase || (this.epoch && event.epoch !== this.epoch && !this.lastSeq)) {
      // After a resync the next event starts the cursor afresh, in the log's new epoch.
      this._rebase = false;
      this.epoch = event.epoch;
      this.lastSeq = event.seq - 1;
      this._early.clear();
    }
    if (this.epoch && event.epoch !== this.epoch) {
      // Only a lost log changes the epoch, and a join announces that (recovered: false).
      // Unannounced, reload rather than guess.
      this.client._resync(this, { epoch: event.epoch, first_seq: event.seq, recovered: false });
      this._held?.push(event);
      return;
    }
    if (event.seq <= this.lastSeq) {
      this.stats.duplicatesDropped += 1;
      return;
    }
    if (event.seq > this.lastSeq + 1) {
      this._early.set(event.seq, event);
      this.client._gap(this);
      return;
    }
    this._deliver(event);
    while (this._early.has(this.lastSeq + 1)) {
      const next = this._early.get(this.lastSeq + 1);
      this._early.delete(next.seq);
      this._deliver(next);
    }
    for (const seq of this._early.keys()) if (seq <= this.lastSeq) this._early.delete(seq);
  }

  /** @param {any} event */
  _deliver(event) {
    this.epoch = event.epoch;
    this.lastSeq = event.seq;
    this.runId ||= event.run_id;
    this.threadId ||= event.thread_id;
    if (this.status === 'starting') this.status = 'running';
    this.stats.delivered += 1;
    if (event.type === 'interrupt') this.interrupts.push(event);
    if (this._backlog) this._backlog.push(event);
    for (const queue of this._queues) queue.push(event);
    this.emit('event', event);
    this.emit(event.type, event);
    if (event.type === 'run_ended') this._finish(event);
  }

  /** @param {any} event */
  _finish(event) {
    if (this.finished) return;
    this.status = 'ended';
    this.result = event;
    for (const queue of this._queues) queue.end();
    this._queues.clear();
    this.client._forget(this);
    this._doneResolve(event);
    this.emit('end', event);
  }

  /** @param {GlassboxError} error */
  _fail(error) {
    if (this.finished) return;
    this.status = 'failed';
    this._error = error;
    for (const queue of this._queues) queue.end(error);
    this._queues.clear();
    this.client._forget(this);
    this._acceptedReject(error);
    this._doneReject(error);
    this.emit('error', error);
  }
}

/**
 * A connection to a Glassbox edge. One WebSocket carries every run; it reconnects by itself
 * with exponential backoff and jitter and re-attaches each active run at its cursor.
 */
export class GlassboxClient extends Emitter {
  /** @param {import('./glassbox').ClientOptions} [options] */
  constructor(options = {}) {
    super();
    const base = (options.url ?? globalThis.location?.origin ?? '').replace(/\/+$/, '');
    this.url = base.replace(/^ws(s?):/, 'http$1:');
    this.wsUrl = `${this.url.replace(/^http(s?):/, 'ws$1:')}/v1/ws`;
    this.options = { ...DEFAULTS, ...options, reconnect: { ...DEFAULTS.reconnect, ...options.reconnect } };
    this._token = options.token;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** @type {'websocket' | 'sse'} */
    this.transport = this.options.transport === 'sse' || !this._WebSocket ? 'sse' : 'websocket';
    /** @type {import('./glassbox').ConnectionState} */
    this.state = 'idle';
    /** @type {WebSocket | null} */
    this._ws = null;
    this._open = false;
    this._everOpened = false;
    this._failedOpens = 0;
    this._attempt = 0;
    this._ids = 0;
    this._userClosed = false;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._timer = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this._pinger = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._pongDeadline = null;
    /** @type {Set<Run>} runs not yet ended, in start order */
    this._active = new Set();
    /** @type {Map<string, Run>} */
    this._byRunId = new Map();
    /** @type {Map<string, {run?: Run, resolve?: Function, reject?: Function}>} */
    this._requests = new Map();
    /** @type {Set<Run>} runs with a re-join on the way (gap or stream error) */
    this._rejoining = new Set();
    this._abort = new AbortController();
    this._online = () => this._reconnectNow();
    globalThis.addEventListener?.('online', this._online);
    if (options.onState) this.on('state', options.onState);
  }

  /** Open the connection now (runs open it by themselves). */
  connect() {
    this._userClosed = false;
    if (this.transport === 'websocket') {
      if (!this._ws && !this._timer && !this._opening) this._openSocket();
    } else if (this.state === 'idle' || this.state === 'closed') {
      this._probe();
    }
    return this;
  }

  /**
   * Close for good: no reconnect. Runs go on server-side (unless they asked to be cancelled
   * on disconnect); their handles here fail with CLIENT_CLOSED, and `join` can pick them up.
   */
  close() {
    this._userClosed = true;
    const closed = new GlassboxError({ code: 'CLIENT_CLOSED', message: 'the client was closed' });
    for (const run of [...this._active]) run._fail(closed);
    this._abort.abort();
    globalThis.removeEventListener?.('online', this._online);
    if (this._timer) clearTimeout(this._timer);
    this._timer = null;
    if (this._ws) this._drop(this._ws, CloseCode.NORMAL, 'client closed');
    this._setState('closed', { code: CloseCode.NORMAL, reason: 'client closed' });
  }

  /**
   * Start a run. Without threadId a new thread is made for it (its id in `run.threadId`
   * once `run.accepted` resolves).
   * @param {import('./glassbox').RunOptions} options
   */
  run(options) {
    const body = this._runBody(options);
    body.graph = options.graph;
    body.input = options.input ?? {};
    const run = new Run(this, { op: 'run', body });
    if (!body.thread_id) {
      // Our own id, made before the run, so a run re-sent after a drop lands on the same
      // thread and its command_id is applied once.
      run.threadId = body.thread_id = newId();
      run._needsThread = this.transport === 'websocket';
    }
    this._start(run);
    return run;
  }

  /**
   * Answer a paused thread: `answers` per interrupt id, or `value` for its only interrupt.
   * @param {import('./glassbox').ResumeOptions} options
   */
  resume(options) {
    const body = this._runBody(options);
    if (!body.thread_id) throw new TypeError('resume needs the threadId of the paused thread');
    if (options.answers !== undefined) body.answers = options.answers;
    if ('value' in options) body.value = options.value;
    if (options.update !== undefined) body.update = options.update;
    const run = new Run(this, { op: 'resume', body });
    this._start(run);
    return run;
  }

  /**
   * Follow a run that is already going (after a page reload, in another tab …), from
   * after `afterSeq` (0: from its first event).
   * @param {import('./glassbox').JoinOptions} options
   */
  join(options) {
    const run = new Run(this, {
      op: 'join',
      body: {
        run_id: options.runId,
        thread_id: options.threadId,
        epoch: options.epoch ?? '',
        after_seq: options.afterSeq ?? 0,
      },
    });
    this._active.add(run);
    this._byRunId.set(run.runId, run);
    if (this.transport === 'sse') this._sseDrive(run);
    else if (this._open) this._sendJoin(run);
    else this.connect();
    return run;
  }

  /** @param {Run | string} run a run handle or a run id @param {string} [threadId] */
  async cancel(run, threadId) {
    const handle = typeof run === 'string' ? this._byRunId.get(run) : run;
    const runId = typeof run === 'string' ? run : run.runId || (await run.accepted).runId;
    const thread = threadId ?? handle?.threadId ?? '';
    if (this.transport === 'websocket' && this._open) {
      return new Promise((resolve, reject) => {
        const id = this._id('x');
        this._requests.set(id, { resolve, reject });
        this._send({ op: 'cancel', id, run_id: runId });
      });
    }
    return this.http('POST', `/v1/threads/${enc(thread)}/runs/${enc(runId)}/cancel`);
  }

  // -- REST ------------------------------------------------------------------------------

  /** @param {string} threadId @param {{checkpointId?: string}} [options] */
  getState(threadId, options = {}) {
    const query = options.checkpointId ? `?checkpoint_id=${enc(options.checkpointId)}` : '';
    return this.http('GET', `/v1/threads/${enc(threadId)}/state${query}`);
  }

  /** @param {string} threadId @param {{limit?: number, before?: string}} [options] */
  getHistory(threadId, options = {}) {
    const params = new URLSearchParams({ limit: String(options.limit ?? 20) });
    if (options.before) params.set('before', options.before);
    return this.http('GET', `/v1/threads/${enc(threadId)}/history?${params}`);
  }

  /** @param {string} threadId */
  getThread(threadId) {
    return this.http('GET', `/v1/threads/${enc(threadId)}`);
  }

  /** @param {{graph: string, threadId?: string, metadata?: object, ifExists?: 'error' | 'return'}} options */
  async createThread(options) {
    const body = /** @type {Record<string, unknown>} */ ({ graph: options.graph });
    if (options.threadId) body.thread_id = options.threadId;
    if (options.metadata) body.metadata = options.metadata;
    if (options.ifExists) body.if_exists = options.ifExists;
    return this.http('POST', '/v1/threads', body);
  }

  /** @param {string} threadId */
  deleteThread(threadId) {
    return this.http('DELETE', `/v1/threads/${enc(threadId)}`);
  }

  /** @param {string} threadId @param {{pageSize?: number}} [options] */
  listRuns(threadId, options = {}) {
    return this.http('GET', `/v1/threads/${enc(threadId)}/runs?page_size=${options.pageSize ?? 20}`);
  }

  /** @param {string} threadId @param {string} runId */
  getRun(threadId, runId) {
    return this.http('GET', `/v1/threads/${enc(threadId)}/runs/${enc(runId)}`);
  }

  listGraphs() {
    return this.http('GET', '/v1/graphs');
  }

  /**
   * A REST call: JSON in, JSON out, failures as GlassboxError.
   * @param {string} method @param {string} path @param {unknown} [body]
   * @param {{signal?: AbortSignal, headers?: Record<string, string>}} [extra]
   */
  async http(method, path, body, extra = {}) {
    const response = await this._request(method, path, body, extra);
    if (!response.ok) throw await errorOf(response);
    if (response.status === 204) return null;
    return response.json();
  }

  /** @param {string} method @param {string} path @param {unknown} [body] @param {{signal?: AbortSignal, headers?: Record<string, string>}} [extra] */
  async _request(method, path, body, extra = {}) {
    /** @type {Record<string, string>} */
    const headers = { ...extra.headers };
    const token = await this._tokenValue();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return this._fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: extra.signal ?? this._abort.signal,
      credentials: 'same-origin',
    });
  }

  async _tokenValue() {
    const token = typeof this._token === 'function' ? await this._token() : this._token;
    return token || '';
  }

  // -- runs, whatever the transport -----------------------------------------------------

  /** @param {Record<string, any>} options */
  _runBody(options) {
    /** @type {Record<string, any>} */
    const body = { command_id: options.commandId ?? newId() };
    if (options.threadId) body.thread_id = options.threadId;
    if (options.streamModes) body.stream_modes = options.streamModes;
    if (options.subgraphs !== undefined) body.subgraphs = options.subgraphs;
    if (options.config) body.config = options.config;
    if (options.metadata) body.metadata = options.metadata;
    if (options.ifBusy) body.if_busy = options.ifBusy;
    if (options.cancelOnDisconnect !== undefined) body.cancel_on_disconnect = options.cancelOnDisconnect;
    if (options.interruptBefore) body.interrupt_before = options.interruptBefore;
    if (options.interruptAfter) body.interrupt_after = options.interruptAfter;
    return body;
  }

  /** @param {Run} run */
  _start(run) {
    this._active.add(run);
    if (this.transport === 'sse') this._sseDrive(run);
    else if (this._open) this._sendRun(run);
    else this.connect();
  }

  /** @param {Run} run */
  _forget(run) {
    this._active.delete(run);
    this._rejoining.delete(run);
    if (run.runId && this._byRunId.get(run.runId) === run) this._byRunId.delete(run.runId);
    for (const [id, request] of this._requests) if (request.run === run) this._requests.delete(id);
  }

  /** A gap in seq: ask for the missing events (the early ones wait in order). @param {Run} run */
  _gap(run) {
    if (this.transport === 'websocket' && this._open && !this._rejoining.has(run)) {
      this._rejoining.add(run);
      this._sendJoin(run);
    }
  }

  /**
   * The log could not fill the gap: hold the run's events, reload state over REST, tell the
   * application (`resync`), then go on from the first event the log still has.
   * @param {Run} run @param {{epoch?: string, first_seq?: number, recovered?: boolean, status?: string}} info
   */
  async _resync(run, info) {
    if (run._held) return;
    run._held = [];
    run.stats.resynced += 1;
    let state = null;
    let record = null;
    try {
      [state, record] = await Promise.all([
        this.getState(run.threadId),
        run.runId ? this.getRun(run.threadId, run.runId) : null,
      ]);
    } catch (err) {
      report(err);
    }
    const held = run._held;
    run._held = null;
    run._rebase = true;
    run.emit('resync', { state, run: record, epoch: info.epoch ?? '', firstSeq: info.first_seq ?? 0 });
    run._receive(held);
    // The join answer says when the run had ended already (nothing follows it then); the
    // record alone may be older than a live run_ended, which gets a moment to win.
    const joinedEnded = TERMINAL.has(info.status ?? '');
    const ended = joinedEnded ? info.status : record && TERMINAL.has(record.status) ? record.status : null;
    if (ended && !run.finished) {
      if (!joinedEnded) await sleep(1000);
      if (!run.finished) {
        run._finish({
          type: 'run_ended',
          run_id: run.runId,
          thread_id: run.threadId,
          epoch: run.epoch,
          seq: 0,
          ns: [],
          time: Date.now(),
          status: ended,
          output: state?.values ?? null,
          resynced: true,
        });
      }
    }
  }

  // -- WebSocket --------------------------------------------------------------------------

  _id(prefix = 'r') {
    this._ids += 1;
    return `${prefix}${this._ids}`;
  }

  /** Send a frame; false when it is over the edge's limit (it would close the socket). @param {Record<string, unknown>} frame */
  _send(frame) {
    const text = JSON.stringify(frame);
    if (this.maxFrameBytes && text.length * 3 > this.maxFrameBytes && new TextEncoder().encode(text).length > this.maxFrameBytes) {
      return false;
    }
    this._ws?.send(text);
    return true;
  }

  /** @param {Run} run */
  _sendRun(run) {
    if (run._needsThread) {
      run._needsThread = false;
      const { graph, thread_id: threadId } = run.request.body;
      this.createThread({ graph, threadId, ifExists: 'return' }).then(
        () => this._open && !run.finished && !run.runId && this._sendRun(run),
        (/** @type {GlassboxError} */ err) => {
          if (!err.retryable) return run._fail(err);
          run._needsThread = true;
          setTimeout(() => this._open && !run.finished && this._sendRun(run), this._delay());
        },
      );
      return;
    }
    const id = this._id(run.request.op === 'resume' ? 'u' : 'r');
    this._requests.set(id, { run });
    if (!this._send({ op: run.request.op, id, ...run.request.body })) {
      this._requests.delete(id);
      run._fail(new GlassboxError({
        code: 'MESSAGE_TOO_LARGE',
        message: `the ${run.request.op} frame is over the edge's ${this.maxFrameBytes}-byte limit`,
        hint: 'send less input, or raise the edge’s --max-frame-bytes',
      }));
    }
  }

  /** @param {Run} run */
  _sendJoin(run) {
    const id = this._id('j');
    this._requests.set(id, { run });
    /** @type {Record<string, unknown>} */
    const frame = { op: 'join', id, run_id: run.runId, after_seq: run.lastSeq };
    if (run.epoch) frame.epoch = run.epoch;
    this._send(frame);
  }

  async _openSocket() {
    this._timer = null;
    if (this._userClosed || this._opening) return;
    this._opening = true;
    this._setState(this._everOpened || this._attempt ? 'reconnecting' : 'connecting', { attempt: this._attempt });
    const token = await this._tokenValue().finally(() => { this._opening = false; });
    const protocols = [PROTOCOL];
    const inHandshake = token && TOKEN_CHARS.test(token);
    if (inHandshake) protocols.push(`bearer.${token}`);
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new this._WebSocket(this.wsUrl, protocols);
    } catch (err) {
      report(err);
      if (this.options.transport === 'auto') this._fallBack();
      else this._closed(1006, String(err));
      return;
    }
    this._ws = ws;
    const welcomeTimer = setTimeout(() => this._drop(ws, 4000, 'no welcome'), this.options.welcomeTimeoutMs);
    ws.onopen = () => {
      if (token && !inHandshake) ws.send(JSON.stringify({ op: 'auth', token }));
    };
    ws.onmessage = (message) => {
      if (typeof message.data !== 'string') return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this._alive();
      if (frame.type === 'welcome') {
        clearTimeout(welcomeTimer);
        this._welcome(ws, frame);
      } else this._frame(frame);
    };
    ws.onclose = (event) => {
      clearTimeout(welcomeTimer);
      if (this._ws === ws) this._closed(event.code, event.reason);
    };
    ws.onerror = () => {};
  }

  /** @param {WebSocket} ws @param {any} frame */
  _welcome(ws, frame) {
    this._open = true;
    this._everOpened = true;
    this._failedOpens = 0;
    this._attempt = 0;
    this.principal = frame.principal;
    this.maxFrameBytes = frame.max_frame_bytes;
    this._rejoining.clear();
    for (const run of this._active) {
      if (run.runId) this._sendJoin(run);
      else this._sendRun(run); // never accepted: the same command_id again, applied once
    }
    this._startPinging(ws);
    this._setState('open', { principal: frame.principal });
  }

  /** @param {any} frame */
  _frame(frame) {
    const request = frame.id ? this._requests.get(frame.id) : undefined;
    switch (frame.type) {
      case 'accepted': {
        const run = request?.run;
        if (!run || run.finished) return;
        this._byRunId.set(frame.run_id, run);
        if (run._attached) run.stats.reattached += 1;
        run._attached = true;
        if (run.status === 'starting') run._accepted(frame);
        if (frame.recovered === false) this._resync(run, frame);
        return;
      }
      case 'events': {
        const run = this._byRunId.get(frame.run_id) ?? request?.run;
        if (run) {
          this._rejoining.delete(run);
          run._receive(frame.events);
        }
        return;
      }
      case 'error':
        this._error(frame, request);
        return;
      case 'cancelled':
        if (frame.id) this._requests.delete(frame.id);
        request?.resolve?.(frame.run);
        return;
      case 'pong':
        if (frame.id) this._requests.delete(frame.id);
        return;
      default:
    }
  }

  /** @param {any} frame @param {{run?: Run, reject?: Function} | undefined} request */
  _error(frame, request) {
    const error = new GlassboxError(frame.error);
    if (frame.id) this._requests.delete(frame.id);
    if (request?.reject) return request.reject(error);
    const run = request?.run ?? (frame.run_id ? this._byRunId.get(frame.run_id) : undefined);
    if (!run) {
      this.emit('error', error);
      return;
    }
    if (run.request.op === 'run' && error.code === 'THREAD_NOT_FOUND' && !run._createdThread) {
      // A thread id the server has not seen (a fresh conversation): make it, then run.
      run._createdThread = true;
      this.createThread({ graph: run.request.body.graph, threadId: run.threadId, ifExists: 'return' })
        .then(() => (this._open ? this._sendRun(run) : undefined))
        .catch((err) => run._fail(err));
      return;
    }
    if (error.retryable && run.runId) {
      // The run's stream broke upstream; the run goes on in the log: re-attach shortly.
      this._rejoining.delete(run);
      setTimeout(() => this._open && !run.finished && this._sendJoin(run), this._delay());
      return;
    }
    run._fail(error);
  }

  /** @param {number} code @param {string} reason */
  _closed(code, reason) {
    this._ws = null;
    this._open = false;
    this._stopPinging();
    for (const [id, request] of this._requests) {
      if (request.reject) request.reject(new GlassboxError({ code: 'UNAVAILABLE', message: 'connection lost', retryable: true }, code));
      if (!request.run) this._requests.delete(id);
    }
    this._requests.clear();
    if (this._userClosed) return;
    if (FATAL_CLOSE.has(code)) {
      const error = new GlassboxError({ code: code === 4401 ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED', message: reason || 'refused' }, code);
      this._setState('closed', { code, reason });
      for (const run of [...this._active]) run._fail(error);
      this.emit('error', error);
      return;
    }
    if (!this._everOpened) {
      this._failedOpens += 1;
      if (this.options.transport === 'auto' && this._failedOpens >= this.options.fallbackAfter) {
        this._fallBack();
        return;
      }
    }
    const delay = code === CloseCode.SLOW_CONSUMER && this._attempt === 0 ? 0 : this._delay(code);
    this._attempt += 1;
    this._setState('reconnecting', { attempt: this._attempt, delayMs: Math.round(delay), code, reason });
    this._timer = setTimeout(() => this._openSocket(), delay);
  }

  /** Exponential backoff with jitter: half fixed, half random, capped. @param {number} [code] */
  _delay(code) {
    const { initialDelayMs, maxDelayMs, factor } = this.options.reconnect;
    const base = Math.min(maxDelayMs, initialDelayMs * factor ** this._attempt);
    const delay = base / 2 + (Math.random() * base) / 2;
    return code === CloseCode.RATE_LIMITED ? Math.max(delay, 5000) : delay;
  }

  _reconnectNow() {
    if (this._timer && this.transport === 'websocket') {
      clearTimeout(this._timer);
      this._openSocket();
    }
  }

  /** Forget a socket now (a dead peer may never send its close) and carry on. @param {WebSocket} ws @param {number} code @param {string} reason */
  _drop(ws, code, reason) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code === CloseCode.NORMAL ? code : 4000, reason);
    } catch {
      // closing a socket that never opened throws in some browsers
    }
    if (this._ws === ws) this._closed(code, reason);
  }

  /** @param {WebSocket} ws */
  _startPinging(ws) {
    this._stopPinging();
    this._pinger = setInterval(() => {
      if (this._ws !== ws || this._pongDeadline) return;
      this._send({ op: 'ping', id: this._id('p') });
      this._pongDeadline = setTimeout(() => this._drop(ws, 4000, 'no answer to ping'), this.options.pongTimeoutMs);
    }, this.options.pingIntervalMs);
  }

  _stopPinging() {
    if (this._pinger) clearInterval(this._pinger);
    this._pinger = null;
    this._alive();
  }

  _alive() {
    if (this._pongDeadline) clearTimeout(this._pongDeadline);
    this._pongDeadline = null;
  }

  /** WebSockets never got through: carry on over SSE, re-attaching what is active. */
  _fallBack() {
    if (this.transport === 'sse') return;
    this.transport = 'sse';
    this._attempt = 0;
    this.emit('transport', 'sse');
    this._probe();
    for (const run of this._active) this._sseDrive(run);
  }

  // -- SSE over fetch ---------------------------------------------------------------------

  async _probe() {
    for (let attempt = 0; !this._userClosed; attempt += 1) {
      this._setState(attempt || this._everOpened ? 'reconnecting' : 'connecting', { attempt });
      try {
        const response = await this._request('GET', '/healthz');
        if (response.ok) {
          this._everOpened = true;
          this._setState('open', {});
          return;
        }
      } catch {
        // unreachable: try again
      }
      this._attempt = attempt;
      await sleep(this._delay(), this._abort.signal);
    }
  }

  /** Stream one run over SSE until it ends, re-attaching with Last-Event-ID after drops. @param {Run} run */
  async _sseDrive(run) {
    if (run._sse) return;
    run._sse = true;
    for (let attempt = 0; !run.finished && !this._userClosed; attempt += 1) {
      try {
        const response = run.runId ? await this._sseGet(run) : await this._ssePost(run);
        if (response === null) {
          await this._settle(run);
          return;
        }
        if (this.state !== 'open') this._setState('open', {});
        attempt = 0;
        // An `end` before run_ended (a draining edge, say) is one more drop: re-attach, and
        // the edge answers 204 when there is nothing more to come.
        await this._sseRead(run, response);
      } catch (err) {
        if (this._userClosed) return;
        if (err instanceof GlassboxError && !err.retryable) {
          run._fail(err);
          return;
        }
      }
      if (run.finished) return;
      this._attempt = attempt;
      const delay = this._delay();
      this._setState('reconnecting', { attempt: attempt + 1, delayMs: Math.round(delay) });
      await sleep(delay, this._abort.signal);
    }
  }

  /** @param {Run} run */
  async _ssePost(run) {
    const { thread_id: threadId, ...body } = run.request.body;
    const response = await this._request('POST', `/v1/threads/${enc(threadId)}/runs/stream`, body, {
      headers: { accept: 'text/event-stream' },
    });
    if (!response.ok) throw await errorOf(response);
    const runId = response.headers.get('x-glassbox-run-id');
    run._attached = true;
    if (runId) {
      this._byRunId.set(runId, run);
      run._accepted({ run_id: runId, thread_id: threadId });
    }
    return response;
  }

  /** @param {Run} run */
  async _sseGet(run) {
    /** @type {Record<string, string>} */
    const headers = { accept: 'text/event-stream' };
    if (run.lastSeq) headers['last-event-id'] = `${run.epoch}:${run.lastSeq}`;
    const path = `/v1/threads/${enc(run.threadId)}/runs/${enc(run.runId)}/stream`;
    const response = await this._request('GET', run.lastSeq ? path : `${path}?after_seq=0`, undefined, { headers });
    if (response.status === 204) return null;
    if (!response.ok) throw await errorOf(response);
    if (run._attached) run.stats.reattached += 1;
    run._attached = true;
    if (run.status === 'starting') run._accepted({ run_id: run.runId, thread_id: run.threadId });
    return response;
  }

  /** Read SSE frames into the run: 'end' at the end frame, 'dropped' when the body broke off. @param {Run} run @param {Response} response */
  async _sseRead(run, response) {
    if (!response.body) return 'dropped';
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    /** @type {{event: string, data: string[]}} */
    let frame = { event: 'message', data: [] };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'dropped';
        buffer += value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop() ?? '';
        for (const line of lines) {
          if (line === '') {
            if (frame.data.length) {
              const ending = await this._sseFrame(run, frame.event, frame.data.join('\n'));
              if (ending) return ending;
            }
            frame = { event: 'message', data: [] };
          } else if (line.startsWith(':')) {
            // heartbeat
          } else {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') frame.event = text;
            else if (field === 'data') frame.data.push(text);
          }
        }
      }
    } catch (err) {
      if (this._userClosed) return 'end';
      return 'dropped';
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /** @param {Run} run @param {string} event @param {string} data @returns {Promise<'end' | 'dropped' | null>} */
  async _sseFrame(run, event, data) {
    const body = JSON.parse(data);
    if (event === 'end') return 'end';
    if (event === 'status') {
      if (body.recovered === false) await this._resync(run, body);
      return null;
    }
    if (event === 'error') {
      const error = new GlassboxError(body);
      if (error.retryable) return 'dropped';
      run._fail(error);
      return 'end';
    }
    if (!run.runId && body.run_id) this._byRunId.set(body.run_id, run);
    run._receive([body]);
    return run.finished ? 'end' : null;
  }

  /** Nothing more will stream, yet no run_ended reached us: take the record's word. @param {Run} run */
  async _settle(run) {
    if (run.finished) return;
    await this._resync(run, { recovered: false });
  }

  // -- state ------------------------------------------------------------------------------

  /** @param {import('./glassbox').ConnectionState} state @param {Record<string, unknown>} detail */
  _setState(state, detail) {
    const changed = state !== this.state;
    this.state = state;
    if (changed || state === 'reconnecting') {
      this.emit('state', { state, transport: this.transport, ...detail });
    }
  }
}

/** @param {string} value */
function enc(value) {
  return encodeURIComponent(value);
}

/** @param {Response} response */
async function errorOf(response) {
  let body = {};
  try {
    body = (await response.json()).error ?? {};
  } catch {
    // not JSON: a proxy's page, say
  }
  const retryable = response.status >= 500 || response.status === 429;
  return new GlassboxError({ code: `HTTP_${response.status}`, retryable, ...body }, response.status);
}
