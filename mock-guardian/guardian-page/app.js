// The Guardian page: plays an employee's phone for the local tenant.
//
// Every string shown here comes from outside (binding messages chosen by the
// requesting client, application and user names from a tenant file), so the
// DOM is built with createElement/textContent only. Nothing is parsed as HTML.

import { readAuthorizationDetails, renderAuthorizationDetails } from './authorization-details.js';
import { byTestId, controlRequests, el, option, readControlSecret, readPathMeta } from './page-kit.js';

const STATUSES = ['pending', 'approved', 'denied', 'expired'];
const STATUS_LABELS = { pending: 'Pending', approved: 'Approved', denied: 'Denied', expired: 'Expired' };
const CONFLICT_MESSAGES = {
  already_decided: 'This request was already decided.',
  expired: 'This request expired.',
};
const RECONNECT_DELAY_MS = 3000;

const controlBase = readPathMeta('guardian-control-base', '/control');
const controlSecret = readControlSecret();
const { secretHeaders, getJson } = controlRequests(controlSecret);
const elements = {
  connection: byTestId('connection'),
  userSelect: /** @type {HTMLSelectElement} */ (byTestId('user-select')),
  userName: byTestId('user-name'),
  userEmail: byTestId('user-email'),
  status: byTestId('status-message'),
  pendingList: byTestId('pending-requests'),
  pendingEmpty: byTestId('pending-empty'),
  pendingCount: byTestId('pending-count'),
  decidedList: byTestId('decided-requests'),
  decidedEmpty: byTestId('decided-empty'),
};

/**
 * One page, one user at a time. `session` changes identity when the user
 * changes, so late answers for the previous user are dropped.
 */
let session = null;
let users = [];

function start() {
  elements.userSelect.addEventListener('change', () => {
    const userId = elements.userSelect.value;
    const url = new URL(window.location.href);
    if (userId) url.searchParams.set('user_id', userId);
    else url.searchParams.delete('user_id');
    window.history.replaceState(null, '', url);
    selectUser(userId);
  });
  window.setInterval(tick, 1000);
  loadUsers();
}

// ---------------------------------------------------------------- users

async function loadUsers() {
  const wanted = new URL(window.location.href).searchParams.get('user_id') ?? '';
  try {
    const body = await getJson(`${controlBase}/users`);
    users = Array.isArray(body?.users) ? body.users.map(parseUser).filter((u) => u !== null) : [];
  } catch (error) {
    if (error instanceof Error && error.message === 'HTTP 403') {
      // An exposed sandbox's control API wants the secret from the banner's link; without it there is nothing to show.
      setConnection('idle', 'Locked');
      announce('This sandbox is exposed to the network: open the Guardian page from the link in its banner, which carries the access secret.', 'error');
      return;
    }
    // Only here is the tenant known to be unreachable: the one state the badge calls "Offline".
    setConnection('offline', 'Offline');
    announce('Could not load the tenant’s users. Is the tenant running?', 'error');
    users = [];
    renderUserOptions(wanted);
    return;
  }
  renderUserOptions(wanted);
  selectUser(wanted);
}

function parseUser(value) {
  if (!isObject(value)) return null;
  const { user_id, name, email, push_enrolled } = value;
  if (typeof user_id !== 'string' || user_id === '') return null;
  return {
    user_id,
    name: typeof name === 'string' ? name : user_id,
    email: typeof email === 'string' ? email : '',
    push_enrolled: push_enrolled === true,
  };
}

function renderUserOptions(selected) {
  const select = elements.userSelect;
  select.replaceChildren(option('', 'Choose an employee…'));
  for (const user of users.filter((u) => u.push_enrolled)) {
    select.append(option(user.user_id, user.email ? `${user.name} (${user.email})` : user.name));
  }
  // A user named in the URL but not enrolled still gets an entry, so the
  // selector tells the truth about whose phone this is.
  if (selected && ![...select.options].some((o) => o.value === selected)) {
    select.append(option(selected, selected));
  }
  select.value = selected;
  select.disabled = false;
}

function selectUser(userId) {
  if (session) session.close();
  session = null;
  clearRequests();
  elements.status.textContent = '';
  const user = users.find((u) => u.user_id === userId);
  elements.userName.textContent = user ? user.name : '';
  elements.userEmail.textContent = user ? user.email : '';
  document.title = user ? `Guardian — ${user.name}` : 'Guardian';

  if (!userId) {
    setConnection('idle', 'Choose an employee');
    announce('Choose an employee to see the push requests sent to their phone.', 'info');
    return;
  }
  if (!user) {
    setConnection('idle', 'Unknown user');
    announce('There is no such user in this tenant.', 'error');
    return;
  }
  if (!user.push_enrolled) {
    setConnection('idle', 'Not enrolled');
    announce(`${user.name} is not enrolled for push, so no request can reach this phone.`, 'error');
    return;
  }
  session = openSession(user.user_id);
  updateCounts();
}

