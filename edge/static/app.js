// @ts-check
// The demo page: a chat with the `demo` graph over glassbox.js, with the agent's path, its
// state, approvals and the connection in view. `?transport=sse` forces the SSE fallback.

import { DEFAULT_STREAM_MODES, GlassboxClient } from './glassbox.js';

const GRAPH = 'demo';
// The agent's path shows each node as it starts and ends: the tasks mode, on top of the default.
const STREAM_MODES = /** @type {import('./glassbox').StreamMode[]} */ ([...DEFAULT_STREAM_MODES, 'tasks']);
const PRIORITIES = ['low', 'normal', 'high'];

const query = new URLSearchParams(location.search);
const transport = /** @type {'auto' | 'websocket' | 'sse'} */ (query.get('transport') || 'auto');
const gb = new GlassboxClient({ transport });

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ui = {
  conn: $('conn'),
  scroller: $('scroller'),
  messages: $('messages'),
  empty: $('empty'),
  composer: /** @type {HTMLFormElement} */ ($('composer')),
  input: /** @type {HTMLTextAreaElement} */ ($('input')),
  send: /** @type {HTMLButtonElement} */ ($('send')),
  stop: /** @type {HTMLButtonElement} */ ($('stop')),
  threadLabel: $('thread-label'),
  path: $('path'),
  timeline: $('timeline'),
  activityEmpty: $('activity-empty'),
  stateMeta: $('state-meta'),
  stateTree: $('state-tree'),
  stateEmpty: $('state-empty'),
};

/**
 * What the page did, for people poking at it from the console and for the browser tests:
 * per run the seqs delivered to the page, in order, and the text rendered per message.
 */
const demo = {
  client: gb,
  threadId: '',
  /** @type {Array<{runId: string, threadId: string, seqs: number[], status: string, resyncs: number, stats: object}>} */
  runs: [],
  /** @type {string[]} */
  connection: [],
  mismatches: 0,
  /** @type {import('./glassbox').Run | null} */
  active: null,
  pendingApproval: false,
};
Object.assign(window, { glassboxDemo: demo });

// -- little DOM helpers ------------------------------------------------------------------

