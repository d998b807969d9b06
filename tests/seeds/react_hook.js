// Seed: langgraph-sse-streaming-patterns.ko.md, section 6.2 "React Hook 예시".
// Turned from TypeScript to JavaScript (the type arguments and annotations removed), and
// nothing else. tests/browser/seed_bundle.mjs bundles it with React (`useState` from
// 'react') for tests/browser/seeds.mjs.
function useChatStream() {
  const [messages, setMessages] = useState([]);
  const [status, setStatus] = useState('idle');
  const [currentAnswer, setCurrentAnswer] = useState('');

  const sendMessage = async (message, imageUrl) => {
    setStatus('loading');
    setCurrentAnswer('');

    const response = await fetch('/api/v1/chat/messages', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ message, image_url: imageUrl }),
    });

    const { job_id } = await response.json();

    const eventSource = new EventSource(`/api/v1/chat/${job_id}/events`);

    eventSource.addEventListener('progress', (e) => {
      const { stage, status: progressStatus } = JSON.parse(e.data);
      if (stage === 'answer' && progressStatus === 'started') {
        setStatus('streaming');
      }
    });

    eventSource.addEventListener('delta', (e) => {
      const { content } = JSON.parse(e.data);
      setCurrentAnswer(prev => prev + content);
    });

    eventSource.addEventListener('done', () => {
      setStatus('done');
      setMessages(prev => [...prev, currentAnswer]);
      eventSource.close();
    });

    eventSource.onerror = () => {
      setStatus('idle');
      eventSource.close();
    };
  };

  return { messages, status, currentAnswer, sendMessage };
}
