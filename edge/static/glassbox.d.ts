// Types of glassbox.js, the Glassbox browser client. The wire format they describe is
// edge/frames.py (WebSocket frames) and edge/codec.py (events).

export declare const PROTOCOL: 'glassbox.v1';

export declare const CloseCode: Readonly<{
  NORMAL: 1000;
  POLICY: 1008;
  TOO_BIG: 1009;
  INTERNAL: 1011;
  RESTART: 1012;
  TRY_LATER: 1013;
  UNAUTHENTICATED: 4401;
  FORBIDDEN: 4403;
  NOT_FOUND: 4404;
  SLOW_CONSUMER: 4408;
  RATE_LIMITED: 4429;
}>;

export type StreamMode =
  | 'values'
  | 'updates'
  | 'messages'
  | 'custom'
  | 'debug'
  | 'tasks'
  | 'checkpoints'
  | 'tools';

export type RunStatus = 'success' | 'interrupted' | 'error' | 'cancelled';
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
export type Transport = 'websocket' | 'sse';
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every event carries where it belongs and its place in the run's log. */
export interface EventEnvelope {
  run_id: string;
  thread_id: string;
  /** Names the log holding the event; changes only when that log was lost. */
  epoch: string;
  /** 1, 2, 3 … per run: the same on every replica and on replay. */
  seq: number;
  /** Subgraph namespace; [] for the root graph. */
  ns: string[];
  /** ms since the Unix epoch */
  time: number;
}

export interface RunStartedEvent extends EventEnvelope {
  type: 'run_started';
  graph: string;
  stream_modes: StreamMode[];
  resumed: boolean;
}
export interface ValuesEvent extends EventEnvelope {
  type: 'values';
  values: Json;
}
export interface UpdatesEvent extends EventEnvelope {
  type: 'updates';
  node: string;
  update: Json;
}
export interface MessageDeltaEvent extends EventEnvelope {
  type: 'message_delta';
  message_id: string;
  token: string;
  node: string;
  tags: string[];
}
export interface MessageCompleteEvent extends EventEnvelope {
  type: 'message_complete';
  message_id: string;
  role: 'ai' | 'human' | 'tool' | 'system' | string;
  node: string;
  /** LangChain's JSON form of the message: type, content, tool_calls … */
  message: Json;
}
export interface ToolCallEvent extends EventEnvelope {
  type: 'tool_call';
  phase: 'args_delta' | 'started' | 'output_delta' | 'finished' | 'failed' | 'unspecified';
  tool_call_id: string;
  name: string;
  args_delta: string;
  args: Json;
  result: Json;
  error: string;
  message_id: string;
  node: string;
}
export interface CustomEvent extends EventEnvelope {
  type: 'custom';
  data: Json;
}
export interface DebugEvent extends EventEnvelope {
  type: 'debug';
  data: Json;
}
export interface TaskEvent extends EventEnvelope {
  type: 'task';
  task_id: string;
  name: string;
  /** false when the node starts, true when it has a result or an error */
  finished: boolean;
  input: Json;
  result: Json;
  error: string;
}
export interface CheckpointEvent extends EventEnvelope {
  type: 'checkpoint';
  checkpoint_id: string;
  parent_checkpoint_id: string;
  [field: string]: unknown;
}
export interface InterruptEvent extends EventEnvelope {
  type: 'interrupt';
  interrupt_id: string;
  value: Json;
  node: string;
  kind: 'interrupt' | 'breakpoint' | 'unspecified';
}
export interface ErrorEvent extends EventEnvelope {
  type: 'error';
  code: string;
  message: string;
  retryable: boolean;
}
export interface RunEndedEvent extends EventEnvelope {
  type: 'run_ended';
  status: RunStatus;
  output?: Json;
  error?: { code: string; message: string; retryable: boolean };
  /** Set when the log was gone and the status came from the run's record instead. */
  resynced?: true;
}

export type RunEvent =
  | RunStartedEvent
  | ValuesEvent
  | UpdatesEvent
  | MessageDeltaEvent
  | MessageCompleteEvent
  | ToolCallEvent
  | CustomEvent
  | DebugEvent
  | TaskEvent
  | CheckpointEvent
  | InterruptEvent
  | ErrorEvent
  | RunEndedEvent;

export type EventOfType<T extends RunEvent['type']> = Extract<RunEvent, { type: T }>;

export interface ThreadState {
  values: Json;
  next: string[];
  checkpoint_id: string;
  parent_checkpoint_id: string;
  metadata: Json;
  created_at: number;
  interrupts: Array<Pick<InterruptEvent, 'interrupt_id' | 'value' | 'node' | 'kind'>>;
}

export interface Thread {
  thread_id: string;
  graph: string;
  status: 'idle' | 'busy' | 'interrupted' | 'error' | string;
  metadata: Json;
  created_at: number;
  updated_at: number;
}

export interface RunRecord {
  run_id: string;
  thread_id: string;
  graph: string;
  status: 'pending' | 'running' | RunStatus;
  created_at: number;
  updated_at: number;
  metadata: Json;
  epoch: string;
  last_seq: number;
}

export declare class GlassboxError extends Error {
  constructor(
    body: { code?: string; message?: string; hint?: string; retryable?: boolean },
    status?: number,
  );
  /** A catalogue code such as THREAD_BUSY, or HTTP_<status> when the body had none. */
  code: string;
  hint: string;
  retryable: boolean;
  /** The HTTP status or WebSocket close code, when there was one. */
  status?: number;
}