// ---------------------------------------------------------------- live updates

function openSession(userId) {
  let source = null;
  let retry = 0;
  let closed = false;
  const current = { userId, close };

  // Subscribe first, then list: a request created in between arrives as an event,
  // and every (re)connection lists again to cover events missed while away.
  connect();
  refresh();
  return current;

  function connect() {
    setConnection('connecting', 'Connecting…');
    // EventSource cannot send headers: the stream alone takes the secret as a query parameter.
    const secret = controlSecret ? `&secret=${encodeURIComponent(controlSecret)}` : '';
    source = new EventSource(`${controlBase}/events?user_id=${encodeURIComponent(userId)}${secret}`);
    source.addEventListener('open', () => {
      setConnection('open', 'Live');
      refresh();
    });
    source.addEventListener('request', (event) => {
      if (session !== current) return;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      const view = parseView(data);
      if (view && view.user_id === userId) upsert(view, { live: true });
    });
    source.addEventListener('error', () => {
      if (closed) return;
      setConnection('reconnecting', 'Reconnecting…');
      // EventSource retries by itself unless the server refused the stream.
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        retry = window.setTimeout(connect, RECONNECT_DELAY_MS);
      }
    });
  }

  async function refresh() {
    try {
      const body = await getJson(`${controlBase}/requests?user_id=${encodeURIComponent(userId)}`);
      if (session !== current) return;
      const list = Array.isArray(body?.requests) ? body.requests : [];
      for (const item of list) {
        const view = parseView(item);
        if (view && view.user_id === userId) upsert(view, { live: false });
      }
    } catch {
      if (session === current) announce('Could not load requests from the tenant.', 'error');
    }
  }

  function close() {
    closed = true;
    window.clearTimeout(retry);
    if (source) source.close();
    source = null;
  }
}

function setConnection(state, label) {
  elements.connection.dataset.state = state;
  elements.connection.textContent = label;
}

// ---------------------------------------------------------------- requests

/** id → { view, card, parts } */
const cards = new Map();

function parseView(value) {
  if (!isObject(value)) return null;
  const v = value;
  const isString = (x) => typeof x === 'string';
  const isNullableString = (x) => x === null || x === undefined || typeof x === 'string';
  if (!isString(v.id) || v.id === '' || !isString(v.user_id) || !STATUSES.includes(v.status)) return null;
  if (!isString(v.created_at) || !isString(v.expires_at)) return null;
  if (!isNullableString(v.audience) || !isNullableString(v.api_name) || !isNullableString(v.decided_at)) return null;
  const created = Date.parse(v.created_at);
  const expires = Date.parse(v.expires_at);
  if (Number.isNaN(created) || Number.isNaN(expires)) return null;
  return {
    id: v.id,
    user_id: v.user_id,
    client_id: isString(v.client_id) ? v.client_id : '',
    client_name: isString(v.client_name) && v.client_name !== '' ? v.client_name : isString(v.client_id) ? v.client_id : 'Unknown application',
    binding_message: isString(v.binding_message) ? v.binding_message : '',
    scopes: Array.isArray(v.scopes) ? v.scopes.filter(isString) : [],
    audience: v.audience ?? null,
    api_name: v.api_name ?? null,
    // Records kept before channels existed were all Guardian push.
    channel: v.channel === 'email' ? 'email' : 'guardian-push',
    authorization_details: readAuthorizationDetails(v.authorization_details),
    status: v.status,
    created,
    expires,
    decided: isString(v.decided_at) ? Date.parse(v.decided_at) : null,
    polls: Number.isInteger(v.polls) ? v.polls : 0,
  };
}

function clearRequests() {
  cards.clear();
  elements.pendingList.replaceChildren();
  elements.decidedList.replaceChildren();
  updateCounts();
}

function upsert(view, { live }) {
  // Email requests reach the user's mailbox, not their phone.
  if (view.channel !== 'guardian-push') return;
  const existing = cards.get(view.id);
  if (existing) {
    // A list answer that left the server before a decision must not undo it.
    if (view.status === 'pending' && existing.view.status !== 'pending') return;
    existing.view = view;
    updateCard(existing);
  } else {
    const entry = createCard(view);
    cards.set(view.id, entry);
    updateCard(entry);
    if (live && effectiveStatus(view) === 'pending') {
      announce(`New request from ${view.client_name}: ${view.binding_message}`, 'info');
    }
  }
}

