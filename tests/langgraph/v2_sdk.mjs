// The edge's v2 thread stream (LangGraph's Agent Streaming Protocol) driven by the real JS
// client, @langchain/langgraph-sdk's `client.threads.stream(...)`, under Node, over SSE and
// over WebSocket. `node [--experimental-websocket] tests/langgraph/v2_sdk.mjs <edge URL>
// <API key> <cutting proxy URL for SSE> <… for WebSocket> [scenario …]` prints one JSON
// line {"scenario": {...}}; tests/test_langgraph_v2_js.py holds each record against what
// the client must see.
//
// Every event is recorded as the client handed it over (`thread.onEvent`: once per event_id,
// after the client's own dedup), so the test sees what an app would.

import { Client } from '@langchain/langgraph-sdk';

const [, , apiUrl, apiKey, sseProxyUrl, wsProxyUrl, ...only] = process.argv;
const WAIT_MS = 30_000;
const PACED = 40;
const TICKET = 'Please file a ticket: the docs search is slow';
const ALL_CHANNELS = ['lifecycle', 'input', 'messages', 'values', 'tools', 'updates', 'custom'];

// SSE sends the key as x-api-key on every request. The WebSocket transport refuses any
// default header (websocket.js assertBrowserSafeTransportConfig, in Node too), so its
// client has none and the socket carries the key in its handshake instead, as Node's
// WebSocket (undici) may: a browser could not.
function clientFor(url, transport) {
  const callerOptions = { maxRetries: 0 };
  return transport === 'websocket'
    ? new Client({ apiUrl: url, callerOptions })
    : new Client({ apiUrl: url, apiKey, callerOptions });
}

function threadOn(url, transport, threadId, assistantId) {
  const reconnects = [];
  const options = {
    assistantId,
    transport,
    reconnectDelayMs: () => 50,
    onReconnect: ({ attempt, cause }) => reconnects.push({ attempt, cause: String(cause?.message ?? cause) }),
  };
  if (transport === 'websocket') {
    options.webSocketFactory = (socketUrl) => new WebSocket(socketUrl, { headers: { 'x-api-key': apiKey } });
  }
  const thread = clientFor(url, transport).threads.stream(threadId, options);
  const seen = [];
  const errors = [];
  thread.onEvent((event) => seen.push(slim(event)));
  thread.onError((error) => errors.push(String(error?.message ?? error)));
  return { thread, seen, errors, reconnects };
}

function slim(event) {
  const { namespace, node, timestamp, data } = event.params ?? {};
  return {
    event_id: event.event_id ?? null,
    seq: event.seq ?? null,
    method: event.method,
    namespace,
    node: node ?? null,
    timestamp: timestamp ?? null,
    data,
  };
}

function failure(error) {
  return { error: String(error?.message ?? error), code: error?.code ?? null, status: error?.status ?? null };
}

// One call of a scenario: its result, or {failed} without stopping the scenario.
async function step(call) {
  try {
    const result = await call();
    return result === undefined ? null : result;
  } catch (error) {
    return { failed: failure(error) };
  }
}