export interface StateChange {
  state: ConnectionState;
  transport: Transport;
  attempt?: number;
  /** How long until the next attempt (reconnecting). */
  delayMs?: number;
  /** The close code that ended the last connection. */
  code?: number;
  reason?: string;
  principal?: string;
}

/** The edge could not fill a gap: the state was reloaded; events go on from `firstSeq`. */
export interface Resync {
  state: ThreadState | null;
  run: RunRecord | null;
  epoch: string;
  firstSeq: number;
}

export interface ClientOptions {
  /** The edge's base URL (http(s) or ws(s)); default: this page's origin. */
  url?: string;
  /** Bearer token (API key or JWT), or a function returning a fresh one. */
  token?: string | (() => string | Promise<string>);
  /** 'auto' (default): WebSocket, SSE when WebSockets never get through. */
  transport?: 'auto' | 'websocket' | 'sse';
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number; factor?: number };
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  welcomeTimeoutMs?: number;
  /** Failed WebSocket opens (never welcomed) before 'auto' switches to SSE. */
  fallbackAfter?: number;
  onState?: (change: StateChange) => void;
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
}

export interface RunSettings {
  threadId?: string;
  streamModes?: StreamMode[];
  subgraphs?: boolean;
  config?: { [key: string]: Json };
  metadata?: { [key: string]: Json };
  ifBusy?: 'reject' | 'enqueue' | 'interrupt';
  cancelOnDisconnect?: boolean;
  interruptBefore?: string[];
  interruptAfter?: string[];
  /** Idempotency key; one is made per call when omitted. */
  commandId?: string;
}

export interface RunOptions extends RunSettings {
  graph: string;
  input?: Json;
}

export interface ResumeOptions extends RunSettings {
  threadId: string;
  /** The answer per interrupt id. */
  answers?: { [interruptId: string]: Json };
  /** One answer for the thread's only pending interrupt. */
  value?: Json;
  /** State edits applied with the resume. */
  update?: { [key: string]: Json };
}

export interface JoinOptions {
  runId: string;
  threadId: string;
  epoch?: string;
  /** Events after this seq; 0 (default) replays the run from its start. */
  afterSeq?: number;
}

type Unsubscribe = () => void;

export declare class Run implements AsyncIterable<RunEvent> {
  readonly client: GlassboxClient;
  threadId: string;
  runId: string;
  /** The cursor: the last event handed to the application. */
  epoch: string;
  lastSeq: number;
  status: 'starting' | 'running' | 'ended' | 'failed';
  readonly finished: boolean;
  /** This run's interrupt events, in order. */
  interrupts: InterruptEvent[];
  /** The run_ended event, once it came. */
  result: RunEndedEvent | null;
  stats: { delivered: number; duplicatesDropped: number; reattached: number; resynced: number };
  readonly accepted: Promise<{ runId: string; threadId: string }>;
  readonly done: Promise<RunEndedEvent>;

  resume(answers: { [interruptId: string]: Json }, options?: RunSettings): Run;
  cancel(): Promise<RunRecord>;
  [Symbol.asyncIterator](): AsyncIterator<RunEvent>;

  on(type: 'event', fn: (event: RunEvent) => void): Unsubscribe;
  on<T extends RunEvent['type']>(type: T, fn: (event: EventOfType<T>) => void): Unsubscribe;
  on(type: 'accepted', fn: (ids: { runId: string; threadId: string }) => void): Unsubscribe;
  on(type: 'resync', fn: (resync: Resync) => void): Unsubscribe;
  on(type: 'end', fn: (event: RunEndedEvent) => void): Unsubscribe;
  on(type: 'error', fn: (error: GlassboxError) => void): Unsubscribe;
  once: Run['on'];
  off(type: string, fn: (...args: any[]) => void): void;
}

export declare class GlassboxClient {
  constructor(options?: ClientOptions);
  readonly url: string;
  readonly wsUrl: string;
  state: ConnectionState;
  transport: Transport;
  /** Who the edge says we are (after the welcome). */
  principal?: string;

  connect(): this;
  close(): void;
  run(options: RunOptions): Run;
  resume(options: ResumeOptions): Run;
  join(options: JoinOptions): Run;
  cancel(run: Run | string, threadId?: string): Promise<RunRecord>;

  getState(threadId: string, options?: { checkpointId?: string }): Promise<ThreadState>;
  getHistory(threadId: string, options?: { limit?: number; before?: string }): Promise<{ states: ThreadState[] }>;
  getThread(threadId: string): Promise<Thread>;
  createThread(options: {
    graph: string;
    threadId?: string;
    metadata?: { [key: string]: Json };
    ifExists?: 'error' | 'return';
  }): Promise<Thread>;
  deleteThread(threadId: string): Promise<null>;
  listRuns(threadId: string, options?: { pageSize?: number }): Promise<{ runs: RunRecord[]; next_page_token: string }>;
  getRun(threadId: string, runId: string): Promise<RunRecord>;
  listGraphs(): Promise<{ graphs: Json[] }>;
  http(method: string, path: string, body?: unknown, extra?: { signal?: AbortSignal; headers?: Record<string, string> }): Promise<any>;

  on(type: 'state', fn: (change: StateChange) => void): Unsubscribe;
  on(type: 'transport', fn: (transport: Transport) => void): Unsubscribe;
  on(type: 'error', fn: (error: GlassboxError) => void): Unsubscribe;
  once: GlassboxClient['on'];
  off(type: string, fn: (...args: any[]) => void): void;
}

/** A random UUID v4, also on plain-http pages without crypto.randomUUID. */
export declare function newId(): string;