/** The server expires requests; the page already shows the deadline passing. */
function effectiveStatus(view) {
  return view.status === 'pending' && Date.now() >= view.expires ? 'expired' : view.status;
}

function createCard(view) {
  const card = el('article', { className: 'request', testId: 'request' });
  card.dataset.requestId = view.id;
  const headingId = `request-${cards.size}-${Math.random().toString(36).slice(2)}`;
  card.setAttribute('aria-labelledby', headingId);

  const icon = el('span', { className: 'request-icon' });
  icon.setAttribute('aria-hidden', 'true');
  const clientName = el('h3', { className: 'request-client', testId: 'client-name' });
  clientName.id = headingId;
  const subtitle = el('p', { className: 'request-subtitle' });
  const badge = el('span', { className: 'badge', testId: 'request-status' });
  const head = el('header', { className: 'request-head' });
  head.append(icon, el('div', { className: 'request-title' }, [clientName, subtitle]), badge);

  const binding = el('p', { className: 'binding-message', testId: 'binding-message' });
  const authorization = el('div', { className: 'authorization', testId: 'authorization' });
  const scopes = el('ul', { className: 'scopes', testId: 'scopes' });
  const api = el('span', { testId: 'api' });
  const timeLeft = el('span', { testId: 'time-left' });
  const progress = /** @type {HTMLProgressElement} */ (el('progress', { className: 'time-bar' }));
  progress.setAttribute('aria-hidden', 'true');
  const timeLeftRow = row('Time left', timeLeft, progress);
  const decided = el('span', { testId: 'decided-at' });
  const decidedRow = row('Decided', decided);

  const details = el('dl', { className: 'request-details' });
  details.append(row('Permissions', scopes), row('API', api), timeLeftRow, decidedRow);

  const approve = el('button', { className: 'approve', text: 'Approve' });
  const deny = el('button', { className: 'deny', text: 'Deny' });
  approve.type = 'button';
  deny.type = 'button';
  approve.setAttribute('aria-describedby', headingId);
  deny.setAttribute('aria-describedby', headingId);
  const actions = el('div', { className: 'request-actions' }, [deny, approve]);

  const message = el('p', { className: 'request-message', testId: 'request-message' });
  message.setAttribute('aria-live', 'polite');

  card.append(head, el('p', { className: 'label', text: 'Binding message' }), binding, authorization, details, actions, message);

  const entry = {
    view,
    card,
    busy: false,
    parts: { icon, clientName, subtitle, badge, binding, authorization, scopes, api, timeLeft, progress, timeLeftRow, decided, decidedRow, actions, approve, deny, message },
  };
  approve.addEventListener('click', () => decide(entry, 'approve'));
  deny.addEventListener('click', () => decide(entry, 'deny'));
  return entry;
}

function row(label, ...values) {
  const wrapper = el('div', { className: 'row' });
  wrapper.append(el('dt', { text: label }), el('dd', {}, values));
  return wrapper;
}

function updateCard(entry) {
  const { view, card, parts } = entry;
  const status = effectiveStatus(view);
  card.dataset.status = status;
  parts.icon.textContent = initial(view.client_name);
  parts.clientName.textContent = view.client_name;
  parts.subtitle.textContent = status === 'pending' ? 'is asking for your approval' : 'asked for your approval';
  parts.badge.textContent = STATUS_LABELS[status];
  parts.badge.dataset.status = status;
  parts.binding.textContent = view.binding_message;
  parts.authorization.hidden = view.authorization_details.length === 0;
  parts.authorization.replaceChildren(
    ...(view.authorization_details.length === 0
      ? []
      : [el('p', { className: 'label', text: 'It asks you to authorize' }), renderAuthorizationDetails(view.authorization_details)]),
  );
  parts.scopes.replaceChildren(...view.scopes.map((scope) => el('li', { text: scope })));
  if (view.scopes.length === 0) parts.scopes.append(el('li', { text: 'none' }));
  parts.api.textContent =
    view.audience === null ? 'Sign-in only (no API)' : view.api_name ? `${view.api_name} (${view.audience})` : view.audience;
  parts.timeLeftRow.hidden = status === 'approved' || status === 'denied';
  parts.decidedRow.hidden = view.decided === null;
  parts.decided.textContent = view.decided === null ? '' : formatTime(view.decided);
  parts.actions.hidden = status !== 'pending';
  parts.approve.disabled = entry.busy || status !== 'pending';
  parts.deny.disabled = entry.busy || status !== 'pending';
  updateTimeLeft(entry);
  place(entry, status === 'pending' ? elements.pendingList : elements.decidedList);
  updateCounts();
}

