// The useStream page (tests/langgraph/page, built by Vite) in Chromium against the edge.
// `node tests/langgraph/react.mjs <edge URL> <built page dir> <API key> <origin>`.
// The page is served at <origin> by request interception, so the browser calls the edge
// cross-origin, as an app calling a LangGraph server does. Prints one {"result": …} line:
// what the page showed, for tests/test_langgraph_react.py to hold against the server.
//
// Scenarios, in one tab and one thread: an answer reloaded mid-stream (reconnectOnMount
// replays it), an answer stopped, a ticket request answered at its approval interrupt.

import { launch } from '../browser/lib.mjs';
import { servePage } from './serve_page.mjs';

const [, , edgeUrl, pageDir, apiKey, origin] = process.argv;
const WAIT = 30_000;

// Every rendering of the messages, as the page showed them: each list of [type, text].
function watchMessages() {
  window.__renders = [];
  new MutationObserver(() => {
    const list = document.getElementById('messages');
    if (!list) return;
    window.__renders.push([...list.children].map((li) => [li.dataset.type, li.textContent]));
  }).observe(document, { subtree: true, childList: true, characterData: true });
}

const status = (page) =>
  page.locator('#status').evaluate((el) => ({ ...el.dataset }));
const messages = (page) =>
  page.locator('#messages > li').evaluateAll((items) =>
    items.map((li) => ({ id: li.dataset.id, type: li.dataset.type, text: li.textContent })),
  );
const renders = (page) => page.evaluate(() => window.__renders);

async function idle(page) {
  await page.locator('#status[data-loading="false"]').waitFor({ state: 'attached', timeout: WAIT });
}

async function ask(page, text) {
  await page.locator('#input').fill(text);
  await page.locator('#send').click();
  await page.locator('#status[data-loading="true"]').waitFor({ state: 'attached', timeout: WAIT });
}

// Until the answer to `question` (an AI message after it) shows at least `chars` characters.
async function answerGrows(page, question, chars) {
  await page.waitForFunction(
    ([asked, n]) => {
      const items = [...document.querySelectorAll('#messages > li')];
      const at = items.findLastIndex((li) => li.dataset.type === 'human');
      if (at < 0 || items[at].textContent !== asked) return false;
      return items.slice(at + 1).some((li) => li.dataset.type === 'ai' && li.textContent.length >= n);
    },
    [question, chars],
    { timeout: WAIT, polling: 'raf' },
  );
}

const { context, errors, close } = await launch();
const requests = [];
const problems = [];
try {
  await servePage(context, origin, pageDir);
  const page = await context.newPage();
  await page.addInitScript(watchMessages);
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(msg.text());
  });
  page.on('pageerror', (error) => problems.push(String(error)));
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith(edgeUrl)) {
      requests.push({
        method: request.method(),
        path: url.slice(edgeUrl.length),
        lastEventId: request.headers()['last-event-id'] ?? null,
        body: request.method() === 'POST' ? request.postDataJSON() : null,
      });
    }
  });
  const query = new URLSearchParams({ api: edgeUrl, key: apiKey });
  await page.goto(`${origin}/index.html?${query}`);
  await page.locator('#status').waitFor({ state: 'attached', timeout: WAIT });

  let threadId = '';
  // Each scenario's record, or {failed} with the requests and console lines it saw.
  const results = {};
  const scenario = async (name, run) => {
    const [r0, p0] = [requests.length, problems.length];
    try {
      results[name] = await run();
    } catch (error) {
      results[name] = { failed: String(error.stack ?? error) };
    }
    results[name].requests = requests.slice(r0);
    results[name].problems = problems.slice(p0);
  };

  // 1. Reload mid-answer.
  await scenario('reloaded', async () => {
    const question = 'How do stream modes work?';
    await ask(page, question);
    await answerGrows(page, question, 12);
    threadId = (await status(page)).thread;
    const beforeReload = await messages(page);
    const storedRun = await page.evaluate((t) => sessionStorage.getItem(`lg:stream:${t}`), threadId);
    await page.reload();
    await page.locator('#status').waitFor({ state: 'attached', timeout: WAIT });
    await answerGrows(page, question, 1);
    await idle(page);
    return { beforeReload, storedRun, renders: await renders(page), final: await messages(page), status: await status(page) };
  });

  // 2. Stop mid-answer.
  await scenario('stopped', async () => {
    const question = 'Tell me about checkpointers';
    await ask(page, question);
    await answerGrows(page, question, 1);
    const runId = await page.evaluate((t) => sessionStorage.getItem(`lg:stream:${t}`), threadId);
    const shownAtStop = await messages(page);
    await page.locator('#stop').click();
    await idle(page);
    return { runId, shownAtStop, final: await messages(page), status: await status(page) };
  });

  // 3. A ticket: the approval interrupt, answered.
  await scenario('approved', async () => {
    await ask(page, 'Please file a ticket: the docs search is slow');
    await page.locator('#interrupt').waitFor({ state: 'attached', timeout: WAIT });
    await idle(page);
    const question = JSON.parse(await page.locator('#interrupt').getAttribute('data-value'));
    await page.locator('#approve').click();
    // Until the ticket's answer shows, or the hook reports an error (then at once).
    await page.waitForFunction(
      () =>
        document.querySelector('#status').dataset.error ||
        [...document.querySelectorAll('#messages > li[data-type="ai"]')].some((li) =>
          li.textContent.startsWith('Done: I filed ticket'),
        ),
      undefined,
      { timeout: WAIT },
    );
    await idle(page);
    return { question, final: await messages(page), status: await status(page), interrupt: await page.locator('#interrupt').count() };
  });

  process.stdout.write(JSON.stringify({ result: { threadId, ...results, pageErrors: errors } }) + '\n');
} catch (error) {
  // What the page saw, to say why it failed.
  process.stderr.write(`${error.stack}\nrequests: ${JSON.stringify(requests)}\nconsole: ${JSON.stringify(problems)}\n`);
  process.exitCode = 1;
} finally {
  await close();
}
