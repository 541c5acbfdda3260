// The sequence diagram and a hop's details. Every string drawn here came
// from a span (labels, paths, claims, error messages): the DOM is built
// with createElement/textContent only, and layout values go through the
// CSSOM (custom properties), which the page's CSP allows, never a style attribute.

import { el } from './page-kit.js';

/** Claims shown first, in this order; the rest follow under "other claims". */
const KNOWN_CLAIMS = ['sub', 'aud', 'scope', 'azp', 'exp', 'iat', 'iss', 'gty', 'authorization_details'];
const HEADER_FIELDS = ['alg', 'kid', 'typ'];

export function formatOffset(ms) {
  return `+${(Number(ms) / 1000).toFixed(3)} s`;
}

export function formatDuration(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n)) return '';
  if (n < 10) return `${n.toFixed(1)} ms`;
  if (n < 1000) return `${Math.round(n)} ms`;
  return `${(n / 1000).toFixed(2)} s`;
}

function text(value) {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The lanes, left to right, with the employee's lane naming the channel the consent went by. */
export function laneLabels(detail) {
  return detail.participants.map((p) => {
    if (p.id !== 'employee') return { id: String(p.id), label: String(p.label) };
    const channel = detail.task.channel === 'email' ? 'email' : 'Guardian';
    return { id: 'employee', label: `${String(p.label)} (${channel})` };
  });
}

/**
 * Draws `detail` (from `GET /api/tasks/:id`) into `container`: lane heads, then
 * one row per hop in start order. Arrows not in `seen` are marked new, so they
 * fade in; `onSelect(hop)` is called when one is clicked.
 */
export function renderDiagram(container, detail, { selectedSpanId, seen, onSelect }) {
  const lanes = laneLabels(detail);
  const column = new Map(lanes.map((lane, i) => [lane.id, i]));
  container.replaceChildren();
  container.style.setProperty('--lanes', String(lanes.length));
  lanes.forEach((lane, i) => {
    const head = el('div', { className: 'lane-head', testId: 'lane', text: lane.label });
    head.dataset.lane = lane.id;
    head.style.setProperty('--column', String(i + 1));
    container.append(head);
  });
  detail.hops.forEach((hop, index) => {
    const from = column.get(hop.from);
    const to = column.get(hop.to);
    if (from === undefined || to === undefined) return;
    const first = Math.min(from, to);
    const span = Math.abs(to - from) + 1;
    const direction = from === to ? 'self' : to > from ? 'right' : 'left';
    // A CIBA wait's outcome is the employee's decision as the agent saw it: all there is of it in auth0 mode.
    const status = `${hop.status === undefined ? '' : ` · ${hop.status}`}${typeof hop.outcome === 'string' ? ` · ${text(hop.outcome)}` : ''}`;
    const button = el('button', { className: 'hop', testId: 'hop' }, [
      el('span', { className: 'hop-label', testId: 'hop-label', text: text(hop.label) }),
      el('span', { className: 'hop-line' }),
      el('span', { className: 'hop-timing', testId: 'hop-timing', text: `${formatOffset(hop.offsetMs)} · ${formatDuration(hop.durationMs)}${status}` }),
    ]);
    if (hop.taskState) button.append(el('span', { className: 'state-badge hop-state', testId: 'hop-state', text: text(hop.taskState) }));
    button.type = 'button';
    button.setAttribute('role', 'listitem');
    button.dataset.index = String(index);
    button.dataset.spanId = text(hop.spanId);
    button.dataset.from = text(hop.from);
    button.dataset.to = text(hop.to);
    button.dataset.direction = direction;
    button.dataset.outcome = hop.error ? 'error' : 'ok';
    if (hop.taskState) button.dataset.state = text(hop.taskState);
    if (!seen.has(hop.spanId)) button.classList.add('new');
    if (hop.spanId === selectedSpanId) button.setAttribute('aria-pressed', 'true');
    button.setAttribute('aria-label', `${lanes[from].label} to ${lanes[to].label}: ${text(hop.label)}, ${formatOffset(hop.offsetMs)}, ${formatDuration(hop.durationMs)}`);
    button.style.setProperty('--column', String(first + 1));
    button.style.setProperty('--span', String(span));
    button.style.setProperty('--row', String(index + 2));
    button.addEventListener('click', () => onSelect(hop));
    container.append(button);
  });
}

function row(list, label, value, field) {
  if (value === undefined || value === null || value === '') return;
  const dd = el('dd', { text: text(value) });
  dd.dataset.field = field;
  list.append(el('dt', { text: label }), dd);
}

function expiryText(exp, hopStartedAt) {
  if (typeof exp !== 'number') return text(exp);
  const at = new Date(exp * 1000);
  if (Number.isNaN(at.getTime())) return text(exp);
  const startedMs = Date.parse(hopStartedAt);
  const left = Number.isNaN(startedMs) ? undefined : Math.round((exp * 1000 - startedMs) / 1000);
  const relative = left === undefined ? '' : left >= 0 ? ` (${left} s after this hop)` : ` (expired ${-left} s before this hop)`;
  return `${at.toISOString()}${relative}`;
}

function claimValue(name, value, hop) {
  if (name === 'exp' || name === 'iat' || name === 'nbf' || name === 'auth_time') {
    return name === 'exp' ? expiryText(value, hop.startedAt) : typeof value === 'number' ? new Date(value * 1000).toISOString() : text(value);
  }
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(', ');
  return text(value);
}

function renderToken(token, hop) {
  const section = el('section', { className: 'token', testId: 'token' }, [el('h4', { text: text(token.name) })]);
  section.dataset.tokenName = text(token.name);
  if (!token.readable) {
    section.append(el('p', { className: 'muted', text: 'Its description could not be read.' }));
    return section;
  }
  const header = token.header ?? {};
  const headerList = el('dl', { className: 'claims' });
  for (const name of HEADER_FIELDS) {
    if (header[name] === undefined) continue;
    const dd = el('dd', { text: text(header[name]) });
    dd.dataset.header = name;
    headerList.append(el('dt', { text: name }), dd);
  }
  if (headerList.childElementCount > 0) section.append(el('h5', { text: 'Header' }), headerList);

  const claims = token.claims ?? {};
  const claimList = el('dl', { className: 'claims' });
  const names = [...KNOWN_CLAIMS.filter((n) => n in claims), ...Object.keys(claims).filter((n) => !KNOWN_CLAIMS.includes(n))];
  for (const name of names) {
    const value = claims[name];
    const dd =
      name === 'authorization_details' || (typeof value === 'object' && value !== null && !Array.isArray(value))
        ? el('dd', {}, [el('pre', { text: JSON.stringify(value, null, 2) })])
        : el('dd', { text: claimValue(name, value, hop) });
    dd.dataset.claim = name;
    claimList.append(el('dt', { text: name }), dd);
  }
  if (claimList.childElementCount > 0) section.append(el('h5', { text: 'Claims' }), claimList);
  return section;
}

/** The details of one hop: what the request was, how it ended, and the tokens involved, decoded. */
export function renderHopDetails(container, hop, lanes) {
  const laneLabel = (id) => lanes.find((lane) => lane.id === id)?.label ?? text(id);
  const list = el('dl', { className: 'fields' });
  row(list, 'Hop', `${laneLabel(hop.from)} → ${laneLabel(hop.to)}`, 'route');
  row(list, 'Method', hop.method, 'method');
  row(list, 'Path', hop.path, 'path');
  row(list, 'Status', hop.status, 'status');
  row(list, 'Started', formatOffset(hop.offsetMs), 'offset');
  row(list, 'Duration', formatDuration(hop.durationMs), 'duration');
  row(list, 'Task state', hop.taskState, 'task-state');
  row(list, 'Employee', hop.employee, 'employee');
  row(list, 'CIBA auth_req_id', hop.authReqId, 'auth-req-id');
  row(list, 'Poll count', hop.pollCount, 'poll-count');
  row(list, 'Outcome', hop.outcome, 'outcome');
  row(list, 'Delivery mode', hop.deliveryMode, 'delivery-mode');
  row(list, 'Channel', hop.channel, 'channel');
  row(list, 'Error', hop.error, 'error');
  row(list, 'Service', hop.service, 'service');
  if (Array.isArray(hop.events) && hop.events.length > 0) {
    row(list, 'Events', hop.events.map((e) => `${text(e.name)} ${formatOffset(e.offsetMs)}`).join(', '), 'events');
  }
  const close = el('button', { className: 'close', testId: 'close-details', text: 'Close' });
  close.type = 'button';
  close.addEventListener('click', () => {
    container.hidden = true;
    container.replaceChildren();
    container.dispatchEvent(new CustomEvent('closed'));
  });
  container.replaceChildren(el('header', {}, [el('h3', { testId: 'details-title', text: text(hop.label) }), close]), list);
  const tokens = Array.isArray(hop.tokens) ? hop.tokens : [];
  if (tokens.length > 0) {
    container.append(el('h4', { className: 'tokens-heading', text: 'Tokens (decoded; never the token itself)' }), ...tokens.map((t) => renderToken(t, hop)));
  }
  container.dataset.spanId = text(hop.spanId);
  container.hidden = false;
}