/**
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {Array<Node | string | null | undefined | false>} children
 */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== 'string') /** @type {any} */ (node)[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

const LOGO = () => {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 20 20');
  svg.innerHTML = '<rect x="4" y="4" width="12" height="12" rx="3"/>';
  return svg;
};

/** @param {unknown} value */
const pretty = (value) => (typeof value === 'string' ? value : JSON.stringify(value, null, 2));
/** @param {string} text @param {number} n */
const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
/** @param {string} id */
const shortId = (id) => (id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id);

function nearBottom() {
  const s = ui.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
}
/** @param {boolean} [force] */
function stick(force) {
  if (force || stickToBottom) ui.scroller.scrollTop = ui.scroller.scrollHeight;
}
let stickToBottom = true;
ui.scroller.addEventListener('scroll', () => { stickToBottom = nearBottom(); });

// -- connection indicator ----------------------------------------------------------------

gb.on('state', (/** @type {import('./glassbox').StateChange} */ change) => {
  demo.connection.push(change.state);
  ui.conn.dataset.state = change.state;
  const label = /** @type {HTMLElement} */ (ui.conn.querySelector('.conn-label'));
  const via = change.transport === 'sse' ? 'SSE' : 'WebSocket';
  if (change.state === 'open') {
    label.replaceChildren('Live', h('span', { class: 'conn-transport', text: ` · ${via}` }));
    ui.conn.title = `Connected over ${via}`;
  } else if (change.state === 'reconnecting') {
    const seconds = Math.ceil((change.delayMs ?? 0) / 1000);
    label.textContent = seconds >= 2 ? `Reconnecting in ${seconds}s` : 'Reconnecting…';
    ui.conn.title = `Connection lost${change.code ? ` (code ${change.code})` : ''}; retrying by itself`;
  } else if (change.state === 'closed') {
    label.textContent = 'Offline';
    ui.conn.title = change.reason || 'Not connected';
  } else {
    label.textContent = 'Connecting…';
    ui.conn.title = '';
  }
});

// -- views (phone: one pane at a time; desktop: chat + one side panel) -----------------------

/** @param {string} view */
function showView(view) {
  document.body.dataset.view = view;
  for (const button of document.querySelectorAll('.tabs button')) {
    const b = /** @type {HTMLElement} */ (button);
    const pressed = b.dataset.view === view || (view === 'chat' && b.closest('.tabs-side') && b.dataset.view === 'activity');
    b.setAttribute('aria-pressed', String(Boolean(pressed)));
  }
  if (view === 'activity') document.querySelector('.tab-dot')?.setAttribute('hidden', '');
  if (view === 'state') refreshState();
}
for (const button of document.querySelectorAll('.tabs button')) {
  button.addEventListener('click', () => showView(/** @type {HTMLElement} */ (button).dataset.view ?? 'chat'));
}
function flagActivity() {
  if (document.body.dataset.view === 'chat' && matchMedia('(max-width: 760px)').matches) {
    document.querySelector('.tab-dot')?.removeAttribute('hidden');
  }
}

// -- a turn of the agent: steps, streamed text, approvals, sources -------------------------

class Turn {
  constructor() {
    this.steps = h('div', { class: 'steps' });
    this.body = h('div', { class: 'agent-body' }, this.steps);
    this.node = h('div', { class: 'msg-agent' }, h('div', { class: 'avatar' }, LOGO()), this.body);
    /** @type {Map<string, HTMLElement>} */
    this.texts = new Map();
    /** @type {Map<string, HTMLElement>} */
    this.stepEls = new Map();
    /** @type {HTMLElement | null} */
    this.sourcesEl = null;
    /** the tool call that progress events belong to */
    this.lastTool = '';
    /** after a resync: texts began mid-message, so the complete message replaces them */
    this.partial = false;
    ui.messages.append(this.node);
    stick(true);
  }

  /** Steps from here on go below what the turn shows so far (a resumed run continues it). */
  segment() {
    if (this.body.lastElementChild === this.steps || this.body.lastElementChild === this.sourcesEl && this.sourcesEl?.previousElementSibling === this.steps) return;
    this.steps = h('div', { class: 'steps' });
    this.body.insertBefore(this.steps, this.sourcesEl);
  }

  /**
   * A text block per message id, in the order messages started; a `saved` one came whole
   * from the thread's state, and a replay of its tokens leaves it be.
   * @param {string} messageId @param {string} [saved]
   */
  textFor(messageId, saved) {
    let el = this.texts.get(messageId);
    if (!el) {
      el = h('div', { class: 'text', 'data-message-id': messageId, 'data-saved': saved === undefined ? null : '' });
      if (saved !== undefined) el.textContent = saved;
      this.texts.set(messageId, el);
      this.body.insertBefore(el, this.sourcesEl);
    }
    return el;
  }

  /** @param {string} messageId @param {string} token */
  token(messageId, token) {
    const el = this.textFor(messageId);
    if (el.dataset.saved !== undefined) return;
    el.classList.add('streaming');
    el.append(token);
    stick();
  }

  /** @param {string} messageId @param {unknown} content */
  complete(messageId, content) {
    const text = typeof content === 'string' ? content : '';
    const el = this.texts.get(messageId);
    if (el?.dataset.saved !== undefined) return;
    if (el) {
      el.classList.remove('streaming');
      if (this.partial) el.textContent = text;
      else if (el.textContent !== text) demo.mismatches += 1; // a lost or doubled token
    } else if (text) {
      this.textFor(messageId).textContent = text;
    }
  }

  /** The run stopped (ended, paused, failed): no caret, no spinner. @param {boolean} [failed] */
  settle(failed = false) {
    for (const el of this.texts.values()) el.classList.remove('streaming');
    for (const el of this.stepEls.values()) if (el.dataset.state === 'active') el.dataset.state = failed ? 'failed' : 'done';
  }

  /** @param {string} key @param {'active' | 'done' | 'failed' | 'waiting'} state @param {string} label */
  step(key, state, label) {
    let el = this.stepEls.get(key);
    if (!el) {
      el = h('div', { class: 'step' }, h('span', { class: 'step-icon' }), h('span', { class: 'step-text' }));
      this.stepEls.set(key, el);
      this.steps.append(el);
    }
    el.dataset.state = state;
    if (label) /** @type {HTMLElement} */ (el.querySelector('.step-text')).textContent = label;
    stick();
  }

  /** @param {string} key */
  dropStep(key) {
    this.stepEls.get(key)?.remove();
    this.stepEls.delete(key);
  }

  /** @param {Array<{title: string, url: string, content: string, score: number}>} sources */
  sources(sources) {
    if (!Array.isArray(sources) || !sources.length) return;
    const grid = h(
      'div',
      { class: 'sources' },
      h('div', { class: 'sources-label', text: `Sources · ${sources.length}` }),
      ...sources.map((source, i) =>
        h(
          'a',
          { class: 'source', href: source.url, target: '_blank', rel: 'noreferrer' },
          h('div', { class: 'source-top' }, h('span', { class: 'source-n', text: String(i + 1) }), h('span', { class: 'source-title', text: source.title })),
          h('div', { class: 'source-excerpt', text: source.content }),
          h(
            'div',
            { class: 'source-foot' },
            h('span', { class: 'source-url', text: source.url.replace(/^https?:\/\//, '') }),
            h('span', { class: 'score', title: `relevance ${Math.round((source.score ?? 0) * 100)}%` }, h('span', { style: `width:${Math.round(Math.min(source.score ?? 0, 1) * 100)}%` })),
          ),
        ),
      ),
    );
    if (this.sourcesEl) this.sourcesEl.replaceWith(grid);
    else this.body.append(grid);
    this.sourcesEl = grid;
    stick();
  }

  /** @param {string} text @param {'error' | 'info' | ''} [kind] */
  note(text, kind = '') {
    this.body.insertBefore(h('div', { class: `note ${kind ? `note-${kind}` : ''}`, text }), this.sourcesEl);
    stick();
  }
}

// -- the approval card -------------------------------------------------------------------

/**
 * @param {Turn} turn
 * @param {{interrupt_id: string, value: any}} interrupt
 * @param {string} threadId
 */
function approvalCard(turn, interrupt, threadId) {
  const shown = turn.body.querySelector(`.approval[data-interrupt-id="${CSS.escape(interrupt.interrupt_id)}"]`);
  if (shown) return shown; // a replay of a pause already on screen
  const value = interrupt.value ?? {};
  const args = value.args ?? {};
  const isTicket = value.action === 'file_ticket';
  const card = h('div', { class: 'approval', 'data-state': 'pending', 'data-interrupt-id': interrupt.interrupt_id });
  const head = h(
    'div',
    { class: 'approval-head' },
    h('span', { class: 'badge', text: 'Approval needed' }),
    h('span', { class: 'approval-tool', text: value.action ?? 'interrupt' }),
  );
  const question = h('p', { class: 'approval-question', text: value.question ?? 'The agent is waiting for your answer.' });
  const details = isTicket
    ? h(
        'dl',
        { class: 'ticket' },
        h('dt', { text: 'Title' }),
        h('dd', { class: 'ticket-title', text: args.title ?? '' }),
        h('dt', { text: 'Priority' }),
        h('dd', {}, h('span', { class: `prio prio-${args.priority}`, text: args.priority ?? 'normal' })),
        h('dt', { text: 'Details' }),
        h('dd', { class: 'ticket-body', text: args.body ?? '' }),
      )
    : h('div', { class: 'kv' }, h('pre', { text: pretty(value) }));
  const error = value.error ? h('p', { class: 'approval-error', text: value.error }) : null;
  const actions = h('div', { class: 'approval-actions' });
  card.append(head, question, details);
  if (error) card.append(error);
  card.append(actions);

  /** @param {any} answer @param {'approved' | 'edited' | 'rejected'} state @param {string} summary */
  const decide = (answer, state, summary) => {
    card.dataset.state = state;
    /** @type {HTMLElement} */ (head.firstChild).textContent =
      state === 'rejected' ? 'Rejected' : state === 'edited' ? 'Approved with edits' : 'Approved';
    for (const el of card.querySelectorAll('.edit-form, .approval-actions, .approval-error')) el.remove();
    card.append(h('p', { class: 'approval-result', text: summary }));
    demo.pendingApproval = false;
    turn.dropStep('approval');
    const run = gb.resume({ threadId, answers: { [interrupt.interrupt_id]: answer }, streamModes: STREAM_MODES });
    follow(run, turn);
  };

  const buttons = () => {
    actions.replaceChildren(
      h('button', { class: 'btn btn-primary', type: 'button', 'data-action': 'approve', text: 'Approve', onclick: () => decide({ decision: 'approve' }, 'approved', isTicket ? 'You approved filing this ticket.' : 'You approved.') }),
      h('button', { class: 'btn btn-quiet', type: 'button', 'data-action': 'edit', text: 'Edit', onclick: edit }),
      h('button', { class: 'btn btn-danger', type: 'button', 'data-action': 'reject', text: 'Reject', onclick: reject }),
    );
  };

  const edit = () => {
    let form;
    if (isTicket) {
      const title = h('input', { name: 'title', value: args.title ?? '', required: true });
      const priority = h('select', { name: 'priority' }, ...PRIORITIES.map((p) => h('option', { value: p, text: p, selected: p === args.priority })));
      const body = h('textarea', { name: 'body', rows: '3', text: args.body ?? '' });
      form = h(
        'form',
        { class: 'edit-form' },
        h('div', { class: 'edit-row' }, h('label', { class: 'field' }, 'Title', title), h('label', { class: 'field' }, 'Priority', priority)),
        h('label', { class: 'field' }, 'Details', body),
      );
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        const edited = {
          title: /** @type {HTMLInputElement} */ (title).value.trim(),
          priority: /** @type {HTMLSelectElement} */ (priority).value,
          body: /** @type {HTMLTextAreaElement} */ (body).value.trim(),
        };
        const changed = Object.fromEntries(Object.entries(edited).filter(([k, v]) => v !== args[k]));
        const names = Object.keys(changed).map((k) => (k === 'body' ? 'details' : k));
        const summary = names.length
          ? `You changed the ${names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names[0]}, then approved.`
          : 'You approved it unchanged.';
        decide({ decision: 'edit', args: changed }, 'edited', summary);
      });
    } else {
      const answer = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'json-answer', rows: '4', text: pretty(value) }));
      form = h('form', { class: 'edit-form' }, h('label', { class: 'field' }, 'Answer (JSON)', answer));
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        let parsed;
        try {
          parsed = JSON.parse(answer.value);
        } catch {
          answer.setCustomValidity('not valid JSON');
          answer.reportValidity();
          return;
        }
        decide(parsed, 'edited', 'You answered.');
      });
    }
    details.replaceWith(form);
    actions.replaceChildren(
      h('button', { class: 'btn btn-primary', type: 'button', 'data-action': 'save', text: 'Save and approve', onclick: () => /** @type {HTMLFormElement} */ (form).requestSubmit() }),
      h('button', { class: 'btn btn-quiet', type: 'button', text: 'Cancel', onclick: () => { form.replaceWith(details); buttons(); } }),
    );
    /** @type {HTMLElement | null} */ (form.querySelector('input, textarea'))?.focus();
  };

  const reject = () => {
    const reason = h('input', { name: 'reason', placeholder: 'Why not? (optional)' });
    const form = /** @type {HTMLFormElement} */ (h('form', { class: 'edit-form' }, h('label', { class: 'field' }, 'Reason', reason)));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const why = /** @type {HTMLInputElement} */ (reason).value.trim();
      decide({ decision: 'reject', reason: why || 'no reason given' }, 'rejected', why ? `You rejected it: ${why}` : 'You rejected it.');
    });
    actions.before(form);
    actions.replaceChildren(
      h('button', { class: 'btn btn-danger', type: 'button', 'data-action': 'confirm-reject', text: 'Reject', onclick: () => form.requestSubmit() }),
      h('button', { class: 'btn btn-quiet', type: 'button', text: 'Cancel', onclick: () => { form.remove(); buttons(); } }),
    );
    reason.focus();
  };

  buttons();
  turn.body.insertBefore(card, turn.sourcesEl);
  turn.step('approval', 'waiting', 'Waiting for your approval');
  demo.pendingApproval = true;
  updateComposer();
  stick(true);
  return card;
}

