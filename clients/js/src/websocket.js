// @ts-check
// Runs over WebSocket /v1/ws: one socket carries every run; it reconnects by itself and
// re-attaches each active run at its cursor. The token travels as a `bearer.<token>`
// subprotocol (or in the first frame), never in the URL.
import { report } from './emitter.js';
import { GlassboxError, connectionLost } from './errors.js';
import { CloseCode, ErrorCode } from './names.js';
import { backoff } from './transport.js';

/** @import { RunControl } from './run.js' */
/** @import { TransportHost } from './transport.js' */
/** @import { RunEvent, RunRecord } from './types.js' */
/**
 * The frames the edge sends (edge/frames.py's SERVER_FRAMES).
 * @typedef {{type: 'welcome', principal: string, protocol: string, max_frame_bytes: number}
 *   | {type: 'accepted', id: string, run_id: string, thread_id: string, recovered?: boolean, epoch?: string, first_seq?: number, status?: string}
 *   | {type: 'events', id?: string, run_id: string, events: RunEvent[]}
 *   | {type: 'error', id?: string, run_id?: string, error: {code: string, message: string, hint?: string, retryable: boolean}}
 *   | {type: 'cancelled', id?: string, run: RunRecord}
 *   | {type: 'pong', id?: string}} ServerFrame
 */
/** @typedef {Exclude<ServerFrame, {type: 'welcome'}>} RunFrame */
/** @typedef {{run?: RunControl, resolve?: (record: RunRecord) => void, reject?: (error: GlassboxError) => void}} Pending */

export const PROTOCOL = 'glassbox.v1';
// RFC 6455 subprotocol names are HTTP tokens; other tokens go in the first frame.
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Refusals that another attempt cannot change: the run handles fail with them.
/** @type {Map<number, string>} */
const FATAL_CLOSE = new Map([
  [CloseCode.UNAUTHENTICATED, ErrorCode.UNAUTHENTICATED],
  [CloseCode.FORBIDDEN, ErrorCode.PERMISSION_DENIED],
]);
// Our own closes (no welcome, no pong): not the edge's codes.
const CLIENT_GAVE_UP = 4000;

/** A RunTransport (transport.js); the client holds it as one, which checks the shape. */
export class WebSocketTransport {
  /** @type {'websocket'} */
  name = 'websocket';
  /** @type {WebSocket | null} */
  #ws = null;
  #open = false;
  #opening = false;
  #everOpened = false;
  #failedOpens = 0;
  #attempt = 0;
  #ids = 0;
  /** @type {number} the edge's frame limit, from its welcome */
  #maxFrameBytes = 0;
  /** @type {ReturnType<typeof setTimeout> | null} */
  #timer = null;
  /** @type {ReturnType<typeof setInterval> | null} */
  #pinger = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  #pongDeadline = null;
  /** @type {Map<string, Pending>} */
  #requests = new Map();
  /** @type {Set<RunControl>} runs with a re-join on the way (gap or stream error) */
  #rejoining = new Set();

  /** @param {TransportHost} host @param {typeof WebSocket} WebSocketClass */
  constructor(host, WebSocketClass) {
    this.host = host;
    this.WebSocket = WebSocketClass;
  }

