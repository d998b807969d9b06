// Seed: langgraph-rest-vs-websocket.ko.md, section 3.4, "클라이언트 측 코드" (client.ts).
// TypeScript with no types to remove: JavaScript as it is, and nothing else changed but
// comments the document's line wrapping broke in two, one line again. It still
// connects to ws://localhost:8080, which tests/node/seed_websocket.mjs maps to the edge.
const socket = new WebSocket('ws://localhost:8080');

socket.onopen = () => {
console.log('Connected to WebSocket server');
};

function sendPrompt(prompt) {
if (socket.readyState === WebSocket.OPEN) {
const payload = {
input: prompt,
thread_id: 'some-unique-session-id' // Manage session ID
};
socket.send(JSON.stringify(payload));
}
}

socket.onmessage = (event) => {
const chunk = JSON.parse(event.data);

if (chunk.event === 'end') {
console.log('Stream finished.');
return;
}

if (chunk.messages) { // From 'messages' streamMode
// This is an AIMessageChunk, update the chat UI
// Example: updateChatWindow(chunk.messages.content);
console.log('Message chunk:', chunk.messages.content);
} else if (Object.keys(chunk)!== 'messages') { // From 'updates' streamMode
// This is a node update, update the status UI
// Example: updateStatusPanel(`Running node: ${Object.keys(chunk)}`);
console.log('Update chunk:', chunk);
}
};

socket.onclose = () => {
console.log('Disconnected from WebSocket server');
};
