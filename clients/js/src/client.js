// @ts-check
import { Emitter, report } from './emitter.js';
import { GlassboxError, errorOf } from './errors.js';
import { CloseCode, FINISHED_RUN_STATUSES } from './names.js';
import { RunControl } from './run.js';
import { SseTransport } from './sse.js';
import { sleep } from './transport.js';
import { WebSocketTransport } from './websocket.js';

/** @import { ResyncInfo, Run } from './run.js' */
/** @import { RequestExtra, RunTransport, Settings } from './transport.js' */
/** @import { ClientOptions, ConnectionState, Json, RunRecord, StateChange, Thread, ThreadState, Transport } from './types.js' */

/** @type {Settings} */
const DEFAULTS = {
  transport: 'auto',
  reconnect: { initialDelayMs: 250, maxDelayMs: 10_000, factor: 2 },
  pingIntervalMs: 15_000,
  pongTimeoutMs: 10_000,
  welcomeTimeoutMs: 10_000,
  fallbackAfter: 2,
};
/** @type {ReadonlySet<string>} */
const FINISHED = new Set(FINISHED_RUN_STATUSES);
// A run_ended that is on its way beats the record read during a resync, given this long.
const RECORD_GRACE_MS = 1000;

/** @param {string} value */
const enc = (value) => encodeURIComponent(value);

/** A random UUID, also where crypto.randomUUID is missing (plain-http pages). */
export function newId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * A connection to a Glassbox edge. One WebSocket carries every run; it reconnects by itself
 * with exponential backoff and jitter and re-attaches each active run at its cursor. Where
 * WebSockets are missing or never get through, runs go over SSE instead.
 * @extends {Emitter<{state: StateChange, transport: Transport, error: GlassboxError}>}
 */
export class GlassboxClient extends Emitter {
  /** @type {RunTransport} */
  #transport;
  #fetch;
  #token;
  #userClosed = false;
  #abort = new AbortController();
  /** @type {Set<RunControl>} runs not yet ended, in start order */
  #active = new Set();
  /** @type {Map<string, RunControl>} */
  #byRunId = new Map();
  #online = () => this.#transport.reconnectNow();

  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    super();
    const base = (options.url ?? globalThis.location?.origin ?? '').replace(/\/+$/, '');
    this.url = base.replace(/^ws(s?):/, 'http$1:');
    this.wsUrl = `${this.url.replace(/^http(s?):/, 'ws$1:')}/v1/ws`;
    /** @type {Settings} */
    this.options = { ...DEFAULTS, ...options, reconnect: { ...DEFAULTS.reconnect, ...options.reconnect } };
    this.#token = options.token;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** @type {ConnectionState} */
    this.state = 'idle';
    /** @type {string | undefined} Who the edge says we are (after the welcome). */
    this.principal = undefined;
    const host = this.#host();
    const WebSocketClass = options.WebSocket ?? globalThis.WebSocket;
    this.#transport = this.options.transport === 'sse' || !WebSocketClass
      ? new SseTransport(host)
      : new WebSocketTransport(host, WebSocketClass);
    globalThis.addEventListener?.('online', this.#online);
    if (options.onState) this.on('state', options.onState);
  }

  /** @returns {Transport} */
  get transport() {
    return this.#transport.name;
  }

  /** Open the connection now (runs open it by themselves). */
  connect() {
    this.#userClosed = false;
    this.#transport.connect();
    return this;
  }