  connect() {
    if (!this.#ws && !this.#timer && !this.#opening) this.#openSocket();
  }

  /** @param {RunControl} control */
  start(control) {
    if (this.#open) this.#sendRun(control);
    else this.connect();
  }

  /** @param {RunControl} control */
  join(control) {
    if (this.#open) this.#sendJoin(control);
    else this.connect();
  }

  /** @param {RunControl} control */
  gap(control) {
    if (this.#open && !this.#rejoining.has(control)) {
      this.#rejoining.add(control);
      this.#sendJoin(control);
    }
  }

  /** @param {RunControl} control */
  forget(control) {
    this.#rejoining.delete(control);
    for (const [id, request] of this.#requests) if (request.run === control) this.#requests.delete(id);
  }

  /** @param {string} runId @returns {Promise<RunRecord> | null} */
  cancel(runId) {
    if (!this.#open) return null;
    return new Promise((resolve, reject) => {
      const id = this.#id('x');
      this.#requests.set(id, { resolve, reject });
      this.#send({ op: 'cancel', id, run_id: runId });
    });
  }

  reconnectNow() {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#openSocket();
    }
  }

  close() {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#ws) this.#drop(this.#ws, CloseCode.NORMAL, 'client closed');
  }

  #id(prefix = 'r') {
    this.#ids += 1;
    return `${prefix}${this.#ids}`;
  }

  /** Send a frame; false when it is over the edge's limit (it would close the socket). @param {Record<string, unknown>} frame */
  #send(frame) {
    const text = JSON.stringify(frame);
    const limit = this.#maxFrameBytes;
    if (limit && text.length * 3 > limit && new TextEncoder().encode(text).length > limit) return false;
    this.#ws?.send(text);
    return true;
  }

  /** @param {RunControl} control */
  #sendRun(control) {
    const { op, body } = control.request;
    const id = this.#id(op === 'resume' ? 'u' : 'r');
    this.#requests.set(id, { run: control });
    if (!this.#send({ op, id, ...body })) {
      this.#requests.delete(id);
      control.fail(new GlassboxError({
        code: ErrorCode.MESSAGE_TOO_LARGE,
        message: `the ${op} frame is over the edge's ${this.#maxFrameBytes}-byte limit`,
        hint: 'send less input, or raise the edge’s --max-frame-bytes',
      }));
    }
  }

  /** @param {RunControl} control */
  #sendJoin(control) {
    const id = this.#id('j');
    this.#requests.set(id, { run: control });
    const { epoch, lastSeq } = control.cursor;
    /** @type {Record<string, unknown>} */
    const frame = { op: 'join', id, run_id: control.run.runId, after_seq: lastSeq };
    if (epoch) frame.epoch = epoch;
    this.#send(frame);
  }

