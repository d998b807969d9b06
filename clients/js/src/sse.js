// @ts-check
// Runs over SSE on fetch, where WebSockets are missing or never get through: POST
// …/runs/stream starts a run, GET …/runs/{id}/stream re-attaches with Last-Event-ID.
import { GlassboxError, errorOf } from './errors.js';
import { backoff, sleep } from './transport.js';

/** @import { RunControl } from './run.js' */
/** @import { TransportHost } from './transport.js' */
/** @typedef {'end' | 'dropped'} Ending */

/** @param {string} value */
const enc = (value) => encodeURIComponent(value);

/** A RunTransport (transport.js); the client holds it as one, which checks the shape. */
export class SseTransport {
  /** @type {'sse'} */
  name = 'sse';
  /** @type {WeakSet<RunControl>} runs a loop drives already */
  #driven = new WeakSet();
  #everOpened = false;
  #probing = false;

  /** @param {TransportHost} host */
  constructor(host) {
    this.host = host;
  }

  connect() {
    if (!this.#everOpened || this.host.state === 'closed') this.#probe();
  }

  /** @param {RunControl} control */
  start(control) {
    this.#drive(control);
  }

  /** @param {RunControl} control */
  join(control) {
    this.#drive(control);
  }

  // Each SSE stream is in order and re-attached by its own loop: nothing to ask for.
  gap() {}

  forget() {}

  cancel() {
    return null;
  }

  reconnectNow() {}

  close() {}

  /** Is the edge there? Says so in the connection state, retrying with backoff. */
  async #probe() {
    if (this.#probing) return;
    this.#probing = true;
    try {
      for (let attempt = 0; !this.host.closed(); attempt += 1) {
        this.host.setState(attempt || this.#everOpened ? 'reconnecting' : 'connecting', { attempt });
        try {
          const response = await this.host.request('GET', '/healthz');
          if (response.ok) {
            this.#everOpened = true;
            this.host.setState('open', {});
            return;
          }
        } catch {
          // unreachable: try again
        }
        await sleep(backoff(this.host.options.reconnect, attempt), this.host.signal);
      }
    } finally {
      this.#probing = false;
    }
  }

  /** Stream one run until it ends, re-attaching with Last-Event-ID after drops. @param {RunControl} control */
  async #drive(control) {
    if (this.#driven.has(control)) return;
    this.#driven.add(control);
    const host = this.host;
    for (let attempt = 0; !control.finished && !host.closed(); attempt += 1) {
      try {
        const response = control.run.runId ? await this.#get(control) : await this.#post(control);
        if (response === null) {
          // Nothing more will stream, yet no run_ended reached us: take the record's word.
          if (!control.finished) await host.resync(control, { recovered: false });
          return;
        }
        if (host.state !== 'open') host.setState('open', {});
        attempt = 0;
        // An `end` before run_ended (a draining edge, say) is one more drop: re-attach, and
        // the edge answers 204 when there is nothing more to come.
        await this.#read(control, response);
      } catch (err) {
        if (host.closed()) return;
        if (err instanceof GlassboxError && !err.retryable) {
          control.fail(err);
          return;
        }
      }
      if (control.finished) return;
      const delay = backoff(host.options.reconnect, attempt);
      host.setState('reconnecting', { attempt: attempt + 1, delayMs: Math.round(delay) });
      await sleep(delay, host.signal);
    }
  }

  /** @param {RunControl} control */
  async #post(control) {
    const { thread_id: threadId, ...body } = control.request.body;
    const response = await this.host.request('POST', `/v1/threads/${enc(threadId)}/runs/stream`, body, {
      headers: { accept: 'text/event-stream' },
    });
    if (!response.ok) throw await errorOf(response);
    const runId = response.headers.get('x-glassbox-run-id');
    if (runId) {
      this.host.track(runId, control);
      control.accept({ run_id: runId, thread_id: threadId });
    } else control.attached = true;
    return response;
  }

  /** @param {RunControl} control */
  async #get(control) {
    const { epoch, lastSeq } = control.cursor;
    const { runId, threadId } = control.run;
    /** @type {Record<string, string>} */
    const headers = { accept: 'text/event-stream' };
    if (lastSeq) headers['last-event-id'] = `${epoch}:${lastSeq}`;
    const path = `/v1/threads/${enc(threadId)}/runs/${enc(runId)}/stream`;
    const response = await this.host.request('GET', lastSeq ? path : `${path}?after_seq=0`, undefined, { headers });
    if (response.status === 204) return null;
    if (!response.ok) throw await errorOf(response);
    control.accept({ run_id: runId, thread_id: threadId });
    return response;
  }

  /** Read SSE frames into the run until the end frame or until the body breaks off. @param {RunControl} control @param {Response} response @returns {Promise<Ending>} */
  async #read(control, response) {
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
              const ending = await this.#frame(control, frame.event, frame.data.join('\n'));
              if (ending) return ending;
            }
            frame = { event: 'message', data: [] };
          } else if (!line.startsWith(':')) { // a comment is a heartbeat
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') frame.event = text;
            else if (field === 'data') frame.data.push(text);
          }
        }
      }
    } catch {
      return this.host.closed() ? 'end' : 'dropped';
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /** @param {RunControl} control @param {string} event @param {string} data @returns {Promise<Ending | null>} */
  async #frame(control, event, data) {
    const body = JSON.parse(data);
    if (event === 'end') return 'end';
    if (event === 'status') {
      if (body.recovered === false) await this.host.resync(control, body);
      return null;
    }
    if (event === 'error') {
      const error = new GlassboxError(body);
      if (error.retryable) return 'dropped';
      control.fail(error);
      return 'end';
    }
    if (!control.run.runId && body.run_id) this.host.track(body.run_id, control);
    control.receive([body]);
    return control.finished ? 'end' : null;
  }
}
