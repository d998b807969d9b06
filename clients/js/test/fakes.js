// Stand-ins for the browser's WebSocket and fetch, for unit tests of the client's logic
// (the real edge is exercised by the Chromium tests in tests/test_browser.py).

/** Wait until `predicate()` holds, or fail after `timeoutMs`. */
export async function waitFor(predicate, what = 'condition', timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** A WebSocket the test plays the server for. `FakeSocket.opened` lists every one made. */
export class FakeSocket {
  static opened = [];

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.opened.push(this);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code, reason) {
    this.closedWith = { code, reason };
  }

  /** The server's side: open, then welcome. */
  welcome(principal = 'anonymous') {
    this.onopen?.();
    this.frame({ type: 'welcome', principal, protocol: 'glassbox.v1', max_frame_bytes: 65536 });
  }

  frame(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  drop(code = 1006, reason = '') {
    this.onclose?.({ code, reason });
  }

  /** The frames the client sent with this op. */
  ops(op) {
    return this.sent.filter((f) => f.op === op);
  }

  static reset() {
    FakeSocket.opened = [];
  }

  static last() {
    return FakeSocket.opened[FakeSocket.opened.length - 1];
  }
}

/** A fetch that answers from `routes` ("METHOD /path" → function returning a Response) and records calls. */
export function fakeFetch(routes) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const path = new URL(url).pathname;
    const key = `${init.method ?? 'GET'} ${path}`;
    calls.push({ key, init });
    const route = routes[key];
    if (!route) return Response.json({ error: { code: 'NOT_FOUND', message: key } }, { status: 404 });
    return route(init);
  };
  return { fetch, calls };
}

/** An SSE body of these frames ({event, data}). */
export function sseBody(frames) {
  const text = frames.map((f) => `${f.id ? `id: ${f.id}\n` : ''}event: ${f.event}\ndata: ${JSON.stringify(f.data)}\n\n`).join('');
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text));
      controller.close();
    },
  });
}

/** A run event. */
export function ev(seq, type = 'custom', extra = {}) {
  return { run_id: 'r1', thread_id: 't1', epoch: 'e1', seq, ns: [], time: 0, type, ...extra };
}
