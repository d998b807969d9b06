// Seed: langgraph-sse-streaming-patterns.ko.md, section 6.1 "JavaScript EventSource".
// Copied as it stands (it is JavaScript already). tests/browser/seeds.mjs loads it as a
// classic script on the edge's origin and defines the UI functions it calls.
async function chatWithStreaming(message, imageUrl = null) {
  // 1. 메시지 전송
  const response = await fetch('/api/v1/chat/messages', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message, image_url: imageUrl }),
  });

  const { job_id } = await response.json();

  // 2. SSE 연결
  const eventSource = new EventSource(`/api/v1/chat/${job_id}/events`);

  // 진행 상황 이벤트
  eventSource.addEventListener('progress', (e) => {
    const { stage, status, message } = JSON.parse(e.data);
    updateProgressUI(stage, status, message);
  });

  // 토큰 스트리밍
  eventSource.addEventListener('delta', (e) => {
    const { content } = JSON.parse(e.data);
    appendToChat(content);  // 실시간 타이핑 효과
  });

  // 완료
  eventSource.addEventListener('done', (e) => {
    const result = JSON.parse(e.data);
    finalizeChatUI(result);
    eventSource.close();
  });

  // 에러
  eventSource.addEventListener('error', (e) => {
    if (e.data) {
      const { message } = JSON.parse(e.data);
      showError(message);
    }
    eventSource.close();
  });
}
