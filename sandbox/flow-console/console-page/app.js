// The flow console: recent A2A tasks, live, and the chosen task's sequence
// diagram, redrawn as its hops arrive. Everything shown comes from spans
// that any exporter could have sent, so the DOM is built from text only.

import { laneLabels, renderDiagram, renderHopDetails } from './diagram.js';
import { byTestId, controlRequests, el, readControlSecret, readPathMeta } from './page-kit.js';

const RECONNECT_DELAY_MS = 3000;
/** Bursts of span batches become one redraw. */
const REDRAW_DELAY_MS = 50;

const apiBase = readPathMeta('flow-console-api-base', '/api');
const secret = readControlSecret();
const { getJson } = controlRequests(secret);
const elements = {
  connection: byTestId('connection'),
  follow: /** @type {HTMLInputElement} */ (byTestId('follow')),
  status: byTestId('status-message'),
  taskList: byTestId('task-list'),
  tasksEmpty: byTestId('tasks-empty'),
  title: byTestId('task-title'),
  state: byTestId('task-state'),
  meta: byTestId('task-meta'),
  diagram: byTestId('diagram'),
  diagramEmpty: byTestId('diagram-empty'),
  details: byTestId('hop-details'),
};

/** Task summaries by id, as `GET /api/tasks` and the event stream give them. */
const tasks = new Map();
let selectedId = new URL(window.location.href).searchParams.get('task');
let detail = null;
let selectedSpanId = null;
/** Span ids already drawn for the selected task: only later ones fade in. */
let seen = new Set();
let detailLoading = false;
let detailStale = false;
let taskRedraw = 0;
let source = null;

function start() {
  elements.follow.checked = selectedId === null;
  elements.follow.addEventListener('change', () => {
    if (elements.follow.checked) followNewest();
  });
  elements.details.addEventListener('closed', () => {
    selectedSpanId = null;
    if (detail) drawDiagram();
  });
  loadTasks().then(() => {
    if (selectedId !== null) loadDetail();
    else followNewest();
  });
  connect();
}

// ---------------------------------------------------------------- tasks

function isSummary(value) {
  return typeof value === 'object' && value !== null && typeof value.id === 'string' && typeof value.startedAt === 'string';
}

async function loadTasks() {
  try {
    const body = await getJson(`${apiBase}/tasks`);
    tasks.clear();
    for (const task of Array.isArray(body?.tasks) ? body.tasks : []) if (isSummary(task)) tasks.set(task.id, task);
    announce('', 'info');
  } catch (error) {
    if (error instanceof Error && error.message === 'HTTP 403') {
      announce('This sandbox is exposed to the network: open the flow console from the link in its banner, which carries the access secret.', 'error');
    } else {
      announce('Could not load the tasks. Is the flow console running?', 'error');
    }
  }
  renderTasks();
}

function newestFirst() {
  return [...tasks.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
}

function scheduleTaskRedraw() {
  if (taskRedraw) return;
  taskRedraw = window.setTimeout(() => {
    taskRedraw = 0;
    renderTasks();
  }, REDRAW_DELAY_MS);
}

function timeOf(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour12: false });
}

function renderTasks() {
  const list = newestFirst();
  elements.tasksEmpty.hidden = list.length > 0;
  elements.taskList.replaceChildren(
    ...list.map((task) => {
      const state = typeof task.state === 'string' ? task.state : 'STARTED';
      const button = el('button', { className: 'task', testId: 'task' }, [
        el('span', { className: 'state-badge', testId: 'task-state-badge', text: state }),
        el('span', { className: 'task-employee', text: typeof task.employee === 'string' ? task.employee : 'employee not known yet' }),
        el('span', { className: 'task-time', text: `${timeOf(task.startedAt)} · ${Number(task.hopCount) || 0} hops` }),
      ]);
      button.type = 'button';
      button.dataset.taskId = task.id;
      button.dataset.state = state;
      if (task.id === selectedId) button.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => {
        elements.follow.checked = false;
        select(task.id);
      });
      return el('li', {}, [button]);
    }),
  );
}

function followNewest() {
  const newest = newestFirst()[0];
  if (newest && newest.id !== selectedId) select(newest.id);
}

function select(id) {
  if (id !== selectedId) {
    selectedId = id;
    detail = null;
    selectedSpanId = null;
    seen = new Set();
    elements.details.hidden = true;
    elements.details.replaceChildren();
  }
  const url = new URL(window.location.href);
  url.searchParams.set('task', id);
  window.history.replaceState(null, '', url);
  renderTasks();
  loadDetail();
}

