// The edge's LangGraph API driven by the real JS client, @langchain/langgraph-sdk, as an
// app under Node would. `node tests/langgraph/sdk.mjs <edge URL> <API key>` runs every
// scenario and prints one JSON line {"scenario": {...what it saw...}}; a scenario that
// throws records {"error": "...", "status": n}. tests/test_langgraph_sdk_js.py holds the
// results against what the SDK must see (the digest's shapes), so this file only records.

import { Client } from '@langchain/langgraph-sdk';

const [, , apiUrl, apiKey] = process.argv;
const client = new Client({ apiUrl, apiKey, callerOptions: { maxRetries: 0 } });
const PACED = 40;

function failure(error) {
  return { error: String(error?.message ?? error), status: error?.status ?? null };
}

async function refused(call) {
  try {
    await call();
    return { error: null, status: null };
  } catch (error) {
    return failure(error);
  }
}

// One call of a scenario: its result, or {failed} without stopping the scenario.
async function step(call) {
  try {
    return await call();
  } catch (error) {
    return { failed: failure(error) };
  }
}

async function parts(stream, until = null) {
  const got = [];
  for await (const part of stream) {
    got.push({ event: part.event, data: part.data, id: part.id ?? null });
    if (until && until(got)) break;
  }
  return got;
}

const customs = (got) => got.filter((p) => p.event === 'custom').map((p) => p.data.i);

