// Serves a built page from disk at `origin` inside a Playwright browser context, by request
// interception: the page then has an origin of its own (cross-origin to the edge, as an app
// calling a LangGraph server has) without a web server.
import { readFileSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

export async function servePage(context, origin, pageDir) {
  // A page fulfilled by interception has no address space of its own, so Chromium's Local
  // Network Access would ask the user before it calls a loopback edge: say yes, as they would.
  await context.grantPermissions(['local-network-access'], { origin });
  await context.route(`${origin}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    const file = normalize(join(pageDir, path === '/' ? 'index.html' : path));
    if (!file.startsWith(pageDir)) return route.fulfill({ status: 404 });
    return route.fulfill({
      status: 200,
      contentType: TYPES[extname(file)] ?? 'application/octet-stream',
      body: readFileSync(file),
    });
  });
}
