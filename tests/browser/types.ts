// glassbox.d.ts as an application sees it: compiled (never run) by `tsc -p tests/browser`.
import {
  DEFAULT_STREAM_MODES,
  GlassboxClient,
  GlassboxError,
  type RunEvent,
  type StreamMode,
  type ThreadState,
} from '../../edge/static/glassbox.js';

const gb = new GlassboxClient({ url: 'https://edge.example', token: async () => 'token' });
gb.on('state', ({ state, delayMs }) => console.log(state, delayMs ?? 0));

export async function chat(question: string): Promise<string> {
  const run = gb.run({
    graph: 'demo',
    input: { messages: [{ role: 'user', content: question }] },
    streamModes: [...DEFAULT_STREAM_MODES, 'values'] satisfies StreamMode[],
  });
  let text = '';
  run.on('message_delta', (event) => { text += event.token; });
  run.on('resync', ({ state }: { state: ThreadState | null }) => { text = ''; void state?.values; });
  for await (const event of run) {
    const e: RunEvent = event;
    if (e.type === 'tool_call' && e.phase === 'finished') console.log(e.tool_call_id, e.result);
    if (e.type === 'interrupt') {
      const next = run.resume({ [e.interrupt_id]: { decision: 'approve' } });
      const ended = await next.done;
      return ended.status;
    }
  }
  const ended = await run.done;
  if (ended.status === 'error') throw new GlassboxError(ended.error ?? { code: 'ERROR' });
  return text;
}

export async function stop(threadId: string, runId: string): Promise<string> {
  const record = await gb.cancel(runId, threadId);
  const state = await gb.getState(threadId);
  return `${record.status} at ${state.checkpoint_id}`;
}
