// A chat page as an app built on the new useStream hook would be (@langchain/react: the v2
// Agent Streaming Protocol), talking to the Glassbox edge as its LangGraph server. Query:
// ?api=<edge URL>&key=<API key>[&thread=<id>][&transport=websocket]. The driver
// (tests/langgraph/v2_react.mjs) reads the DOM only.
//
// Over SSE (the default) the hook sends the key as x-api-key. Its WebSocket transport
// refuses any header (a browser cannot set one on a socket), so `transport: "websocket"`
// with an apiKey fails; the page gives the hook a WebSocket transport of its own that
// carries the key as the edge takes it from a browser, in Sec-WebSocket-Protocol. The
// REST calls (the thread's state on load) still send x-api-key.
import { useState } from 'react';
import { createRoot } from 'react-dom/client';
import { ProtocolWebSocketTransportAdapter } from '@langchain/langgraph-sdk';
import { useStream } from '@langchain/react';

const query = new URLSearchParams(window.location.search);
const transport =
  query.get('transport') === 'websocket'
    ? new ProtocolWebSocketTransportAdapter({
        apiUrl: query.get('api'),
        webSocketFactory: (url) => new WebSocket(url, ['glassbox.v1', `bearer.${query.get('key')}`]),
      })
    : undefined;

function text(message) {
  if (typeof message.content === 'string') return message.content;
  return message.content.map((block) => block.text ?? '').join('');
}

// The hook hands over @langchain/core message instances.
function kind(message) {
  return typeof message.getType === 'function' ? message.getType() : message.type;
}

function App() {
  const [threadId, setThreadId] = useState(query.get('thread'));
  const [draft, setDraft] = useState('');
  const stream = useStream({
    apiUrl: query.get('api'),
    apiKey: query.get('key'),
    assistantId: 'demo',
    messagesKey: 'messages',
    threadId,
    transport,
    onThreadId: (id) => {
      setThreadId(id);
      const url = new URL(window.location.href);
      url.searchParams.set('thread', id);
      window.history.replaceState(null, '', url);
    },
  });
  const send = (event) => {
    event.preventDefault();
    stream.submit({ messages: [{ type: 'human', content: draft }] });
    setDraft('');
  };
  return (
    <main>
      <div
        id="status"
        data-loading={String(stream.isLoading)}
        data-thread-loading={String(stream.isThreadLoading)}
        data-thread={stream.threadId ?? ''}
        data-error={stream.error ? String(stream.error?.message ?? stream.error) : ''}
      />
      <ol id="messages">
        {stream.messages.map((message) => (
          <li key={message.id} data-id={message.id} data-type={kind(message)}>
            {text(message)}
          </li>
        ))}
      </ol>
      {stream.interrupt && (
        <div id="interrupt" data-id={stream.interrupt.id} data-value={JSON.stringify(stream.interrupt.value)}>
          <button id="approve" type="button" onClick={() => stream.respond({ decision: 'approve' }, { interruptId: stream.interrupt.id })}>
            Approve
          </button>
        </div>
      )}
      <form onSubmit={send}>
        <input id="input" value={draft} onChange={(event) => setDraft(event.target.value)} />
        <button id="send" type="submit">Send</button>
      </form>
      <button id="stop" type="button" onClick={() => stream.stop()}>Stop</button>
    </main>
  );
}

createRoot(document.getElementById('root')).render(<App />);
