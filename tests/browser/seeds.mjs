// The seeds' browser clients, as they stand (tests/seeds/*.js), in Chromium on the edge's
// origin: `node tests/browser/seeds.mjs <edge URL> <screenshot dir> <case> [args…]`.
//
//   event_source QUESTION   section 6.1's chatWithStreaming, its UI functions recorded
//   reconnect QUESTION      the same, while the test restarts the edge mid-answer
//   react_hook QUESTION     section 6.2's useChatStream in a React component
//   polling QUESTION ANSWER section 2.2's startAgent; a "person" answers the pause
//
// What the seed's code calls (updateProgressUI …, console.log) is recorded on the page and
// printed as the result.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import { ARGS, PAGE_URL, nextLine, scenario, signal } from './lib.mjs';

const SEEDS = new URL('../seeds/', import.meta.url);
const seed = (name) => readFileSync(new URL(name, SEEDS), 'utf8');
const [which, question, answer] = ARGS;
const origin = new URL(PAGE_URL).origin;
const HARNESS = `${origin}/__seed_harness__`;

// The UI functions section 6.1 calls, recording what they are given.
const RECORDERS = `
  window.seedUI = { progress: [], chunks: [], done: [], errors: [], opens: 0, closeOnDrop: 0 };
  function updateProgressUI(stage, status, message) { seedUI.progress.push({ stage, status, message }); }
  function appendToChat(content) { seedUI.chunks.push(content); }
  function finalizeChatUI(result) { seedUI.done.push(result); }
  function showError(message) { seedUI.errors.push(message); }
`;

// The seed's error listener closes the EventSource on every error event, and a dropped
// connection fires one (without data) before EventSource reconnects: as written, the seed
// never reconnects. For the drop case only, a close asked for from inside such a drop's
// error event is counted instead of done; nothing else about the seed's code changes.
const KEEP_OPEN_ON_DROP = `
  const Native = window.EventSource;
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      this.inDrop = false;
      this.addEventListener('open', () => seedUI.opens++);
      super.addEventListener('error', (e) => { this.inDrop = !e.data && this.readyState === Native.CONNECTING; });
    }
    addEventListener(type, listener, options) {
      if (type !== 'error') return super.addEventListener(type, listener, options);
      return super.addEventListener(type, (e) => { listener(e); this.inDrop = false; }, options);
    }
    close() {
      if (this.inDrop) { seedUI.closeOnDrop++; return; }
      super.close();
    }
  };
`;

// section 2.2's client calls http://localhost:8080; the page maps it to the edge.
const MAP_SEED_SERVER = `
  window.seedLogs = [];
  const realFetch = window.fetch.bind(window);
  window.realFetch = realFetch;
  window.fetch = (url, init) => realFetch(String(url).replace('http://localhost:8080', location.origin), init);
  for (const level of ['log', 'error']) {
    const original = console[level].bind(console);
    console[level] = (...args) => { seedLogs.push({ level, args: JSON.parse(JSON.stringify(args)) }); original(...args); };
  }
`;

async function harnessPage(context, { init = '', scripts = [] } = {}) {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(String(error)));
  page.problems = problems;
  await page.route(HARNESS, (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><meta charset="utf-8"><div id="root"></div>' }),
  );
  if (init) await page.addInitScript({ content: init });
  await page.goto(HARNESS);
  for (const content of scripts) await page.addScriptTag({ content });
  return page;
}

async function eventSource(context, { reconnect = false } = {}) {
  const init = RECORDERS + (reconnect ? KEEP_OPEN_ON_DROP : '');
  const page = await harnessPage(context, { scripts: [init, seed('sse_event_source.js')] });
  const requests = [];
  page.on('request', (request) => request.url().endsWith('/events') && requests.push(request.url()));
  await page.evaluate((q) => { chatWithStreaming(q); }, question);
  if (reconnect) {
    await page.waitForFunction(() => seedUI.chunks.length >= 5, null, { polling: 20 });
    signal('typing', { chunks: await page.evaluate(() => seedUI.chunks.length) });
    await nextLine(); // the edge was restarted
  }
  await page.waitForFunction(() => seedUI.done.length || seedUI.errors.length, null, { timeout: 40_000, polling: 50 });
  const ui = await page.evaluate(() => JSON.parse(JSON.stringify(seedUI)));
  return { ...ui, requests, problems: page.problems };
}

async function reactHook(context) {
  const bundle = await build({
    stdin: {
      contents: `import { useState, createElement } from 'react';
import { createRoot } from 'react-dom/client';
${seed('react_hook.js')}
function App() {
  const chat = useChatStream();
  window.seedChat = chat;
  window.seedRenders.push({ status: chat.status, currentAnswer: chat.currentAnswer, messages: chat.messages });
  return createElement('pre', null, chat.status + ': ' + chat.currentAnswer);
}
window.seedRenders = [];
createRoot(document.getElementById('root')).render(createElement(App));`,
      resolveDir: new URL('.', import.meta.url).pathname,
      loader: 'js',
    },
    bundle: true,
    write: false,
    format: 'iife',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const page = await harnessPage(context, { scripts: [bundle.outputFiles[0].text] });
  await page.waitForFunction(() => window.seedChat);
  await page.evaluate((q) => window.seedChat.sendMessage(q), question);
  await page.waitForFunction(() => ['done', 'idle'].includes(window.seedChat.status) && window.seedRenders.length > 2, null, { timeout: 40_000, polling: 50 });
  const renders = await page.evaluate(() => JSON.parse(JSON.stringify(window.seedRenders)));
  const statuses = renders.map((r) => r.status).filter((s, i, all) => s !== all[i - 1]);
  const last = renders.at(-1);
  const lengths = [...new Set(renders.map((r) => r.currentAnswer.length))];
  return { statuses, currentAnswer: last.currentAnswer, messages: last.messages, lengths, problems: page.problems };
}

async function polling(context) {
  const page = await harnessPage(context, { init: MAP_SEED_SERVER, scripts: [seed('polling_client.js')] });
  await page.evaluate((q) => { startAgent(q); }, question);
  const started = await page.waitForFunction(() => {
    const line = seedLogs.find((l) => String(l.args[0]).startsWith('Agent started with thread_id: '));
    return line && line.args[0].slice('Agent started with thread_id: '.length);
  });
  const threadId = await started.jsonValue();
  // A person, at another screen, answers the pause the thread shows.
  const resumed = await page.evaluate(async ({ threadId, answer }) => {
    for (;;) {
      const state = await (await realFetch(`/state/${threadId}`)).json();
      if (state.interrupts?.length) {
        const response = await realFetch(`/resume/${threadId}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ input: answer }),
        });
        return { status: response.status, body: await response.json(), prompt: state.interrupts[0].value, next: state.next };
      }
      if (!state.next?.length && state.values?.messages) return null;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, { threadId, answer: JSON.parse(answer) });
  await page.waitForFunction(() => seedLogs.some((l) => l.args[0] === 'Agent finished. Final answer:'), null, { timeout: 40_000, polling: 100 });
  const logs = await page.evaluate(() => seedLogs);
  return { threadId, resumed, logs, problems: page.problems };
}

scenario(async ({ context }) => {
  if (which === 'event_source') return eventSource(context);
  if (which === 'reconnect') return eventSource(context, { reconnect: true });
  if (which === 'react_hook') return reactHook(context);
  if (which === 'polling') return polling(context);
  throw new Error(`unknown case ${which}`);
});