function updateTimeLeft(entry) {
  const { view, parts } = entry;
  const status = effectiveStatus(view);
  const total = Math.max(1, view.expires - view.created);
  const left = Math.max(0, view.expires - Date.now());
  if (status === 'pending') {
    parts.timeLeft.textContent = `${formatDuration(left)} left`;
    parts.progress.max = total;
    parts.progress.value = left;
    parts.progress.hidden = false;
  } else {
    parts.timeLeft.textContent = status === 'expired' ? 'expired' : '';
    parts.progress.hidden = true;
  }
}

/** Newest first in both lists, moving the card only when its place changes. */
function place(entry, list) {
  const siblings = [...list.children].filter((c) => c !== entry.card);
  const before = siblings.find((c) => {
    const other = cards.get(c.dataset.requestId ?? '');
    return other !== undefined && other.view.created < entry.view.created;
  });
  const target = before ?? null;
  if (entry.card.parentElement === list && entry.card.nextElementSibling === target) return;
  list.insertBefore(entry.card, target);
}

function updateCounts() {
  const pending = elements.pendingList.children.length;
  elements.pendingCount.textContent = String(pending);
  elements.pendingEmpty.hidden = pending > 0 || session === null;
  elements.decidedEmpty.hidden = elements.decidedList.children.length > 0 || session === null;
  const name = elements.userName.textContent;
  document.title = `${pending > 0 ? `(${pending}) ` : ''}Guardian${name ? ` — ${name}` : ''}`;
}

function tick() {
  for (const entry of cards.values()) {
    if (entry.view.status !== 'pending') continue;
    const wasShownPending = entry.card.dataset.status === 'pending';
    if (wasShownPending && effectiveStatus(entry.view) !== 'pending') updateCard(entry);
    else updateTimeLeft(entry);
  }
}

// ---------------------------------------------------------------- decisions

async function decide(entry, action) {
  if (entry.busy || effectiveStatus(entry.view) !== 'pending') return;
  const id = entry.view.id;
  entry.busy = true;
  entry.parts.message.textContent = '';
  updateCard(entry);
  try {
    // JSON from a same-origin script: a cross-site form cannot send this
    // content type, and the control API refuses foreign Origins (CSRF).
    const response = await fetch(`${controlBase}/requests/${encodeURIComponent(id)}/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...secretHeaders() },
      body: '{}',
      credentials: 'same-origin',
      cache: 'no-store',
    });
    const body = await response.json().catch(() => null);
    if (response.ok) {
      const view = parseView(body);
      if (view) upsert(view, { live: false });
      const verb = action === 'approve' ? 'Approved' : 'Denied';
      announce(`${verb}: ${entry.view.client_name} — ${entry.view.binding_message}`, 'success');
    } else if (response.status === 409) {
      const code = isObject(body) && typeof body.error === 'string' ? body.error : '';
      const text = CONFLICT_MESSAGES[code] ?? 'This request can no longer be decided.';
      entry.parts.message.textContent = text;
      announce(text, 'error');
      await reload(entry);
    } else if (response.status === 404) {
      const text = 'This request no longer exists.';
      entry.parts.message.textContent = text;
      announce(text, 'error');
    } else {
      const detail = isObject(body) && typeof body.error_description === 'string' ? ` ${body.error_description}` : '';
      announce(`Your answer was not recorded (HTTP ${response.status}).${detail}`, 'error');
    }
  } catch {
    announce('Could not reach the tenant; your answer was not recorded.', 'error');
  } finally {
    entry.busy = false;
    if (cards.get(id) === entry) updateCard(entry);
  }
}

async function reload(entry) {
  try {
    const view = parseView(await getJson(`${controlBase}/requests/${encodeURIComponent(entry.view.id)}`));
    if (view && cards.get(view.id) === entry) upsert(view, { live: false });
  } catch {
    // The live stream will still deliver the request's final state.
  }
}

// ---------------------------------------------------------------- small DOM pieces

function announce(text, tone) {
  elements.status.dataset.tone = tone;
  elements.status.textContent = text;
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function initial(name) {
  const first = name.match(/[\p{L}\p{N}]/u);
  return first ? first[0].toUpperCase() : '?';
}

function formatDuration(ms) {
  const seconds = Math.ceil(ms / 1000);
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${m}:${String(s).padStart(2, '0')}`;
}

function formatTime(epochMs) {
  return new Date(epochMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

start();
