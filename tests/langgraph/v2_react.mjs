// The v2 useStream page (tests/langgraph/v2page, built by Vite) in Chromium against the edge.
// `node tests/langgraph/v2_react.mjs <edge URL> <built page dir> <API key> <origin>`.
// The page is served at <origin> by request interception, so the browser calls the edge
// cross-origin, as an app calling a LangGraph server does. Prints one {"result": …} line:
// what the page showed and asked the edge, for tests/test_langgraph_v2_react.py to hold
// against the server.
//
// Scenarios, in one tab and one thread: an answer reloaded mid-stream (the hook hydrates
// and replays the run in flight from the thread stream), an answer stopped, a ticket
// request answered at its approval interrupt, and another answered after a reload while
// it waited; then, in another tab, a ticket over the hook's WebSocket transport.

import { Client } from '@langchain/langgraph-sdk';
import { launch } from '../browser/lib.mjs';
import { servePage } from './serve_page.mjs';

const [, , edgeUrl, pageDir, apiKey, origin] = process.argv;
const WAIT = 30_000;
const server = new Client({ apiUrl: edgeUrl, apiKey, callerOptions: { maxRetries: 0 } });

// Every rendering of the messages, as the page showed them: each list of [type, text].
function watchMessages() {
  window.__renders = [];
  new MutationObserver(() => {
    const list = document.getElementById('messages');
    if (!list) return;
    window.__renders.push([...list.children].map((li) => [li.dataset.type, li.textContent]));
  }).observe(document, { subtree: true, childList: true, characterData: true });
}

const status = (page) => page.locator('#status').evaluate((el) => ({ ...el.dataset }));
const messages = (page) =>
  page.locator('#messages > li').evaluateAll((items) =>
    items.map((li) => ({ id: li.dataset.id, type: li.dataset.type, text: li.textContent })),
  );
const renders = (page) => page.evaluate(() => window.__renders);

async function ask(page, text) {
  await page.locator('#input').fill(text);
  await page.locator('#send').click();
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

// Until the server's thread is idle and the page, no longer loading, shows the last AI
// message the server saved: the page has caught up with the run.
async function settled(page, threadId) {
  const deadline = Date.now() + WAIT;
  let saved = null;
  while (Date.now() < deadline) {
    const thread = await server.threads.get(threadId);
    if (thread.status === 'idle') {
      const state = await server.threads.getState(threadId);
      const said = state.values.messages.filter((m) => m.type === 'ai' && m.content);
      saved = said.at(-1);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!saved) throw new Error(`thread ${threadId} did not end its run`);
  await page.waitForFunction(
    ([id, content]) => {
      const status = document.querySelector('#status');
      if (!status || status.dataset.loading !== 'false') return false;
      const item = document.querySelector(`#messages > li[data-id="${CSS.escape(id)}"]`);
      return item !== null && item.textContent === content;
    },
    [saved.id, typeof saved.content === 'string' ? saved.content : ''],
    { timeout: WAIT, polling: 200 },
  );
}

// A ticket request: the approval shows, (the page is reloaded and shows it again,) it is
// answered in the page, and the answer streams in.
async function ticket(page, request, reload) {
  await ask(page, request);
  await page.locator('#interrupt').waitFor({ state: 'attached', timeout: WAIT });
  const asked = await question(page);
  let askedAfterReload = null;
  if (reload) {
    await page.reload();
    await page.locator('#interrupt').waitFor({ state: 'attached', timeout: WAIT });
    askedAfterReload = await question(page);
  }
  const rendersFrom = (await renders(page)).length;
  await page.locator('#approve').click();
  await page.waitForFunction(
    () =>
      document.querySelector('#status').dataset.error ||
      [...document.querySelectorAll('#messages > li[data-type="ai"]')].some((li) =>
        li.textContent.startsWith('Done: I filed ticket'),
      ),
    undefined,
    { timeout: WAIT },
  );
  const threadId = (await status(page)).thread;
  await settled(page, threadId);
  return {
    asked,
    askedAfterReload,
    renders: (await renders(page)).slice(rendersFrom),
    final: await messages(page),
    status: await status(page),
    interrupt: await page.locator('#interrupt').count(),
  };
}

const question = (page) =>
  page.locator('#interrupt').evaluate((el) => ({ id: el.dataset.id, value: JSON.parse(el.dataset.value) }));

const { context, errors, close } = await launch();
const requests = [];
const problems = [];
try {
  await servePage(context, origin, pageDir);
  // A tab whose renders, console errors and requests to the edge are recorded.
  const tab = async () => {
    const opened = await context.newPage();
    await opened.addInitScript(watchMessages);
    opened.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(msg.text());
    });
    opened.on('pageerror', (error) => problems.push(String(error)));
    opened.on('request', (request) => {
      const url = request.url();
      if (url.startsWith(edgeUrl) && request.method() !== 'OPTIONS') {
        requests.push({
          method: request.method(),
          path: url.slice(edgeUrl.length),
          apiKey: request.headers()['x-api-key'] === apiKey,
          body: request.method() === 'POST' ? request.postDataJSON() : null,
        });
      }
    });
    return opened;
  };
  const page = await tab();
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
      results[name] = { failed: String(error.stack ?? error), final: await messages(page).catch(() => []) };
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
    const reloadAt = requests.length;
    await page.reload();
    await page.locator('#status').waitFor({ state: 'attached', timeout: WAIT });
    await answerGrows(page, question, 1);
    await settled(page, threadId);
    return {
      beforeReload,
      reloadAt,
      renders: await renders(page),
      final: await messages(page),
      status: await status(page),
    };
  });

  // 2. Stop mid-answer.
  await scenario('stopped', async () => {
    const question = 'Tell me about checkpointers';
    await ask(page, question);
    await answerGrows(page, question, 1);
    const shownAtStop = await messages(page);
    await page.locator('#stop').click();
    await page.locator('#status[data-loading="false"]').waitFor({ state: 'attached', timeout: WAIT });
    return { shownAtStop, final: await messages(page), status: await status(page) };
  });

  // 3. A ticket: the approval interrupt, answered in the page.
  await scenario('approved', async () => ticket(page, 'Please file a ticket: the docs search is slow', false));

  // 4. Another, with the page reloaded while it waits for the approval.
  await scenario('approvedAfterReload', async () => ticket(page, 'Please file a ticket: the login page is down', true));

  // 5. A ticket on a page of its own whose hook streams over a WebSocket, on a new thread.
  const wsPage = await tab();
  const frames = [];
  wsPage.on('websocket', (socket) => {
    if (!socket.url().startsWith(edgeUrl.replace(/^http/, 'ws'))) return;
    socket.on('framesent', ({ payload }) => frames.push({ path: new URL(socket.url()).pathname, sent: JSON.parse(payload) }));
  });
  await scenario('webSocket', async () => {
    await wsPage.goto(`${origin}/index.html?${query}&transport=websocket`);
    await wsPage.locator('#status').waitFor({ state: 'attached', timeout: WAIT });
    const got = await ticket(wsPage, 'Please file a ticket: the search page is broken', false);
    return { ...got, threadId: (await status(wsPage)).thread, frames };
  });

  process.stdout.write(JSON.stringify({ result: { threadId, ...results, pageErrors: errors } }) + '\n');
} catch (error) {
  // What the page saw, to say why it failed.
  process.stderr.write(`${error.stack}\nrequests: ${JSON.stringify(requests)}\nconsole: ${JSON.stringify(problems)}\n`);
  process.exitCode = 1;
} finally {
  await close();
}
