// Runs the seed's WebSocket client (tests/seeds/websocket_client.js) as it stands, in Node,
// against the edge: `node tests/node/seed_websocket.mjs ws://127.0.0.1:PORT`.
//
// The client's code runs in its own context whose WebSocket is Node's, with the seed's
// ws://localhost:8080 mapped to the edge given, and whose console is recorded. Like a
// person at its UI, this script then sends a prompt with the seed's sendPrompt, answers
// the pause it logs with sendPrompt again, and waits for "Stream finished.". It prints
// one JSON line: what the seed's client logged, in order.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const [, , edge, question, answerJson] = process.argv;
const SEED_SERVER = 'ws://localhost:8080';
const source = readFileSync(new URL('../seeds/websocket_client.js', import.meta.url), 'utf8');

const logs = [];
let notify = () => {};
const record = (level) => (...args) => {
  logs.push({ level, args: JSON.parse(JSON.stringify(args)) });
  notify();
};
class MappedWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(String(url).replace(SEED_SERVER, edge), protocols);
  }
}
const context = vm.createContext({
  WebSocket: MappedWebSocket,
  console: { log: record('log'), error: record('error') },
});
vm.runInContext(source, context, { filename: 'websocket_client.js' });

/** Resolve with the first log (from index `from`) that `test` accepts. */
function logged(test, from = 0, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; logs: ${JSON.stringify(logs)}`)), timeoutMs);
    const check = () => {
      const index = logs.findIndex((entry, i) => i >= from && test(entry));
      if (index >= 0) {
        clearTimeout(timer);
        notify = () => {};
        resolve(index);
      }
    };
    notify = check;
    check();
  });
}
const isPause = (e) => e.args[0] === 'Update chunk:' && e.args[1]?.type === 'human_input_required';

await logged((e) => e.args[0] === 'Connected to WebSocket server');
context.sendPrompt(question);
const paused = await logged((e) => isPause(e) || e.args[0] === 'Stream finished.');
if (isPause(logs[paused])) {
  context.sendPrompt(JSON.parse(answerJson));
  await logged((e) => e.args[0] === 'Stream finished.', paused);
}
vm.runInContext('socket.close()', context);
await logged((e) => e.args[0] === 'Disconnected from WebSocket server');
process.stdout.write(`${JSON.stringify({ logs })}\n`);
