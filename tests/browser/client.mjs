// glassbox.js on its own, as an application would use it, against an edge that wants a
// token: `for await` over a run, resume from the run handle, typed events by name, cancel,
// REST with the bearer token, the token in Sec-WebSocket-Protocol (or, when it cannot be a
// subprotocol, in the first frame) and never in the URL, and a wrong token refused for good.
import { scenario, ARGS, PAGE_URL } from './lib.mjs';

const [alice, bob] = ARGS;

await scenario(async ({ context }) => {
  const page = await context.newPage();
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`${PAGE_URL}glassbox.d.ts`); // any page of the edge's origin
  const out = await page.evaluate(async ({ alice, bob }) => {
    const { GlassboxClient, DEFAULT_STREAM_MODES } = await import('/glassbox.js');
    const states = [];
    const gb = new GlassboxClient({ token: alice, onState: (change) => states.push(change.state) });

    const run = gb.run({
      graph: 'demo',
      input: { messages: [{ role: 'user', content: 'File a ticket: the VPN drops every hour' }] },
      streamModes: [...DEFAULT_STREAM_MODES],
    });
    const types = [];
    for await (const event of run) types.push(event.type);
    const [interrupt] = run.interrupts;

    const answer = run.resume({ [interrupt.interrupt_id]: { decision: 'reject', reason: 'known issue' } });
    const tokens = [];
    answer.on('message_delta', (event) => tokens.push(event.token));
    const ended = await answer.done;
    const state = await gb.getState(run.threadId);

    const long = gb.run({
      graph: 'demo',
      threadId: run.threadId,
      input: { messages: [{ role: 'user', content: 'How does streaming work?' }] },
    });
    await new Promise((resolve) => long.once('message_delta', resolve));
    const cancelReply = await long.cancel();
    const cancelled = await long.done;

    // A token that cannot be a subprotocol name travels in the first frame instead.
    const other = new GlassboxClient({ token: bob });
    const otherRun = other.run({ graph: 'demo', input: { messages: [{ role: 'user', content: 'What is Glassbox?' }] } });
    const otherEnd = await otherRun.done;
    const otherPrincipal = other.principal;
    other.close();

    const wrong = new GlassboxClient({ token: 'not-a-key' });
    const refused = await new Promise((resolve) => {
      wrong.on('error', (error) => resolve({ code: error.code, status: error.status }));
      wrong.connect();
    });
    await new Promise((resolve) => setTimeout(resolve, 700)); // would it try again? it must not
    const wrongState = wrong.state;

    const principal = gb.principal;
    gb.close();
    return {
      principal,
      states,
      types,
      paused: run.result.status,
      interrupt: interrupt.value,
      ended: ended.status,
      answer: tokens.join(''),
      saved: state.values.messages.at(-1).content,
      cancelReply: cancelReply.run_id === long.runId,
      cancelled: cancelled.status,
      otherPrincipal,
      otherEnd: otherEnd.status,
      refused,
      wrongState,
      stats: run.stats,
    };
  }, { alice, bob });
  return { ...out, sockets };
});