// -- the agent path panel ----------------------------------------------------------------

const activity = {
  t0: 0,
  /** @type {Map<string, {el: HTMLElement, chip: HTMLElement, started: number, name: string}>} node runs by task id */
  tasks: new Map(),
  /** @type {Map<string, {el: HTMLElement, progress: HTMLElement}>} */
  tools: new Map(),
  currentTool: '',

  clear() {
    ui.timeline.replaceChildren();
    ui.path.replaceChildren();
    this.tasks.clear();
    this.tools.clear();
    this.currentTool = '';
    ui.activityEmpty.hidden = false;
  },

  /** @param {number} time */
  stamp(time) {
    return `+${((time - this.t0) / 1000).toFixed(2)}s`;
  },

  /** The entry of the node running now (tool calls and updates nest under it). @param {string} [name] */
  node(name) {
    const running = [...this.tasks.values()].filter((t) => !name || t.name === name);
    return running.at(-1)?.el.querySelector('.tl-children') ?? ui.timeline;
  },

  /**
   * @param {string} kind @param {string | Node} title @param {string} time
   * @param {Array<Node | null>} [extra] @param {string} [state] @param {Element} [parent]
   */
  add(kind, title, time, extra = [], state = '', parent = ui.timeline) {
    ui.activityEmpty.hidden = true;
    const el = h(
      'li',
      { class: 'tl', 'data-kind': kind, 'data-state': state || null },
      h('span', { class: 'tl-dot' }),
      h('div', { class: 'tl-head' }, h('span', { class: 'tl-title' }, title), h('span', { class: 'tl-time', text: time })),
      ...extra,
    );
    parent.append(el);
    el.scrollIntoView({ block: 'nearest' });
    flagActivity();
    return el;
  },

  /** @param {any} e */
  event(e) {
    switch (e.type) {
      case 'run_started':
        this.t0 = e.time;
        this.tasks.clear();
        ui.path.replaceChildren();
        this.add('run', e.resumed ? 'Run resumed' : 'Run started', new Date(e.time).toLocaleTimeString(), [h('div', { class: 'tl-sub' }, h('code', { text: shortId(e.run_id) }), e.resumed ? ' · continues from the checkpoint' : '')]);
        break;
      case 'task': {
        const entry = this.tasks.get(e.task_id);
        if (!e.finished) {
          if (ui.path.childElementCount) ui.path.append(h('span', { class: 'path-arrow', text: '→' }));
          const chip = h('span', { class: 'node-chip', 'data-state': 'active', text: e.name });
          ui.path.append(chip);
          const el = this.add('node', h('code', { text: e.name }), this.stamp(e.time), [h('div', { class: 'tl-sub', text: 'running…' }), h('ol', { class: 'tl-children' })], 'active');
          this.tasks.set(e.task_id, { el, chip, started: e.time, name: e.name });
        } else if (entry) {
          entry.el.dataset.state = e.error ? 'failed' : 'done';
          entry.chip.dataset.state = e.error ? 'failed' : 'done';
          const took = `${((e.time - entry.started) / 1000).toFixed(2)}s`;
          /** @type {HTMLElement} */ (entry.el.querySelector('.tl-sub')).textContent = e.error ? `failed after ${took}: ${e.error}` : `took ${took}`;
        }
        break;
      }
      case 'updates': {
        const keys = e.update && typeof e.update === 'object' ? Object.keys(e.update) : [];
        if (keys.length) this.node(e.node).append(h('li', { class: 'tl-note', text: `updated ${keys.join(', ')}` }));
        break;
      }
      case 'tool_call':
        this.tool(e);
        break;
      case 'custom': {
        const data = e.data ?? {};
        const tool = this.tools.get(this.currentTool);
        const text = typeof data.message === 'string' ? data.message : pretty(data);
        if (tool) tool.progress.append(h('li', { text }));
        else this.add('custom', text, this.stamp(e.time), [], '', this.node());
        break;
      }
      case 'interrupt':
        for (const chip of ui.path.querySelectorAll('.node-chip')) if (chip.textContent === e.node) /** @type {HTMLElement} */ (chip).dataset.state = 'paused';
        this.add('interrupt', h('span', {}, 'Paused in ', h('code', { text: e.node })), this.stamp(e.time), [kv('asks', e.value)]);
        break;
      case 'error':
        this.add('end', `Error ${e.code}`, this.stamp(e.time), [h('div', { class: 'tl-sub', text: e.message })], 'error');
        break;
      case 'run_ended':
        for (const chip of ui.path.querySelectorAll('.node-chip[data-state="active"]')) /** @type {HTMLElement} */ (chip).dataset.state = 'done';
        this.add('end', `Run ended · ${e.status}`, this.stamp(e.time), e.error?.message ? [h('div', { class: 'tl-sub', text: e.error.message })] : [], e.status);
        break;
      default:
    }
  },

  /** @param {any} e */
  tool(e) {
    if (e.phase === 'args_delta') return; // `started` carries the whole input
    let tool = this.tools.get(e.tool_call_id);
    if (!tool) {
      const progress = h('ul', { class: 'tl-progress' });
      const el = this.add('tool', h('span', {}, 'Tool ', h('code', { text: e.name || 'tool' })), this.stamp(e.time), [kv('args', e.args), progress], 'active', this.node('tools'));
      tool = { el, progress };
      this.tools.set(e.tool_call_id, tool);
    }
    if (e.phase === 'started') this.currentTool = e.tool_call_id;
    if (e.phase === 'finished' || e.phase === 'failed') {
      tool.el.dataset.state = e.phase === 'failed' ? 'failed' : 'done';
      tool.el.append(kv(e.phase === 'failed' ? 'error' : 'result', e.phase === 'failed' ? e.error : e.result?.content ?? e.result));
      if (this.currentTool === e.tool_call_id) this.currentTool = '';
    }
  },
};

