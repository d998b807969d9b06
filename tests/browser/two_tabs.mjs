// Two tabs, two conversations: each keeps its thread in its URL hash and both stream at
// once. The first tab is reloaded mid-answer: it gets its conversation back from the
// thread's state and follows the run still going to its end.
import { scenario, openPage, ask, demoState, lastAnswer, runEnded, waitConnected } from './lib.mjs';

await scenario(async ({ context }) => {
  const first = await openPage(context);
  const second = await openPage(context);
  await second.click('#new-thread');
  await Promise.all([
    ask(first, 'How does streaming work?'),
    ask(second, 'Which checkpointers does Glassbox support?'),
  ]);

  await first.waitForFunction(() => (document.querySelector('.msg-agent .text.streaming')?.textContent.length ?? 0) > 30, null, { polling: 10 });
  const before = await demoState(first);
  const lengthAtReload = (await lastAnswer(first)).text.length;
  await first.reload();
  await waitConnected(first);
  await first.locator('.msg-user').first().waitFor();
  const [firstRun] = await Promise.all([runEnded(first), runEnded(second)]);

  const reloaded = {
    ...(await demoState(first)),
    before,
    lengthAtReload,
    run: firstRun,
    questions: await first.locator('.msg-user .bubble').allTextContents(),
    answer: await lastAnswer(first),
    sources: await first.locator('.msg-agent .source').count(),
    turns: await first.locator('.msg-agent').count(),
  };
  const other = { ...(await demoState(second)), answer: await lastAnswer(second) };
  return { reloaded, other, problems: first.problems.concat(second.problems) };
});