  /**
   * Close for good: no reconnect. Runs go on server-side (unless they asked to be cancelled
   * on disconnect); their handles here fail with CLIENT_CLOSED, and `join` can pick them up.
   */
  close() {
    this.#userClosed = true;
    const closed = new GlassboxError({ code: 'CLIENT_CLOSED', message: 'the client was closed' });
    for (const control of [...this.#active]) control.fail(closed);
    this.#abort.abort();
    globalThis.removeEventListener?.('online', this.#online);
    this.#transport.close();
    this.#setState('closed', { code: CloseCode.NORMAL, reason: 'client closed' });
  }

  /**
   * Start a run. Without threadId a new thread is made for it (its id in `run.threadId`
   * once `run.accepted` resolves).
   * @param {import('./types.js').RunOptions} options
   * @returns {Run}
   */
  run(options) {
    const body = runBody(options);
    body.graph = options.graph;
    body.input = options.input ?? {};
    // Our own id, made before the run, so a run re-sent after a drop lands on the same
    // thread and its command_id is applied once. The run creates the thread: the agent
    // makes a thread it has not seen for a run that names a graph.
    body.thread_id ||= newId();
    return this.#start(new RunControl(this, this.#owner, { op: 'run', body }));
  }

  /**
   * Answer a paused thread: `answers` per interrupt id, or `value` for its only interrupt.
   * @param {import('./types.js').ResumeOptions} options
   * @returns {Run}
   */
  resume(options) {
    const body = runBody(options);
    if (!body.thread_id) throw new TypeError('resume needs the threadId of the paused thread');
    if (options.answers !== undefined) body.answers = options.answers;
    if ('value' in options) body.value = options.value;
    if (options.update !== undefined) body.update = options.update;
    return this.#start(new RunControl(this, this.#owner, { op: 'resume', body }));
  }

  /**
   * Follow a run that is already going (after a page reload, in another tab …), from
   * after `afterSeq` (0: from its first event).
   * @param {import('./types.js').JoinOptions} options
   * @returns {Run}
   */
  join(options) {
    const control = new RunControl(this, this.#owner, {
      op: 'join',
      body: {
        run_id: options.runId,
        thread_id: options.threadId,
        epoch: options.epoch ?? '',
        after_seq: options.afterSeq ?? 0,
      },
    });
    this.#active.add(control);
    this.#byRunId.set(options.runId, control);
    this.#transport.join(control);
    return control.run;
  }

  /**
   * Stop a run; its run_ended event (status cancelled) still arrives.
   * @param {Run | string} run a run handle or a run id @param {string} [threadId]
   * @returns {Promise<RunRecord>}
   */
  async cancel(run, threadId) {
    const handle = typeof run === 'string' ? this.#byRunId.get(run)?.run : run;
    const runId = typeof run === 'string' ? run : run.runId || (await run.accepted).runId;
    const thread = threadId ?? handle?.threadId ?? '';
    return this.#transport.cancel(runId)
      ?? this.http('POST', `/v1/threads/${enc(thread)}/runs/${enc(runId)}/cancel`);
  }

  // -- REST ------------------------------------------------------------------------------

  /** @param {string} threadId @param {{checkpointId?: string}} [options] @returns {Promise<ThreadState>} */
  getState(threadId, options = {}) {
    const query = options.checkpointId ? `?checkpoint_id=${enc(options.checkpointId)}` : '';
    return this.http('GET', `/v1/threads/${enc(threadId)}/state${query}`);
  }

  /** @param {string} threadId @param {{limit?: number, before?: string}} [options] @returns {Promise<{states: ThreadState[]}>} */
  getHistory(threadId, options = {}) {
    const params = new URLSearchParams({ limit: String(options.limit ?? 20) });
    if (options.before) params.set('before', options.before);
    return this.http('GET', `/v1/threads/${enc(threadId)}/history?${params}`);
  }

  /** @param {string} threadId @returns {Promise<Thread>} */
  getThread(threadId) {
    return this.http('GET', `/v1/threads/${enc(threadId)}`);
  }

  /**
   * @param {{graph: string, threadId?: string, metadata?: { [key: string]: Json }, ifExists?: 'error' | 'return'}} options
   * @returns {Promise<Thread>}
   */
  async createThread(options) {
    const body = /** @type {Record<string, unknown>} */ ({ graph: options.graph });
    if (options.threadId) body.thread_id = options.threadId;
    if (options.metadata) body.metadata = options.metadata;
    if (options.ifExists) body.if_exists = options.ifExists;
    return this.http('POST', '/v1/threads', body);
  }

  /** @param {string} threadId @returns {Promise<null>} */
  deleteThread(threadId) {
    return this.http('DELETE', `/v1/threads/${enc(threadId)}`);
  }

  /** @param {string} threadId @param {{pageSize?: number}} [options] @returns {Promise<{runs: RunRecord[], next_page_token: string}>} */
  listRuns(threadId, options = {}) {
    return this.http('GET', `/v1/threads/${enc(threadId)}/runs?page_size=${options.pageSize ?? 20}`);
  }

  /** @param {string} threadId @param {string} runId @returns {Promise<RunRecord>} */
  getRun(threadId, runId) {
    return this.http('GET', `/v1/threads/${enc(threadId)}/runs/${enc(runId)}`);
  }

  /** @returns {Promise<{graphs: Json[]}>} */
  listGraphs() {
    return this.http('GET', '/v1/graphs');
  }

  /**
   * A REST call: JSON in, JSON out, failures as GlassboxError.
   * @param {string} method @param {string} path @param {unknown} [body] @param {RequestExtra} [extra]
   * @returns {Promise<any>}
   */
  async http(method, path, body, extra = {}) {
    const response = await this.#request(method, path, body, extra);
    if (!response.ok) throw await errorOf(response);
    if (response.status === 204) return null;
    return response.json();
  }

  /** @param {string} method @param {string} path @param {unknown} [body] @param {RequestExtra} [extra] */
  async #request(method, path, body, extra = {}) {
    /** @type {Record<string, string>} */
    const headers = { ...extra.headers };
    const token = await this.#tokenValue();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return this.#fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: extra.signal ?? this.#abort.signal,
      credentials: 'same-origin',
    });
  }

  async #tokenValue() {
    const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    return token || '';
  }

  // -- runs, whatever the transport -----------------------------------------------------

  /** @param {RunControl} control */
  #start(control) {
    this.#active.add(control);
    this.#transport.start(control);
    return control.run;
  }

  /** What the runs' controls may reach of this client. @type {import('./run.js').RunOwner} */
  #owner = {
    forget: (control) => this.#forget(control),
    gap: (control) => this.#transport.gap(control),
    resync: (control, info) => this.#resync(control, info),
  };

  /** The run is over: forget it. @param {RunControl} control */
  #forget(control) {
    this.#active.delete(control);
    const { runId } = control.run;
    if (runId && this.#byRunId.get(runId) === control) this.#byRunId.delete(runId);
    this.#transport.forget(control);
  }

  /**
   * The log could not fill the gap: hold the run's events, reload state over REST, tell the
   * application (`resync`), then go on from the first event the log still has.
   * @param {RunControl} control @param {ResyncInfo} info
   */
  async #resync(control, info) {
    if (!control.hold()) return;
    const run = control.run;
    /** @type {ThreadState | null} */
    let state = null;
    /** @type {RunRecord | null} */
    let record = null;
    try {
      [state, record] = await Promise.all([
        this.getState(run.threadId),
        run.runId ? this.getRun(run.threadId, run.runId) : null,
      ]);
    } catch (err) {
      report(err);
    }
    control.release({ state, run: record, epoch: info.epoch ?? '', firstSeq: info.first_seq ?? 0 });
    // The join answer says when the run had ended already (nothing follows it then); the
    // record alone may be older than a live run_ended, which gets a moment to win.
    const joinedEnded = FINISHED.has(info.status ?? '');
    const ended = joinedEnded ? info.status : record && FINISHED.has(record.status) ? record.status : null;
    if (!ended || control.finished) return;
    if (!joinedEnded) await sleep(RECORD_GRACE_MS);
    if (control.finished) return;
    control.finish({
      type: 'run_ended',
      run_id: run.runId,
      thread_id: run.threadId,
      epoch: run.epoch,
      seq: 0,
      ns: [],
      time: Date.now(),
      status: /** @type {import('./names.js').RunStatus} */ (ended),
      output: state?.values ?? null,
      resynced: true,
    });
  }

  /** WebSockets never got through: carry on over SSE, re-attaching what is active. */
  #fallBack() {
    if (this.#transport.name === 'sse') return;
    this.#transport = new SseTransport(this.#host());
    this.emit('transport', 'sse');
    this.#transport.connect();
    for (const control of this.#active) this.#transport.join(control);
  }

  /** What the transports may reach of this client. @returns {import('./transport.js').TransportHost} */
  #host() {
    const client = this;
    return {
      options: this.options,
      url: this.url,
      wsUrl: this.wsUrl,
      get state() { return client.state; },
      get principal() { return client.principal; },
      set principal(value) { client.principal = value; },
      active: () => this.#active,
      find: (runId) => this.#byRunId.get(runId),
      track: (runId, control) => { this.#byRunId.set(runId, control); },
      resync: (control, info) => this.#resync(control, info),
      setState: (state, detail) => this.#setState(state, detail),
      fallBack: () => this.#fallBack(),
      error: (error) => this.emit('error', error),
      request: (method, path, body, extra) => this.#request(method, path, body, extra),
      token: () => this.#tokenValue(),
      closed: () => this.#userClosed,
      signal: this.#abort.signal,
    };
  }

  /** @param {ConnectionState} state @param {Record<string, unknown>} detail */
  #setState(state, detail) {
    const changed = state !== this.state;
    this.state = state;
    if (changed || state === 'reconnecting') {
      this.emit('state', { state, transport: this.transport, ...detail });
    }
  }
}

/** The wire body of a run or resume from its options. @param {import('./types.js').RunSettings} options */
function runBody(options) {
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