const scenarios = {
  async assistants() {
    const found = await client.assistants.search({ limit: 100 });
    return {
      found: found.map((a) => ({ assistant_id: a.assistant_id, graph_id: a.graph_id, version: a.version })),
      limited: (await client.assistants.search({ limit: 3 })).length,
      byName: await step(() => client.assistants.get('echo')),
      schemas: await step(() => client.assistants.getSchemas('echo')),
      drawing: await step(() => client.assistants.getGraph('echo')),
      deep: await step(() => client.assistants.getGraph('subgraph', { xray: true })),
      missing: await refused(() => client.assistants.get('no-such-graph')),
    };
  },

  async threads() {
    const tag = `js-${Date.now()}-${Math.random()}`;
    const created = await client.threads.create({ metadata: { tag }, graphId: 'echo' });
    const id = created.thread_id;
    const out = { created, got: await client.threads.get(id) };
    out.duplicate = await refused(() => client.threads.create({ threadId: id }));
    out.doNothing = await step(() => client.threads.create({ threadId: id, ifExists: 'do_nothing' }));
    out.updated = await step(() => client.threads.update(id, { metadata: { extra: 1 } }));
    out.search = (await client.threads.search({ metadata: { tag } })).map((t) => t.thread_id);
    out.searchNone = (await client.threads.search({ metadata: { tag: `no-${tag}` } })).map((t) => t.thread_id);
    out.emptyState = await step(() => client.threads.getState(id));
    out.emptyHistory = await step(() => client.threads.getHistory(id));
    out.output = await step(() => client.runs.wait(id, 'echo', { input: { text: 'hi' } }));
    out.afterRun = await step(() => client.threads.get(id));
    out.byGraph = (await client.threads.search({ metadata: { graph_id: 'echo' }, limit: 100 })).map(
      (t) => t.thread_id,
    );
    out.state = await step(() => client.threads.getState(id));
    out.history = await step(() => client.threads.getHistory(id, { limit: 10 }));
    out.written = await step(() => client.threads.updateState(id, { values: { reply: 'edited' }, asNode: 'echo' }));
    out.edited = await step(() => client.threads.getState(id));
    const bare = await client.threads.create();
    out.bareOutput = await refused(() => client.runs.wait(bare.thread_id, 'echo', { input: { text: 'a' } }));
    out.bare = await step(() => client.threads.get(bare.thread_id));
    await client.threads.delete(id);
    out.deleted = await refused(() => client.threads.get(id));
    return out;
  },

  async stream() {
    const thread = await client.threads.create({ graphId: 'chat_echo' });
    const created = [];
    const got = await parts(
      client.runs.stream(thread.thread_id, 'chat_echo', {
        input: { messages: [{ type: 'human', content: 'hi there' }] },
        streamMode: ['values', 'updates', 'messages-tuple', 'debug', 'tasks', 'checkpoints', 'custom'],
        onRunCreated: (meta) => created.push(meta),
      }),
    );
    const run = await client.runs.get(thread.thread_id, got[0]?.data?.run_id);
    return { threadId: thread.thread_id, parts: got, created, run };
  },

  async subgraphs() {
    const body = { input: { topic: 't' }, streamMode: ['updates', 'custom'] };
    return {
      flat: await parts(client.runs.stream(null, 'subgraph', body)),
      deep: await parts(client.runs.stream(null, 'subgraph', { ...body, streamSubgraphs: true })),
    };
  },

  async interrupt() {
    const { thread_id: id } = await client.threads.create({ graphId: 'interrupting' });
    const paused = await parts(client.runs.stream(id, 'interrupting', { input: { question: 'Ship?' } }));
    const threadPaused = await client.threads.get(id);
    const statePaused = await client.threads.getState(id);
    const runPaused = await client.runs.get(id, paused[0]?.data?.run_id);
    const resumed = await parts(
      client.runs.stream(id, 'interrupting', { command: { resume: 'yes' }, streamMode: 'updates' }),
    );
    return { paused, threadPaused, statePaused, runPaused, resumed, threadAfter: await client.threads.get(id) };
  },

  async parallel() {
    const { thread_id: id } = await client.threads.create({ graphId: 'parallel_interrupts' });
    const paused = await parts(client.runs.stream(id, 'parallel_interrupts', { input: {}, streamMode: 'updates' }));
    const threadPaused = await client.threads.get(id);
    const asked = paused.flatMap((p) => (p.event === 'updates' ? p.data.__interrupt__ ?? [] : []));
    const resume = Object.fromEntries(asked.map((i) => [i.id, i.value.side === 'left' ? 'L' : 'R']));
    const output = await client.runs.wait(id, 'parallel_interrupts', { command: { resume } });
    return { paused, threadPaused, output, threadAfter: await client.threads.get(id) };
  },

  async wait() {
    return {
      stateless: await client.runs.wait(null, 'echo', { input: { text: 'z' } }),
      unknownThread: await refused(() => client.runs.wait(crypto.randomUUID(), 'echo', { input: { text: 'x' } })),
    };
  },

  async background() {
    const { thread_id: id } = await client.threads.create({ graphId: 'paced_events' });
    const run = await client.runs.create(id, 'paced_events', {
      input: { count: PACED, interval: 0.02 },
      streamMode: 'custom',
    });
    const joined = await parts(client.runs.joinStream(id, run.run_id, { lastEventId: '-1' }));
    const output = await client.runs.join(id, run.run_id);
    const finished = await client.runs.get(id, run.run_id);
    const started = Date.now();
    const replay = await parts(client.runs.joinStream(id, run.run_id, { lastEventId: '-1' }));
    return { run, joined, output, finished, replay, replayMs: Date.now() - started };
  },

  async cut() {
    const cuts = [];
    const points = [1 + Math.floor(Math.random() * (PACED - 2)), 1 + Math.floor(Math.random() * (PACED - 2))];
    for (const cutAfter of points) {
      const { thread_id: id } = await client.threads.create({ graphId: 'paced_events' });
      const controller = new AbortController();
      const before = await parts(
        client.runs.stream(id, 'paced_events', {
          input: { count: PACED, interval: 0.02 },
          streamMode: 'custom',
          signal: controller.signal,
        }),
        (got) => customs(got).length === cutAfter,
      );
      controller.abort();
      const runId = before[0].data.run_id;
      const rest = await parts(client.runs.joinStream(id, runId, { lastEventId: before.at(-1).id }));
      const run = await client.runs.get(id, runId);
      cuts.push({ cutAfter, before, rest, status: run.status });
    }
    return { cuts };
  },

  async cancel() {
    const { thread_id: id } = await client.threads.create({ graphId: 'paced_events' });
    const run = await client.runs.create(id, 'paced_events', {
      input: { count: 2000, interval: 0.005 },
      streamMode: 'custom',
    });
    const stream = client.runs.joinStream(id, run.run_id, { lastEventId: '-1' });
    const seen = [];
    for await (const part of stream) {
      seen.push({ event: part.event, data: part.data, id: part.id ?? null });
      if (part.event === 'custom') break;
    }
    const busy = await client.threads.get(id);
    const second = await refused(() => client.runs.create(id, 'paced_events', { input: { count: 1 } }));
    await client.runs.cancel(id, run.run_id, true, 'interrupt');
    const cancelled = await client.runs.get(id, run.run_id);
    return { busy: busy.status, second, cancelled, seenCustom: customs(seen).length };
  },
};

const only = process.argv.slice(4);
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
