// Shared by the browser scenarios: Debian's Chromium driven by playwright-core (which never
// downloads a browser), the demo page's selectors, and the JSON a scenario prints last.
//
// A scenario is `node tests/browser/<name>.mjs <page URL> [screenshot dir]`. It prints
// progress lines as {"signal": …} (tests/test_browser.py may act on them, e.g. restart the
// edge) and ends with one {"result": …} line; a failure exits non-zero with the reason.

import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.GLASSBOX_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 812 };

const [, , url, shotDir, ...rest] = process.argv;
export const PAGE_URL = url;
export const SHOT_DIR = shotDir || '';
/** Arguments after the page URL and screenshot directory. */
export const ARGS = rest;

/** Start Chromium on a fresh profile; the profile goes when the browser closes. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'glassbox-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: DESKTOP,
    deviceScaleFactor: 2,
    timeout: 30_000,
  });
  context.setDefaultTimeout(20_000);
  const errors = [];
  context.on('weberror', (error) => errors.push(String(error.error())));
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, errors, close };
}

/** A tab on the demo page at `size`, once its client is connected. */
export async function openPage(context, { size = DESKTOP, hash = '', query = '', setup = null } = {}) {
  const page = await context.newPage();
  await page.setViewportSize(size);
  if (setup) await setup(page);
  const problems = [];
  page.on('console', (msg) => {
    // The browser logs refused connections itself while a server is down: not the page's fault.
    if (msg.type() === 'error' && !/net::ERR_|status of 503/.test(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (error) => problems.push(String(error)));
  page.problems = problems;
  await page.goto(`${PAGE_URL}${query}${hash}`);
  await waitConnected(page);
  return page;
}

export async function waitConnected(page, timeout = 15_000) {
  await page.locator('#conn[data-state="open"]').waitFor({ timeout });
}

/** Type a question and send it with Enter, as a person would. */
export async function ask(page, text) {
  await page.locator('#input').fill(text);
  await page.locator('#input').press('Enter');
}

/** The rendered text of the latest agent message block, and its message id. */
export async function lastAnswer(page) {
  return page.evaluate(() => {
    const blocks = [...document.querySelectorAll('.msg-agent .text')];
    const last = blocks.at(-1);
    return last ? { id: last.dataset.messageId, text: last.textContent, streaming: last.classList.contains('streaming') } : null;
  });
}

/** Wait until the latest run of the page has ended; its record from window.glassboxDemo. */
export async function runEnded(page, { timeout = 30_000, index = -1 } = {}) {
  await page.waitForFunction(
    (i) => {
      const runs = window.glassboxDemo.runs;
      const run = runs.at(i);
      return run && run.status !== 'running' && !window.glassboxDemo.active;
    },
    index,
    { timeout, polling: 50 },
  );
  return page.evaluate((i) => {
    const run = window.glassboxDemo.runs.at(i);
    return JSON.parse(JSON.stringify(run));
  }, index);
}

/** What the page knows: thread, runs (with the seqs it was handed), connection states. */
export async function demoState(page) {
  return page.evaluate(() => {
    const d = window.glassboxDemo;
    return JSON.parse(
      JSON.stringify({
        threadId: d.threadId,
        hash: location.hash,
        runs: d.runs,
        connection: d.connection,
        mismatches: d.mismatches,
        transport: d.client.transport,
      }),
    );
  });
}

/** Sample the answer's length until it is done: proves it arrived in pieces. */
export async function watchTyping(page, { until = 'done', timeout = 30_000 } = {}) {
  const lengths = [];
  const started = Date.now();
  while (Date.now() - started < timeout) {
    const answer = await lastAnswer(page);
    const length = answer?.text.length ?? 0;
    if (length && length !== lengths.at(-1)) lengths.push(length);
    if (until === 'done' && answer && !answer.streaming && !(await page.evaluate(() => Boolean(window.glassboxDemo.active)))) break;
    if (typeof until === 'number' && lengths.length >= until) break;
    await page.waitForTimeout(15);
  }
  return lengths;
}

export async function screenshot(page, name) {
  if (!SHOT_DIR) return '';
  mkdirSync(SHOT_DIR, { recursive: true });
  const path = join(SHOT_DIR, `${name}.png`);
  await page.screenshot({ path, animations: 'disabled', caret: 'hide' });
  return path;
}

export function signal(name, detail = {}) {
  process.stdout.write(`${JSON.stringify({ signal: name, ...detail })}\n`);
}

/** Wait for a line on stdin from the test (e.g. "resumed" after it restarted the edge). */
const stdin = createInterface({ input: process.stdin });
const lines = [];
const waiters = [];
stdin.on('line', (line) => (waiters.length ? waiters.shift()(line) : lines.push(line)));
export function nextLine() {
  return lines.length ? Promise.resolve(lines.shift()) : new Promise((resolve) => waiters.push(resolve));
}

/** Run a scenario: print its result, or the error and a non-zero exit. */
export async function scenario(body) {
  const browser = await launch();
  let code = 0;
  try {
    const result = await body(browser);
    if (browser.errors.length) result.pageErrors = browser.errors;
    process.stdout.write(`${JSON.stringify({ result })}\n`);
  } catch (error) {
    process.stderr.write(`${error?.stack ?? error}\n`);
    code = 1;
  } finally {
    await browser.close();
    stdin.close();
  }
  process.exit(code);
}