  async #openSocket() {
    this.#timer = null;
    if (this.host.closed() || this.#opening) return;
    this.#opening = true;
    this.host.setState(this.#everOpened || this.#attempt ? 'reconnecting' : 'connecting', { attempt: this.#attempt });
    const token = await this.host.token().finally(() => { this.#opening = false; });
    const protocols = [PROTOCOL];
    const inHandshake = token && TOKEN_CHARS.test(token);
    if (inHandshake) protocols.push(`bearer.${token}`);
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new this.WebSocket(this.host.wsUrl, protocols);
    } catch (err) {
      report(err);
      if (this.host.options.transport === 'auto') this.host.fallBack();
      else this.#closed(1006, String(err));
      return;
    }
    this.#ws = ws;
    const welcomeTimer = setTimeout(() => this.#drop(ws, CLIENT_GAVE_UP, 'no welcome'), this.host.options.welcomeTimeoutMs);
    ws.onopen = () => {
      if (token && !inHandshake) ws.send(JSON.stringify({ op: 'auth', token }));
    };
    ws.onmessage = (message) => {
      if (typeof message.data !== 'string') return;
      /** @type {ServerFrame} */
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.#alive();
      if (frame.type === 'welcome') {
        clearTimeout(welcomeTimer);
        this.#welcome(ws, frame);
      } else this.#frame(frame);
    };
    ws.onclose = (event) => {
      clearTimeout(welcomeTimer);
      if (this.#ws === ws) this.#closed(event.code, event.reason);
    };
    ws.onerror = () => {};
  }

  /** @param {WebSocket} ws @param {Extract<ServerFrame, {type: 'welcome'}>} frame */
  #welcome(ws, frame) {
    this.#open = true;
    this.#everOpened = true;
    this.#failedOpens = 0;
    this.#attempt = 0;
    this.host.principal = frame.principal;
    this.#maxFrameBytes = frame.max_frame_bytes;
    this.#rejoining.clear();
    for (const control of this.host.active()) {
      if (control.run.runId) this.#sendJoin(control);
      else this.#sendRun(control); // never accepted: the same command_id again, applied once
    }
    this.#startPinging(ws);
    this.host.setState('open', { principal: frame.principal });
  }

  /** @param {RunFrame} frame */
  #frame(frame) {
    const request = frame.id ? this.#requests.get(frame.id) : undefined;
    switch (frame.type) {
      case 'accepted': {
        const control = request?.run;
        if (!control || control.finished) return;
        this.host.track(frame.run_id, control);
        control.accept(frame);
        if (frame.recovered === false) this.host.resync(control, frame);
        return;
      }
      case 'events': {
        const control = this.host.find(frame.run_id) ?? request?.run;
        if (control) {
          this.#rejoining.delete(control);
          control.receive(frame.events);
        }
        return;
      }
      case 'error':
        this.#error(frame, request);
        return;
      case 'cancelled':
        if (frame.id) this.#requests.delete(frame.id);
        request?.resolve?.(frame.run);
        return;
      case 'pong':
        if (frame.id) this.#requests.delete(frame.id);
        return;
      default:
    }
  }

  /** @param {Extract<RunFrame, {type: 'error'}>} frame @param {Pending | undefined} request */
  #error(frame, request) {
    const error = new GlassboxError(frame.error);
    if (frame.id) this.#requests.delete(frame.id);
    if (request?.reject) return request.reject(error);
    const control = request?.run ?? (frame.run_id ? this.host.find(frame.run_id) : undefined);
    if (!control) return this.host.error(error);
    if (error.retryable && control.run.runId) {
      // The run's stream broke upstream; the run goes on in the log: re-attach shortly.
      this.#rejoining.delete(control);
      const delay = backoff(this.host.options.reconnect, this.#attempt);
      setTimeout(() => this.#open && !control.finished && this.#sendJoin(control), delay);
      return;
    }
    control.fail(error);
  }

  /** @param {number} code @param {string} reason */
  #closed(code, reason) {
    this.#ws = null;
    this.#open = false;
    this.#stopPinging();
    for (const request of this.#requests.values()) request.reject?.(connectionLost(code));
    this.#requests.clear();
    if (this.host.closed()) return;
    const fatal = FATAL_CLOSE.get(code);
    if (fatal) {
      const error = new GlassboxError({ code: fatal, message: reason || 'refused' }, code);
      this.host.setState('closed', { code, reason });
      for (const control of [...this.host.active()]) control.fail(error);
      this.host.error(error);
      return;
    }
    if (!this.#everOpened) {
      this.#failedOpens += 1;
      const { transport, fallbackAfter } = this.host.options;
      if (transport === 'auto' && this.#failedOpens >= fallbackAfter) {
        this.host.fallBack();
        return;
      }
    }
    const delay = code === CloseCode.SLOW_CONSUMER && this.#attempt === 0
      ? 0
      : backoff(this.host.options.reconnect, this.#attempt, code === CloseCode.RATE_LIMITED);
    this.#attempt += 1;
    this.host.setState('reconnecting', { attempt: this.#attempt, delayMs: Math.round(delay), code, reason });
    this.#timer = setTimeout(() => this.#openSocket(), delay);
  }

  /** Forget a socket now (a dead peer may never send its close) and carry on. @param {WebSocket} ws @param {number} code @param {string} reason */
  #drop(ws, code, reason) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code === CloseCode.NORMAL ? code : CLIENT_GAVE_UP, reason);
    } catch {
      // closing a socket that never opened throws in some browsers
    }
    if (this.#ws === ws) this.#closed(code, reason);
  }

  /** @param {WebSocket} ws */
  #startPinging(ws) {
    this.#stopPinging();
    this.#pinger = setInterval(() => {
      if (this.#ws !== ws || this.#pongDeadline) return;
      this.#send({ op: 'ping', id: this.#id('p') });
      this.#pongDeadline = setTimeout(() => this.#drop(ws, CLIENT_GAVE_UP, 'no answer to ping'), this.host.options.pongTimeoutMs);
    }, this.host.options.pingIntervalMs);
  }

  #stopPinging() {
    if (this.#pinger) clearInterval(this.#pinger);
    this.#pinger = null;
    this.#alive();
  }

  #alive() {
    if (this.#pongDeadline) clearTimeout(this.#pongDeadline);
    this.#pongDeadline = null;
  }
}