/** @param {string} label @param {unknown} value */
function kv(label, value) {
  return h('div', { class: 'kv' }, h('div', { class: 'kv-label', text: label }), h('pre', { text: clip(pretty(value ?? null), 600) }));
}

// -- the state inspector -----------------------------------------------------------------

let stateLoads = 0;
async function refreshState() {
  const threadId = demo.threadId;
  const ticket = ++stateLoads;
  if (!threadId) {
    renderState(null);
    return;
  }
  try {
    const state = await gb.getState(threadId);
    if (ticket === stateLoads && threadId === demo.threadId) renderState(state);
  } catch (err) {
    if (ticket === stateLoads) renderState(null, /** @type {any} */ (err).code === 'THREAD_NOT_FOUND' ? '' : String(err));
  }
}

/** @param {any} state @param {string} [problem] */
function renderState(state, problem = '') {
  ui.stateEmpty.hidden = Boolean(state);
  ui.stateEmpty.textContent = problem || (demo.threadId ? 'Nothing is saved for this thread yet: send a message.' : 'Start a conversation to see its state.');
  if (!state) {
    ui.stateMeta.replaceChildren();
    ui.stateTree.replaceChildren();
    return;
  }
  /** @type {Array<[string, string]>} */
  const rows = [
    ['thread', demo.threadId],
    ['checkpoint', state.checkpoint_id || '–'],
    ['step', String(state.metadata?.step ?? '–')],
    ['next', state.next?.length ? state.next.join(', ') : '–'],
    ['paused at', pausedAt(state.interrupts ?? []) || '–'],
  ];
  ui.stateMeta.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v, title: v })]));
  ui.stateTree.replaceChildren(tree(state.values, 'values', 0));
}

