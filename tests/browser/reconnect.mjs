// Drop the connection mid-answer: when the answer is typing, print {"signal": "typing"};
// the test restarts the edge on the same port and answers "restarted". The page must
// reconnect by itself, re-attach the run at its last seq, and finish the answer with every
// token exactly once. `websocket` (default) or `sse`: for SSE the page's WebSockets are
// refused, so the client falls back to SSE by itself first.
import { scenario, openPage, ask, demoState, lastAnswer, runEnded, signal, nextLine, waitConnected, ARGS } from './lib.mjs';

const transport = ARGS[0] || 'websocket';

await scenario(async ({ context }) => {
  const setup = transport === 'sse'
    ? (page) => page.routeWebSocket(/\/v1\/ws$/, (ws) => ws.close({ code: 1011, reason: 'no WebSockets here' }))
    : null;
  const page = await openPage(context, { setup });
  const before = await demoState(page);
  await ask(page, 'How does streaming work?');

  // Wait for the answer to be typing, then have the edge restarted under it.
  await page.waitForFunction(() => (document.querySelector('.msg-agent .text.streaming')?.textContent.length ?? 0) > 40, null, { polling: 10 });
  const atDrop = await lastAnswer(page);
  signal('typing', { length: atDrop.text.length });
  const restarted = nextLine();

  // The indicator says so, then recovers on its own.
  await page.waitForFunction(() => window.glassboxDemo.connection.includes('reconnecting'), null, { polling: 10, timeout: 15_000 });
  const lengthWhenDropped = (await lastAnswer(page)).text.length;
  await restarted;
  const run = await runEnded(page, { timeout: 30_000 });
  await waitConnected(page);
  const after = await demoState(page);
  return {
    transport,
    transportBefore: before.transport,
    lengthAtSignal: atDrop.text.length,
    lengthWhenDropped,
    answer: await lastAnswer(page),
    run,
    connection: after.connection,
    indicator: await page.locator('#conn').getAttribute('data-state'),
    notes: await page.locator('.note').allTextContents(),
    ...after,
    problems: page.problems,
  };
});
