// GlassboxClient over its two transports, against fake sockets and a fake fetch: what it
// sends, and what the application sees when the connection misbehaves.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { CloseCode, GlassboxClient } from '../src/index.js';
import { FakeSocket, ev, fakeFetch, sseBody, waitFor } from './fakes.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 1, factor: 1 };
const INPUT = { graph: 'demo', input: { text: 'hi' } };

beforeEach(() => FakeSocket.reset());

/** A client on fake sockets, its first socket welcomed. */
async function connected(routes = {}, options = {}) {
  const { fetch, calls } = fakeFetch(routes);
  const client = new GlassboxClient({ url: 'http://edge.test', WebSocket: FakeSocket, fetch, reconnect: FAST, ...options });
  client.connect();
  await waitFor(() => FakeSocket.opened.length === 1, 'a socket');
  FakeSocket.last().welcome();
  return { client, calls };
}

test('a run goes out in one frame on a thread of our own, with no thread created first', async () => {
  const { client, calls } = await connected();
  const socket = FakeSocket.last();
  const run = client.run(INPUT);
  const [frame] = socket.ops('run');
  assert.equal(frame.graph, 'demo');
  assert.match(frame.thread_id, /^[0-9a-f-]{36}$/);
  assert.ok(frame.command_id);
  assert.equal('stream_modes' in frame, false, 'no modes named: the server default applies');
  socket.frame({ type: 'accepted', id: frame.id, run_id: 'r1', thread_id: frame.thread_id });
  socket.frame({ type: 'events', run_id: 'r1', events: [ev(1, 'run_started'), ev(2), ev(2), ev(3, 'run_ended', { status: 'success' })] });
  const seen = [];
  for await (const event of run) seen.push(event.seq);
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal((await run.done).status, 'success');
  assert.deepEqual(await run.accepted, { runId: 'r1', threadId: frame.thread_id });
  assert.equal(run.stats.duplicatesDropped, 1);
  assert.deepEqual(calls, [], 'no REST call at all');
  client.close();
});

test('a dropped socket re-attaches each run at its cursor, and nothing is seen twice', async () => {
  const { client } = await connected();
  const first = FakeSocket.last();
  const run = client.run(INPUT);
  const [frame] = first.ops('run');
  first.frame({ type: 'accepted', id: frame.id, run_id: 'r1', thread_id: 't1' });
  first.frame({ type: 'events', run_id: 'r1', events: [ev(1, 'run_started'), ev(2)] });
  const states = [];
  client.on('state', ({ state }) => states.push(state));
  first.drop(1012, 'restart');
  await waitFor(() => FakeSocket.opened.length === 2, 'a second socket');
  const second = FakeSocket.last();
  second.welcome();
  const [join] = second.ops('join');
  assert.deepEqual({ run_id: join.run_id, epoch: join.epoch, after_seq: join.after_seq }, { run_id: 'r1', epoch: 'e1', after_seq: 2 });
  second.frame({ type: 'accepted', id: join.id, run_id: 'r1', thread_id: 't1', recovered: true });
  second.frame({ type: 'events', run_id: 'r1', events: [ev(2), ev(3, 'run_ended', { status: 'success' })] });
  const ended = await run.done;
  assert.equal(ended.seq, 3);
  assert.equal(run.stats.delivered, 3);
  assert.equal(run.stats.reattached, 1);
  assert.deepEqual(states, ['reconnecting', 'reconnecting', 'open']);
  client.close();
});

test('a gap in seq asks for the missing events with a join, once', async () => {
  const { client } = await connected();
  const socket = FakeSocket.last();
  const run = client.run(INPUT);
  const [frame] = socket.ops('run');
  socket.frame({ type: 'accepted', id: frame.id, run_id: 'r1', thread_id: 't1' });
  socket.frame({ type: 'events', run_id: 'r1', events: [ev(1, 'run_started'), ev(4), ev(5)] });
  const joins = socket.ops('join');
  assert.equal(joins.length, 1);
  assert.equal(joins[0].after_seq, 1);
  socket.frame({ type: 'events', run_id: 'r1', events: [ev(2), ev(3), ev(4), ev(5), ev(6, 'run_ended', { status: 'success' })] });
  const seen = [];
  for await (const event of run) seen.push(event.seq);
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
  client.close();
});

test('a refused token fails the runs for good: no reconnect', async () => {
  const { client } = await connected();
  const run = client.run(INPUT);
  const errors = [];
  client.on('error', (error) => errors.push(error.code));
  FakeSocket.last().drop(CloseCode.UNAUTHENTICATED, 'bad token');
  await assert.rejects(run.done, (err) => err.code === 'UNAUTHENTICATED' && err.status === 4401);
  assert.deepEqual(errors, ['UNAUTHENTICATED']);
  assert.equal(client.state, 'closed');
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(FakeSocket.opened.length, 1);
});