/** Where the thread waits; mid-run the state names the running node as a breakpoint. @param {any[]} interrupts */
function pausedAt(interrupts) {
  return interrupts.filter((i) => i.kind === 'interrupt' || !demo.active).map((i) => i.node).join(', ');
}

/** @param {unknown} value @param {string | number} key @param {number} depth @returns {Node} */
function tree(value, key, depth) {
  const label = h('span', { class: 'k', text: String(key) });
  if (value && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    if (!entries.length) return h('div', { class: 'row' }, label, ': ', h('span', { class: 'z', text: Array.isArray(value) ? '[]' : '{}' }));
    const v = /** @type {any} */ (value);
    const hint = Array.isArray(value)
      ? `[${entries.length}]`
      : v.type && typeof v.content === 'string'
        ? `${v.type}${v.content ? ` · ${clip(JSON.stringify(v.content), 48)}` : v.tool_calls?.length ? ` · calls ${v.tool_calls.map((/** @type {any} */ c) => c.name).join(', ')}` : ''}`
        : `{${entries.length}}`;
    return h(
      'details',
      { open: depth < 2 },
      h('summary', {}, label, ' ', h('span', { class: 'count', text: hint })),
      ...entries.map(([k, child]) => tree(child, k, depth + 1)),
    );
  }
  const cls = typeof value === 'string' ? 's' : typeof value === 'number' ? 'n' : typeof value === 'boolean' ? 'b' : 'z';
  return h('div', { class: 'row' }, label, ': ', h('span', { class: cls, text: typeof value === 'string' ? JSON.stringify(value) : String(value) }));
}

