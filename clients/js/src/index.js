// @ts-check
/**
 * Glassbox browser client: run agents through a Glassbox edge and see every event of a
 * run exactly once, in order, across network drops. No dependencies.
 *
 *     import { GlassboxClient } from '/glassbox.js';
 *     const gb = new GlassboxClient({ url: 'https://edge.example', token });
 *     const run = gb.run({ graph: 'demo', input: { messages: [{ role: 'user', content: 'hi' }] } });
 *     for await (const event of run) if (event.type === 'message_delta') show(event.token);
 *
 * Transport: WebSocket /v1/ws (subprotocol glassbox.v1; the token travels as a
 * `bearer.<token>` subprotocol, never in the URL). Where WebSockets are missing or never
 * get through, SSE over fetch: POST …/runs/stream, then GET …/runs/{id}/stream with
 * Last-Event-ID. Either way a dropped connection is re-attached at the run's {epoch, seq}
 * cursor and anything at or below it is dropped, so the application sees no duplicate and
 * no gap. When the server can no longer fill a gap (recovered: false), the client reloads
 * the thread's state over REST and says so with a `resync` event.
 */

export { GlassboxClient, newId } from './client.js';
export { GlassboxError } from './errors.js';
export { Run } from './run.js';
export { PROTOCOL } from './websocket.js';
export * from './names.js';
export * from './types.js';
