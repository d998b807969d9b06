// Ask a question on a desktop and on a phone-sized page: the answer types out token by
// token, the agent's path, its tool call and progress show up, the sources render, and the
// state inspector loads the thread over REST.
import { scenario, openPage, ask, watchTyping, screenshot, demoState, lastAnswer, runEnded, PHONE } from './lib.mjs';

const QUESTION = 'How does streaming work?';

await scenario(async ({ context }) => {
  const page = await openPage(context);
  await ask(page, QUESTION);
  const early = await watchTyping(page, { until: 20 });
  await screenshot(page, 'desktop-answer-streaming');
  const lengths = early.concat(await watchTyping(page));
  const run = await runEnded(page);
  const answer = await lastAnswer(page);

  const panel = await page.evaluate(() => ({
    nodes: [...document.querySelectorAll('#path .node-chip')].map((n) => n.textContent),
    tools: [...document.querySelectorAll('.tl[data-kind="tool"]')].map((t) => ({
      title: t.querySelector('.tl-title').textContent,
      state: t.dataset.state,
      args: t.querySelector('.kv pre')?.textContent,
      progress: [...t.querySelectorAll('.tl-progress li')].map((li) => li.textContent),
      result: t.querySelectorAll('.kv pre')[1]?.textContent ?? '',
    })),
    sources: [...document.querySelectorAll('.msg-agent .source')].map((s) => ({
      title: s.querySelector('.source-title').textContent,
      url: s.getAttribute('href'),
    })),
    runEnded: document.querySelector('.tl[data-kind="end"]')?.dataset.state,
  }));

  await page.click('.tabs-side button[data-view="state"]');
  await page.locator('#state-tree details').first().waitFor();
  const inspector = await page.evaluate(() => ({
    meta: Object.fromEntries(
      [...document.querySelectorAll('#state-meta dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]),
    ),
    tree: document.querySelector('#state-tree').textContent,
  }));

  // The same on a phone-sized page, in its own conversation.
  const phone = await openPage(context, { size: PHONE });
  await ask(phone, 'What happens when an agent pauses for approval?');
  await watchTyping(phone, { until: 14 });
  await screenshot(phone, 'phone-answer-streaming');
  const phoneRun = await runEnded(phone);
  const phoneLayout = await phone.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    sideVisible: getComputedStyle(document.querySelector('.side')).display !== 'none',
    tabsVisible: getComputedStyle(document.querySelector('.tabs-mobile')).display !== 'none',
  }));
  await phone.click('.tabs-mobile button[data-view="activity"]');
  const phoneActivityVisible = await phone.locator('#panel-activity').isVisible();

  return {
    lengths,
    answer,
    run,
    panel,
    inspector,
    desktop: await demoState(page),
    phone: { ...(await demoState(phone)), run: phoneRun, answer: await lastAnswer(phone), layout: phoneLayout, activityVisible: phoneActivityVisible },
    problems: page.problems.concat(phone.problems),
  };
});