// ---------------------------------------------------------------- one task

/** One request at a time; a change while one is in flight asks for another after it. */
async function loadDetail() {
  if (selectedId === null) return;
  if (detailLoading) {
    detailStale = true;
    return;
  }
  detailLoading = true;
  const id = selectedId;
  try {
    const body = await getJson(`${apiBase}/tasks/${encodeURIComponent(id)}`);
    if (id === selectedId && typeof body === 'object' && body !== null && Array.isArray(body.hops) && Array.isArray(body.participants)) {
      detail = body;
      drawDiagram();
    }
  } catch (error) {
    if (id === selectedId) {
      detail = null;
      showNoTask(error instanceof Error && error.message === 'HTTP 404' ? 'This task is no longer kept (the console keeps the most recent ones).' : 'Could not load this task.');
    }
  } finally {
    detailLoading = false;
    if (detailStale) {
      detailStale = false;
      loadDetail();
    }
  }
}

function showNoTask(message) {
  elements.title.textContent = 'No task chosen';
  elements.state.hidden = true;
  elements.meta.textContent = '';
  elements.diagram.replaceChildren();
  elements.diagramEmpty.textContent = message;
  elements.diagramEmpty.hidden = false;
}

function drawDiagram() {
  const { task, hops } = detail;
  elements.title.textContent = `Task ${task.id}`;
  elements.title.dataset.taskId = task.id;
  elements.state.hidden = typeof task.state !== 'string';
  elements.state.textContent = typeof task.state === 'string' ? task.state : '';
  elements.state.dataset.state = typeof task.state === 'string' ? task.state : '';
  const parts = [
    typeof task.employee === 'string' ? `employee ${task.employee}` : undefined,
    `started ${timeOf(task.startedAt)}`,
    `${hops.length} hops`,
    task.droppedHops > 0 ? `${task.droppedHops} earlier hops dropped` : undefined,
  ];
  elements.meta.textContent = parts.filter(Boolean).join(' · ');
  elements.diagramEmpty.hidden = true;
  const lanes = laneLabels(detail);
  renderDiagram(elements.diagram, detail, {
    selectedSpanId,
    seen,
    onSelect: (hop) => {
      selectedSpanId = hop.spanId;
      renderHopDetails(elements.details, hop, lanes);
      drawDiagram();
    },
  });
  for (const hop of hops) seen.add(hop.spanId);
}

// ---------------------------------------------------------------- live updates

function connect() {
  const url = new URL(`${apiBase}/events`, window.location.href);
  // EventSource sends no headers: an exposed console takes the secret in the query for this one route.
  if (secret) url.searchParams.set('secret', secret);
  setConnection('connecting', 'Connecting…');
  source = new EventSource(url);
  source.addEventListener('open', () => {
    setConnection('open', 'Live');
    // Whatever happened while the stream was down.
    loadTasks().then(() => {
      if (selectedId !== null) loadDetail();
      else if (elements.follow.checked) followNewest();
    });
  });
  source.addEventListener('task', (event) => {
    let task;
    try {
      task = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!isSummary(task)) return;
    const isNew = !tasks.has(task.id);
    tasks.set(task.id, task);
    scheduleTaskRedraw();
    if (isNew && elements.follow.checked) select(task.id);
    else if (task.id === selectedId) loadDetail();
  });
  source.addEventListener('removed', (event) => {
    let removed;
    try {
      removed = JSON.parse(event.data);
    } catch {
      return;
    }
    if (typeof removed?.id !== 'string') return;
    tasks.delete(removed.id);
    scheduleTaskRedraw();
    if (removed.id === selectedId) {
      if (typeof removed.mergedInto === 'string') select(removed.mergedInto);
      else loadDetail();
    }
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (403, 503): EventSource gives up; try again later ourselves.
      setConnection('reconnecting', 'Reconnecting…');
      source.close();
      window.setTimeout(connect, RECONNECT_DELAY_MS);
    } else {
      setConnection('reconnecting', 'Reconnecting…');
    }
  });
}

function setConnection(state, label) {
  elements.connection.dataset.state = state;
  elements.connection.textContent = label;
}

function announce(message, tone) {
  elements.status.dataset.tone = tone;
  elements.status.textContent = message;
  elements.status.hidden = message === '';
}

start();
