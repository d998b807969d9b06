// Seed: langgraph-rest-vs-websocket.ko.md, section 2.2, "클라이언트 측 코드" (client.ts).
// Turned from TypeScript to JavaScript (`prompt: string` → `prompt`), and nothing else; a
// comment the document's line wrapping broke in two is one line again. It still calls
// http://localhost:8080, which tests/browser/seeds.mjs maps to the edge under test.
async function startAgent(prompt) {
const invokeResponse = await fetch('http://localhost:8080/invoke', {
method: 'POST',
headers: { 'Content-Type': 'application/json' },
body: JSON.stringify({ input: prompt }),
});

const { thread_id } = await invokeResponse.json();
console.log(`Agent started with thread_id: ${thread_id}`);

// Start polling for the result
const pollInterval = setInterval(async () => {
const stateResponse = await
fetch(`http://localhost:8080/state/${thread_id}`);

if (stateResponse.status === 200) {
const state = await stateResponse.json();
console.log('Current state:', state.values);

// Check for the end condition (e.g., the final message is present)
const finalMessage =
state.values.messages[state.values.messages.length - 1];
if (finalMessage.type === 'ai' && state.next.length === 0) { // Assuming empty 'next' means END
console.log('Agent finished. Final answer:', finalMessage.content);
clearInterval(pollInterval);
}
} else {
console.error('Polling failed.');
clearInterval(pollInterval);
}
}, 2000); // Poll every 2 seconds
}
