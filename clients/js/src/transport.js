// @ts-check
// The one interface every transport implements (as uvicorn puts each protocol behind one
// contract): the client hands it runs, it hands the client what the edge said.

/** @import { GlassboxError } from './errors.js' */
/** @import { ResyncInfo, RunControl } from './run.js' */
/** @import { ConnectionState, RunRecord } from './types.js' */
/** @typedef {{signal?: AbortSignal, headers?: Record<string, string>}} RequestExtra */

/**
 * The client's settings, defaults filled in.
 * @typedef {object} Settings
 * @property {'auto' | 'websocket' | 'sse'} transport
 * @property {{initialDelayMs: number, maxDelayMs: number, factor: number}} reconnect
 * @property {number} pingIntervalMs
 * @property {number} pongTimeoutMs
 * @property {number} welcomeTimeoutMs
 * @property {number} fallbackAfter
 */

/**
 * What a transport may ask of the client that owns it.
 * @typedef {object} TransportHost
 * @property {Settings} options
 * @property {string} url the edge's http(s) base URL
 * @property {string} wsUrl
 * @property {ConnectionState} state
 * @property {string} [principal] who the edge says we are
 * @property {() => Iterable<RunControl>} active runs not yet ended, in start order
 * @property {(runId: string) => RunControl | undefined} find
 * @property {(runId: string, control: RunControl) => void} track the edge named the run's id
 * @property {(control: RunControl, info: ResyncInfo) => Promise<void>} resync the log could not fill a gap
 * @property {(state: ConnectionState, detail: Record<string, unknown>) => void} setState
 * @property {() => void} fallBack WebSockets never got through
 * @property {(error: GlassboxError) => void} error an error that belongs to no run
 * @property {(method: string, path: string, body?: unknown, extra?: RequestExtra) => Promise<Response>} request
 * @property {() => Promise<string>} token
 * @property {() => boolean} closed the application closed the client
 * @property {AbortSignal} signal aborted when the client closes
 */

/**
 * A way of carrying runs between the client and an edge.
 * @typedef {object} RunTransport
 * @property {import('./types.js').Transport} name
 * @property {() => void} connect open the connection (runs open it by themselves)
 * @property {(control: RunControl) => void} start send a run or resume (again, if never accepted)
 * @property {(control: RunControl) => void} join re-attach a run after its cursor
 * @property {(control: RunControl) => void} gap events after the cursor are missing
 * @property {(control: RunControl) => void} forget the run is over
 * @property {(runId: string) => Promise<RunRecord> | null} cancel null: not carried here (use REST)
 * @property {() => void} reconnectNow the network is back: skip the backoff wait
 * @property {() => void} close for good
 */

/**
 * Exponential backoff with jitter: half fixed, half random, capped; at least 5 s when the
 * edge said it is rate limiting.
 * @param {Settings['reconnect']} reconnect @param {number} attempt @param {boolean} [rateLimited]
 */
export function backoff(reconnect, attempt, rateLimited = false) {
  const { initialDelayMs, maxDelayMs, factor } = reconnect;
  const base = Math.min(maxDelayMs, initialDelayMs * factor ** attempt);
  const delay = base / 2 + (Math.random() * base) / 2;
  return rateLimited ? Math.max(delay, 5000) : delay;
}

/** @param {number} ms @param {AbortSignal} [signal] */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(undefined); }, { once: true });
  });
}