// -- runs --------------------------------------------------------------------------------

/**
 * Render a run's events into a turn and the panels.
 * @param {import('./glassbox').Run} run @param {Turn} turn
 */
function follow(run, turn) {
  const record = { runId: run.runId, threadId: run.threadId, seqs: /** @type {number[]} */ ([]), status: 'running', resyncs: 0, stats: run.stats };
  demo.runs.push(record);
  demo.active = run;
  turn.segment();
  updateComposer();
  /** @type {Map<string, string>} tool call id → name */
  const toolNames = new Map();

  run.on('accepted', (/** @type {{runId: string}} */ ids) => { record.runId = ids.runId; });
  run.on('event', (/** @type {any} */ e) => {
    record.seqs.push(e.seq);
    activity.event(e);
    switch (e.type) {
      case 'message_delta':
        turn.token(e.message_id, e.token);
        break;
      case 'message_complete':
        if (e.role === 'ai') turn.complete(e.message_id, e.message?.content);
        break;
      case 'tool_call': {
        if (e.name) toolNames.set(e.tool_call_id, e.name);
        const name = toolNames.get(e.tool_call_id) ?? 'tool';
        if (e.phase === 'args_delta' && !turn.stepEls.has(e.tool_call_id)) turn.step(e.tool_call_id, 'active', `Preparing ${name}…`);
        if (e.phase === 'started') turn.step(e.tool_call_id, 'active', name === 'search_docs' ? `Searching the docs for “${e.args?.query ?? ''}”` : `Running ${name}…`);
        if (e.phase === 'finished') {
          const artifact = e.result?.artifact;
          if (name === 'search_docs' && Array.isArray(artifact)) turn.sources(artifact);
          const label = /** @type {HTMLElement | undefined} */ (turn.stepEls.get(e.tool_call_id)?.querySelector('.step-text'))?.textContent ?? '';
          turn.step(e.tool_call_id, 'done', label);
        }
        if (e.phase === 'failed') turn.step(e.tool_call_id, 'failed', `${name} failed: ${e.error}`);
        turn.lastTool = e.phase === 'started' ? e.tool_call_id : turn.lastTool;
        break;
      }
      case 'custom':
        if (e.data?.message && turn.lastTool) turn.step(turn.lastTool, turn.stepEls.get(turn.lastTool)?.dataset.state === 'done' ? 'done' : 'active', e.data.message);
        break;
      case 'updates':
        if (Array.isArray(e.update?.sources)) turn.sources(e.update.sources);
        break;
      case 'interrupt':
        // A drafted tool call waits for the person: the card below says so, not a spinner.
        for (const [key, el] of [...turn.stepEls]) if (el.dataset.state === 'active') turn.dropStep(key);
        approvalCard(turn, e, run.threadId);
        break;
      case 'error':
        turn.note(`${e.message}`, 'error');
        break;
      default:
    }
  });
  run.on('resync', (/** @type {import('./glassbox').Resync} */ resync) => {
    // The server could not replay what we missed: show the saved conversation, then go on.
    record.resyncs += 1;
    // The run goes on in the last turn of the saved conversation; the message in flight
    // started before the gap, so its complete text replaces what streams of it.
    turn = (resync.state && renderHistory(resync.state, { paused: false })) || new Turn();
    turn.partial = true;
    turn.note('You were away longer than the server keeps a run’s events, so the conversation was reloaded from its saved state.', 'info');
    activity.add('resync', 'Reloaded the saved state', new Date().toLocaleTimeString(), [h('div', { class: 'tl-sub', text: 'the event log could not fill the gap' })]);
  });
  run.done.then(
    (ended) => {
      record.status = ended.status;
      turn.settle(ended.status === 'error');
      if (ended.status === 'cancelled') turn.note('Stopped.');
      if (ended.status === 'error') turn.note(ended.error?.message ?? 'The run failed.', 'error');
    },
    (err) => {
      record.status = 'failed';
      turn.settle(true);
      turn.note(`${err.message}${err.hint ? ` ${err.hint}` : ''}`, 'error');
    },
  ).finally(() => {
    if (demo.active === run) demo.active = null;
    updateComposer();
    refreshState();
  });
  return run;
}