// A subscription's events until the client ends the loop (it pauses every subscription at
// a root `completed`/`failed`/`interrupted`), or `until` holds, or the wait runs out.
async function drain(subscription, until = null) {
  const got = [];
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    subscription.close();
  }, WAIT_MS);
  try {
    for await (const event of subscription) {
      got.push(slim(event));
      if (until && until(got)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return { events: got, timedOut };
}

// Until `predicate()` holds (it is checked as events arrive), or the wait runs out.
async function until(predicate) {
  const deadline = Date.now() + WAIT_MS;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

// A subscription made just before `start()` runs the command that starts a run. The client
// then opens its stream once that command is answered, and the subscription, having seen
// nothing yet, ends its loop at the run's end. (Made after, it could have seen the end
// already on another of the client's streams, and then keep reading past it: the client
// lets a late subscriber drain a replayed history.)
async function subscribedAround(thread, filter, start) {
  const subscribing = thread.subscribe(filter);
  await start();
  return await subscribing;
}

const rootEnded = (events) =>
  events.some((e) => e.method === 'lifecycle' && e.namespace?.length === 0 && ['completed', 'failed'].includes(e.data?.event));

// A ticket request over `transport`: tokens stream, the approval interrupt is answered on the
// same thread stream, and the resumed run's events arrive on it too.
async function turn(transport) {
  const threadId = crypto.randomUUID();
  const { thread, seen, errors } = threadOn(apiUrl, transport, threadId, 'demo');
  const out = { threadId };
  try {
    const subscription = await subscribedAround(thread, { channels: ALL_CHANNELS }, async () => {
      out.started = await step(() => thread.run.start({ input: { messages: [{ type: 'human', content: TICKET }] } }));
    });
    out.first = await drain(subscription);
    out.interrupted = thread.interrupted;
    out.interrupts = thread.interrupts.map((i) => ({ ...i }));
    const [asked] = thread.interrupts;
    if (asked) {
      out.responded = await step(() =>
        thread.input.respond({ namespace: asked.namespace, interrupt_id: asked.interruptId, response: { decision: 'approve' } }),
      );
      out.second = await drain(subscription);
    }
    out.answeredAgain = await step(() =>
      thread.input.respond({ namespace: [], interrupt_id: asked?.interruptId ?? 'none', response: { decision: 'approve' } }),
    );
  } finally {
    out.seen = seen;
    out.errors = errors;
    await thread.close();
  }
  return out;
}

// Filtered subscriptions, each on a stream of its own, so its onEvent sees exactly what the
// server sent on that connection: one channel under one namespace (by its name, without
// the task id suffix), and one channel at the root only (depth 0); next to a full reading.
async function filtered() {
  const threadId = crypto.randomUUID();
  await clientFor(apiUrl, 'sse').threads.create({ threadId, graphId: 'subgraph' });
  const full = threadOn(apiUrl, 'sse', threadId, 'subgraph');
  const inner = threadOn(apiUrl, 'sse', threadId, 'subgraph');
  const root = threadOn(apiUrl, 'sse', threadId, 'subgraph');
  const out = { threadId };
  try {
    // Not awaited before the run: a server may hold the headers until a first event.
    const opened = Promise.all([
      inner.thread.subscribe({ channels: ['custom'], namespaces: [['inner']] }),
      root.thread.subscribe({ channels: ['values'], namespaces: [[]], depth: 0 }),
    ]);
    const everything = await subscribedAround(full.thread, { channels: ALL_CHANNELS }, async () => {
      out.started = await step(() => full.thread.run.start({ input: { topic: 't' } }));
    });
    out.full = await drain(everything);
    const count = (method, namespaced) =>
      out.full.events.filter((e) => e.method === method && (e.namespace?.length > 0) === namespaced).length;
    out.expected = { inner: count('custom', true), root: count('values', false) };
    out.opened = await step(() => opened.then(() => true));
    out.innerComplete = out.expected.inner > 0 && (await until(() => inner.seen.length >= out.expected.inner));
    out.rootComplete = out.expected.root > 0 && (await until(() => root.seen.length >= out.expected.root));
  } finally {
    out.inner = inner.seen;
    out.root = root.seen;
    out.errors = [...full.errors, ...inner.errors, ...root.errors];
    await Promise.all([full.thread.close(), inner.thread.close(), root.thread.close()]);
  }
  return out;
}

// A paced run read through a proxy that cuts the stream's connections, then read again
// straight from the edge: the client must hand over every event once, as in the uncut read.
async function cut(transport) {
  const threadId = crypto.randomUUID();
  const channels = ['custom', 'lifecycle'];
  const proxyUrl = transport === 'websocket' ? wsProxyUrl : sseProxyUrl;
  const cutRead = threadOn(proxyUrl, transport, threadId, 'paced_events');
  const out = { threadId };
  try {
    const subscription = await subscribedAround(cutRead.thread, { channels }, async () => {
      out.started = await step(() => cutRead.thread.run.start({ input: { count: PACED, interval: 0.02 } }));
    });
    out.cut = await drain(subscription);
  } finally {
    out.cutErrors = cutRead.errors;
    out.reconnects = cutRead.reconnects;
    await cutRead.thread.close();
  }
  const uncutRead = threadOn(apiUrl, transport, threadId, 'paced_events');
  try {
    out.uncut = await drain(await uncutRead.thread.subscribe({ channels }), rootEnded);
  } finally {
    out.uncutErrors = uncutRead.errors;
    await uncutRead.thread.close();
  }
  return out;
}

// A run that raises: its end, as the client hands it over.
async function failing() {
  const threadId = crypto.randomUUID();
  const { thread, errors } = threadOn(apiUrl, 'sse', threadId, 'failing');
  const out = { threadId };
  try {
    const subscription = await subscribedAround(thread, { channels: ['lifecycle'] }, async () => {
      out.started = await step(() => thread.run.start({ input: {} }));
    });
    out.events = await drain(subscription);
  } finally {
    out.errors = errors;
    await thread.close();
  }
  return out;
}

const scenarios = {
  turnSse: () => turn('sse'),
  turnWs: () => turn('websocket'),
  filtered,
  failing,
  cutSse: () => cut('sse'),
  cutWs: () => cut('websocket'),
};

const results = {};
for (const [name, scenario] of Object.entries(scenarios)) {
  if (only.length && !only.includes(name)) continue;
  try {
    results[name] = await scenario();
  } catch (error) {
    results[name] = { failed: failure(error), stack: String(error?.stack ?? '') };
  }
}
process.stdout.write(JSON.stringify(results) + '\n');
