// @ts-check
// The wire format's types: the events (edge/codec.py renders them) and the REST records.
// Types only: this module has no code.

/** @typedef {'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'} ConnectionState */
/** @typedef {'websocket' | 'sse'} Transport */
/** @typedef {null | boolean | number | string | JsonArray | JsonObject} Json */
/** @typedef {Json[]} JsonArray */
/** @typedef {{ [key: string]: Json }} JsonObject */

/**
 * Every event carries where it belongs and its place in the run's log.
 * @typedef {object} EventEnvelope
 * @property {string} run_id
 * @property {string} thread_id
 * @property {string} epoch Names the log holding the event; changes only when that log was lost.
 * @property {number} seq 1, 2, 3 … per run: the same on every replica and on replay.
 * @property {string[]} ns Subgraph namespace; [] for the root graph.
 * @property {number} time ms since the Unix epoch
 */

/** @typedef {EventEnvelope & {type: 'run_started', graph: string, stream_modes: import('./names.js').StreamMode[], resumed: boolean, answered_interrupt_ids: string[]}} RunStartedEvent */
/** @typedef {EventEnvelope & {type: 'values', values: Json}} ValuesEvent */
/** @typedef {EventEnvelope & {type: 'updates', node: string, update: Json}} UpdatesEvent */
/** @typedef {EventEnvelope & {type: 'message_delta', message_id: string, token: string, node: string, tags: string[]}} MessageDeltaEvent */
/**
 * `message` is LangChain's JSON form of the message: type, content, tool_calls …
 * @typedef {EventEnvelope & {type: 'message_complete', message_id: string, role: 'ai' | 'human' | 'tool' | 'system' | string, node: string, message: Json}} MessageCompleteEvent
 */
/**
 * @typedef {EventEnvelope & {
 *   type: 'tool_call', phase: import('./names.js').ToolCallPhase, tool_call_id: string, name: string,
 *   args_delta: string, args: Json, result: Json, error: string, message_id: string, node: string
 * }} ToolCallEvent
 */
/** @typedef {EventEnvelope & {type: 'custom', data: Json}} CustomEvent */
/** @typedef {EventEnvelope & {type: 'debug', data: Json}} DebugEvent */
/**
 * `finished` is false when the node starts, true when it has a result or an error.
 * @typedef {EventEnvelope & {type: 'task', task_id: string, name: string, finished: boolean, input: Json, result: Json, error: string}} TaskEvent
 */
/** @typedef {EventEnvelope & {type: 'checkpoint', checkpoint_id: string, parent_checkpoint_id: string, [field: string]: unknown}} CheckpointEvent */
/** @typedef {EventEnvelope & {type: 'interrupt', interrupt_id: string, value: Json, node: string, kind: import('./names.js').InterruptKind}} InterruptEvent */
/** @typedef {EventEnvelope & {type: 'error', code: string, message: string, retryable: boolean}} ErrorEvent */
/**
 * `resynced` is set when the log was gone and the status came from the run's record instead.
 * @typedef {EventEnvelope & {
 *   type: 'run_ended', status: import('./names.js').RunStatus, output?: Json,
 *   error?: { code: string, message: string, retryable: boolean }, resynced?: true
 * }} RunEndedEvent
 */

/**
 * @typedef {RunStartedEvent | ValuesEvent | UpdatesEvent | MessageDeltaEvent | MessageCompleteEvent
 *   | ToolCallEvent | CustomEvent | DebugEvent | TaskEvent | CheckpointEvent | InterruptEvent
 *   | ErrorEvent | RunEndedEvent} RunEvent
 */
/**
 * @template {RunEvent['type']} T
 * @typedef {Extract<RunEvent, { type: T }>} EventOfType
 */

/**
 * @typedef {object} ThreadState
 * @property {Json} values
 * @property {string[]} next
 * @property {string} checkpoint_id
 * @property {string} parent_checkpoint_id
 * @property {Json} metadata
 * @property {number} created_at
 * @property {Array<Pick<InterruptEvent, 'interrupt_id' | 'value' | 'node' | 'kind'>>} interrupts
 */

/**
 * @typedef {object} Thread
 * @property {string} thread_id
 * @property {string} graph
 * @property {import('./names.js').ThreadStatus | string} status
 * @property {Json} metadata
 * @property {number} created_at
 * @property {number} updated_at
 */

/**
 * @typedef {object} RunRecord
 * @property {string} run_id
 * @property {string} thread_id
 * @property {string} graph
 * @property {import('./names.js').RunRecordStatus} status
 * @property {number} created_at
 * @property {number} updated_at
 * @property {Json} metadata
 * @property {string} epoch
 * @property {number} last_seq
 */

/**
 * @typedef {object} StateChange
 * @property {ConnectionState} state
 * @property {Transport} transport
 * @property {number} [attempt]
 * @property {number} [delayMs] How long until the next attempt (reconnecting).
 * @property {number} [code] The close code that ended the last connection.
 * @property {string} [reason]
 * @property {string} [principal]
 */

/**
 * The edge could not fill a gap: the state was reloaded; events go on from `firstSeq`.
 * @typedef {object} Resync
 * @property {ThreadState | null} state
 * @property {RunRecord | null} run
 * @property {string} epoch
 * @property {number} firstSeq
 */

/**
 * @typedef {object} ReconnectOptions
 * @property {number} [initialDelayMs]
 * @property {number} [maxDelayMs]
 * @property {number} [factor]
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} [url] The edge's base URL (http(s) or ws(s)); default: this page's origin.
 * @property {string | (() => string | Promise<string>)} [token] Bearer token (API key or JWT), or a function returning a fresh one.
 * @property {'auto' | 'websocket' | 'sse'} [transport] 'auto' (default): WebSocket, SSE when WebSockets never get through.
 * @property {ReconnectOptions} [reconnect]
 * @property {number} [pingIntervalMs]
 * @property {number} [pongTimeoutMs]
 * @property {number} [welcomeTimeoutMs]
 * @property {number} [fallbackAfter] Failed WebSocket opens (never welcomed) before 'auto' switches to SSE.
 * @property {(change: StateChange) => void} [onState]
 * @property {typeof WebSocket} [WebSocket]
 * @property {typeof fetch} [fetch]
 */

/**
 * @typedef {object} RunSettings
 * @property {string} [threadId]
 * @property {import('./names.js').StreamMode[]} [streamModes]
 * @property {boolean} [subgraphs]
 * @property {{ [key: string]: Json }} [config]
 * @property {{ [key: string]: Json }} [metadata]
 * @property {import('./names.js').BusyPolicy} [ifBusy]
 * @property {boolean} [cancelOnDisconnect]
 * @property {string[]} [interruptBefore]
 * @property {string[]} [interruptAfter]
 * @property {string} [commandId] Idempotency key; one is made per call when omitted.
 */

/** @typedef {RunSettings & { graph: string, input?: Json }} RunOptions */

/**
 * @typedef {RunSettings & {
 *   threadId: string,
 *   answers?: { [interruptId: string]: Json },
 *   value?: Json,
 *   update?: { [key: string]: Json },
 * }} ResumeOptions `answers` per interrupt id, or `value` for the thread's only pending interrupt; `update`: state edits applied with the resume.
 */

/**
 * @typedef {object} JoinOptions
 * @property {string} runId
 * @property {string} threadId
 * @property {string} [epoch]
 * @property {number} [afterSeq] Events after this seq; 0 (default) replays the run from its start.
 */

export {};