/** @param {string} text */
function ask(text) {
  const question = text.trim();
  if (!question || demo.active || demo.pendingApproval) return;
  ui.empty.hidden = true;
  ui.messages.append(h('div', { class: 'msg-user' }, h('div', { class: 'bubble', text: question })));
  const turn = new Turn();
  turn.step('thinking', 'active', 'Thinking…');
  const run = gb.run({
    graph: GRAPH,
    threadId: demo.threadId || undefined,
    input: { messages: [{ role: 'user', content: question }] },
    streamModes: STREAM_MODES,
  });
  run.once('event', () => turn.dropStep('thinking'));
  run.done.catch(() => turn.dropStep('thinking'));
  if (!demo.threadId) setThread(run.threadId);
  follow(run, turn);
}

function updateComposer() {
  const running = Boolean(demo.active);
  ui.send.hidden = running;
  ui.stop.hidden = !running;
  ui.input.disabled = demo.pendingApproval;
  ui.send.disabled = demo.pendingApproval;
  ui.input.placeholder = demo.pendingApproval
    ? 'Answer the approval above to continue'
    : 'Ask a question or request a ticket…';
}

// -- threads: one per URL hash, so two tabs can hold two conversations --------------------

function threadInHash() {
  const match = /thread=([^&]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : '';
}

/** @param {string} threadId */
function setThread(threadId) {
  demo.threadId = threadId;
  const url = threadId ? `#thread=${encodeURIComponent(threadId)}` : location.pathname + location.search;
  if (threadInHash() !== threadId) history.replaceState(null, '', url);
  ui.threadLabel.replaceChildren(
    ...(threadId ? ['Thread ', h('code', { text: shortId(threadId), title: threadId }), ' · kept in this page’s URL'] : ['New conversation']),
  );
}

/**
 * Show the conversation saved in a state (after a load or a resync). Its agent turn when the
 * conversation ends in one (a run still going carries on there), else null.
 * @param {any} state @param {{paused: boolean}} options paused: no run is going, so a
 *   breakpoint in the state is a real pause (mid-run the state lists the next node as one)
 * @returns {Turn | null}
 */
function renderHistory(state, { paused }) {
  ui.messages.replaceChildren(ui.empty);
  const messages = Array.isArray(state?.values?.messages) ? state.values.messages : [];
  ui.empty.hidden = messages.length > 0;
  /** @type {Turn | null} */
  let turn = null;
  for (const m of messages) {
    if (m.type === 'human') {
      ui.messages.append(h('div', { class: 'msg-user' }, h('div', { class: 'bubble', text: typeof m.content === 'string' ? m.content : pretty(m.content) })));
      turn = null;
      continue;
    }
    turn ??= new Turn();
    if (m.type === 'ai') {
      for (const call of m.tool_calls ?? []) turn.step(call.id, 'done', call.name === 'search_docs' ? `Searched the docs for “${call.args?.query ?? ''}”` : `Called ${call.name}`);
      if (typeof m.content === 'string' && m.content) turn.textFor(m.id, m.content);
    } else if (m.type === 'tool') {
      if (m.name === 'search_docs' && Array.isArray(m.artifact)) turn.sources(m.artifact);
      if (m.name === 'file_ticket') turn.step(m.tool_call_id, m.status === 'error' ? 'failed' : 'done', m.artifact?.id ? `Filed ${m.artifact.id}` : clip(String(m.content), 90));
    }
  }
  for (const interrupt of state?.interrupts ?? []) {
    if (interrupt.kind === 'interrupt' || paused) approvalCard((turn ??= new Turn()), interrupt, demo.threadId);
  }
  stick(true);
  return turn;
}

/** Open a thread (or a new conversation when threadId is ''). @param {string} threadId */
async function openThread(threadId) {
  demo.active = null;
  demo.pendingApproval = false;
  activity.clear();
  setThread(threadId);
  ui.messages.replaceChildren(ui.empty);
  ui.empty.hidden = false;
  updateComposer();
  renderState(null);
  if (!threadId) return;
  let state = null;
  try {
    state = await gb.getState(threadId);
  } catch (err) {
    if (/** @type {any} */ (err).code !== 'THREAD_NOT_FOUND') ui.messages.append(h('div', { class: 'note note-error', text: `Could not load the conversation: ${err}` }));
    return;
  }
  const thread = await gb.getThread(threadId).catch(() => null);
  if (demo.threadId !== threadId) return;
  const busy = thread?.status === 'busy';
  const last = renderHistory(state, { paused: !busy });
  renderState(state);
  if (!busy) return;
  // A run still going (reloaded mid-answer, or started in another tab): replay it from its
  // first event into the conversation's last turn; what the state holds already stays put.
  const { runs } = await gb.listRuns(threadId, { pageSize: 5 });
  const live = runs.find((r) => r.status === 'running' || r.status === 'pending');
  if (live && demo.threadId === threadId) follow(gb.join({ runId: live.run_id, threadId }), last ?? new Turn());
}

// -- wiring ------------------------------------------------------------------------------

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.input.value;
  if (!text.trim() || demo.active) return;
  ui.input.value = '';
  autosize();
  ask(text);
});
ui.input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});
function autosize() {
  ui.input.style.height = 'auto';
  if (!ui.input.value) return;
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 160)}px`;
}
ui.input.addEventListener('input', autosize);
ui.stop.addEventListener('click', () => demo.active?.cancel().catch(() => {}));
for (const button of document.querySelectorAll('.suggestion')) {
  button.addEventListener('click', () => ask(button.textContent ?? ''));
}
const startOver = (/** @type {Event} */ event) => {
  event.preventDefault();
  openThread('');
  ui.input.focus();
};
$('new-thread').addEventListener('click', startOver);
$('brand').addEventListener('click', startOver);
$('refresh-state').addEventListener('click', () => refreshState());
window.addEventListener('hashchange', () => {
  const threadId = threadInHash();
  if (threadId !== demo.threadId) openThread(threadId);
});

gb.connect();
openThread(threadInHash());
