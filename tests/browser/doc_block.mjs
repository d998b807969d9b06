// A code block of the docs, run as a browser runs it: an ES module on the edge's origin
// (so `import … from "/glassbox.js"` and the client's default URL mean that edge).
//
// `node tests/browser/doc_block.mjs <edge URL> "" <block.mjs>`; the result carries what the
// module logged, the page's text afterwards, and the error it threw, if any.
import { readFileSync } from 'node:fs';
import { scenario, ARGS, PAGE_URL } from './lib.mjs';

const source = readFileSync(ARGS[0], 'utf8');
const origin = new URL(PAGE_URL).origin;

await scenario(async ({ context }) => {
  const page = await context.newPage();
  // The block itself, served as a module of the edge's origin.
  await page.route(`${origin}/__doc_block__.mjs`, (route) =>
    route.fulfill({ contentType: 'text/javascript', body: source }),
  );
  const logs = [];
  const problems = [];
  page.on('console', (msg) => (msg.type() === 'error' ? problems : logs).push(msg.text()));
  page.on('pageerror', (error) => problems.push(String(error)));
  // A page the edge really served (a routed one would count as outside the local network,
  // and Chromium would block its WebSocket to 127.0.0.1), emptied: the demo app stays out.
  await page.goto(`${origin}/glassbox.d.ts`);
  await page.setContent('<!doctype html><title>doc block</title><body></body>');
  // import() settles when the module, top-level awaits included, has run to its end.
  const error = await page.evaluate(() =>
    import('/__doc_block__.mjs').then(
      () => '',
      (e) => String(e?.stack ?? e),
    ),
  );
  const text = await page.evaluate(() => document.body.innerText);
  return { logs, text, error, problems };
});