test('a gap the log cannot fill reloads state over REST and says so', async () => {
  const state = { values: { n: 1 }, next: [], checkpoint_id: 'c', parent_checkpoint_id: '', metadata: {}, created_at: 0, interrupts: [] };
  const { client, calls } = await connected({
    'GET /v1/threads/t1/state': () => Response.json(state),
    'GET /v1/threads/t1/runs/r1': () => Response.json({ run_id: 'r1', thread_id: 't1', status: 'running' }),
  });
  const socket = FakeSocket.last();
  const run = client.join({ runId: 'r1', threadId: 't1', epoch: 'e0', afterSeq: 7 });
  const resyncs = [];
  run.on('resync', (resync) => resyncs.push(resync));
  const [join] = socket.ops('join');
  assert.deepEqual([join.epoch, join.after_seq], ['e0', 7]);
  socket.frame({ type: 'accepted', id: join.id, run_id: 'r1', thread_id: 't1', recovered: false, epoch: 'e1', first_seq: 1, status: 'running' });
  socket.frame({ type: 'events', run_id: 'r1', events: [ev(1), ev(2, 'run_ended', { status: 'success' })] });
  const ended = await run.done;
  assert.equal(ended.seq, 2);
  assert.equal(resyncs.length, 1);
  assert.deepEqual(resyncs[0].state, state);
  assert.equal(resyncs[0].firstSeq, 1);
  assert.deepEqual(calls.map((c) => c.key).sort(), ['GET /v1/threads/t1/runs/r1', 'GET /v1/threads/t1/state']);
  client.close();
});

test('where WebSockets never get through, runs go over SSE, Last-Event-ID on re-attach', async () => {
  let posts = 0;
  const { fetch, calls } = fakeFetch({
    'GET /healthz': () => new Response('ok'),
    'POST /v1/threads/t1/runs/stream': () => {
      posts += 1;
      // The stream breaks off after two events: no end frame.
      return new Response(sseBody([{ id: 'e1:1', event: 'run_started', data: ev(1, 'run_started') }, { id: 'e1:2', event: 'custom', data: ev(2) }]), {
        headers: { 'x-glassbox-run-id': 'r1', 'content-type': 'text/event-stream' },
      });
    },
    'GET /v1/threads/t1/runs/r1/stream': () =>
      new Response(sseBody([{ event: 'status', data: { recovered: true } }, { id: 'e1:2', event: 'custom', data: ev(2) }, { id: 'e1:3', event: 'run_ended', data: ev(3, 'run_ended', { status: 'success' }) }, { event: 'end', data: {} }])),
  });
  const client = new GlassboxClient({ url: 'http://edge.test', WebSocket: FakeSocket, fetch, reconnect: FAST });
  const switched = [];
  client.on('transport', (name) => switched.push(name));
  const run = client.run({ ...INPUT, threadId: 't1' });
  for (let opens = 1; opens <= 2; opens += 1) {
    await waitFor(() => FakeSocket.opened.length === opens, `socket ${opens}`);
    FakeSocket.last().drop(1006);
  }
  const seen = [];
  for await (const event of run) seen.push(event.seq);
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(switched, ['sse']);
  assert.equal(client.transport, 'sse');
  assert.equal(posts, 1);
  const get = calls.find((c) => c.key === 'GET /v1/threads/t1/runs/r1/stream');
  assert.equal(get.init.headers['last-event-id'], 'e1:2');
  assert.equal(run.stats.reattached, 1);
  client.close();
});

test('after falling back to SSE the client says it is open before any run', async () => {
  const { fetch } = fakeFetch({ 'GET /healthz': () => new Response('ok') });
  const client = new GlassboxClient({ url: 'http://edge.test', WebSocket: FakeSocket, fetch, reconnect: FAST });
  const states = [];
  client.on('state', (change) => states.push(`${change.state}/${change.transport}`));
  client.connect();
  for (let opens = 1; opens <= 2; opens += 1) {
    await waitFor(() => FakeSocket.opened.length === opens, `socket ${opens}`);
    FakeSocket.last().drop(1011, 'no WebSockets here');
  }
  await waitFor(() => client.state === 'open', 'open over SSE');
  assert.equal(states.at(-1), 'open/sse');
  assert.equal(states[0], 'connecting/websocket');
  client.close();
});

test('cancel goes over the socket when it is open, over REST when not', async () => {
  const { client, calls } = await connected({
    'POST /v1/threads/t9/runs/r9/cancel': () => Response.json({ run_id: 'r9', status: 'cancelled' }),
  });
  const socket = FakeSocket.last();
  const pending = client.cancel('r1', 't1');
  const [frame] = socket.ops('cancel');
  socket.frame({ type: 'cancelled', id: frame.id, run: { run_id: 'r1', status: 'cancelled' } });
  assert.equal((await pending).status, 'cancelled');
  assert.deepEqual(calls, []);
  socket.drop(1006);
  assert.equal((await client.cancel('r9', 't9')).status, 'cancelled');
  client.close();
});
