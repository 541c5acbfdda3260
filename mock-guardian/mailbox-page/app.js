// The mailbox and the email consent page of the local tenant (Auth0's CIBA
// email channel). Subjects, names, binding messages and authorization_details
// come from outside, so the DOM is built with textContent only.

import { readAuthorizationDetails, renderAuthorizationDetails } from './authorization-details.js';
import { byTestId, controlRequests, el, option, readControlSecret, readPathMeta } from './page-kit.js';

const REFRESH_MS = 1000;
const controlBase = readPathMeta('guardian-control-base', '/control');
const pageBase = readPathMeta('mailbox-page-base', '/mailbox');
const controlSecret = readControlSecret();
const { secretHeaders, getJson } = controlRequests(controlSecret);

function start() {
  if (document.body.dataset.page === 'consent') startConsent();
  else startInbox();
}

// ---------------------------------------------------------------- inbox

async function startInbox() {
  const select = /** @type {HTMLSelectElement} */ (byTestId('user-select'));
  const wanted = new URL(window.location.href).searchParams.get('user_id') ?? '';
  let users = [];
  try {
    const body = await getJson(`${controlBase}/users`);
    users = Array.isArray(body?.users) ? body.users.filter((u) => isObject(u) && typeof u.user_id === 'string') : [];
  } catch {
    announce('Could not load the tenant’s users. Is the tenant running?');
  }
  select.replaceChildren(option('', 'Choose a user…'), ...users.map((u) => option(u.user_id, `${text(u.name)} (${text(u.email)})`)));
  select.value = users.some((u) => u.user_id === wanted) ? wanted : '';
  select.disabled = false;
  let timer = 0;
  const show = () => {
    window.clearTimeout(timer);
    const userId = select.value;
    const url = new URL(window.location.href);
    if (userId) url.searchParams.set('user_id', userId);
    else url.searchParams.delete('user_id');
    window.history.replaceState(null, '', url);
    if (!userId) {
      byTestId('messages').replaceChildren();
      byTestId('messages-empty').hidden = true;
      announce('Choose a user to read the email the tenant sent them.');
      return;
    }
    announce('');
    const load = async () => {
      try {
        const body = await getJson(`${controlBase}/requests?channel=email&user_id=${encodeURIComponent(userId)}`);
        if (select.value !== userId) return;
        renderMessages(Array.isArray(body?.requests) ? body.requests.filter(isRequest) : []);
      } catch {
        announce('Could not load the mailbox from the tenant.');
      }
      timer = window.setTimeout(load, REFRESH_MS);
    };
    load();
  };
  select.addEventListener('change', show);
  show();
}

function renderMessages(requests) {
  const list = byTestId('messages');
  list.replaceChildren(
    ...requests.map((request) => {
      const item = el('li', { className: 'message', testId: 'message' });
      item.dataset.requestId = request.id;
      item.dataset.status = request.status;
      const link = el('a', { testId: 'message-link', text: `${text(request.client_name)} needs your authorization` });
      link.href = `${pageBase}/consent?request=${encodeURIComponent(request.id)}`;
      item.append(
        link,
        el('p', { className: 'snippet', testId: 'message-snippet', text: text(request.binding_message) }),
        el('p', { className: 'meta', text: `To ${text(request.user_email)} · ${formatTime(request.created_at)} · ${request.status}` }),
      );
      return item;
    }),
  );
  byTestId('messages-empty').hidden = requests.length > 0;
}

// ---------------------------------------------------------------- consent

async function startConsent() {
  const id = new URL(window.location.href).searchParams.get('request') ?? '';
  let request;
  try {
    request = await getJson(`${controlBase}/requests/${encodeURIComponent(id)}`);
  } catch {
    announce('This link does not lead to a request the tenant knows.');
    return;
  }
  if (!isRequest(request) || request.channel !== 'email') {
    announce('This link does not lead to an email request.');
    return;
  }
  // A local sign-in: the link alone is not enough, the reader must say they are the addressee
  // (Auth0 has the user log in in the browser before it shows the consent).
  const signIn = byTestId('sign-in');
  byTestId('addressee').textContent = text(request.user_email);
  signIn.hidden = false;
  byTestId('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const typed = /** @type {HTMLInputElement} */ (byTestId('sign-in-email')).value.trim().toLowerCase();
    if (typed !== String(request.user_email).toLowerCase()) {
      announce('That is not the account this request was sent to.');
      return;
    }
    announce('');
    signIn.hidden = true;
    showConsent(request);
  });
}

function showConsent(request) {
  const section = byTestId('consent');
  section.hidden = false;
  byTestId('client-name').textContent = text(request.client_name);
  byTestId('binding-message').textContent = text(request.binding_message);
  const details = readAuthorizationDetails(request.authorization_details);
  byTestId('authorization').replaceChildren(
    ...(details.length === 0 ? [] : [el('p', { className: 'label', text: 'It asks you to authorize' }), renderAuthorizationDetails(details)]),
  );
  byTestId('scopes').textContent = Array.isArray(request.scopes) ? request.scopes.map(text).join(', ') : '';
  byTestId('api').textContent = request.api_name ? `${text(request.api_name)} (${text(request.audience)})` : text(request.audience ?? '');
  byTestId('expires').textContent = formatTime(request.expires_at);
  const approve = /** @type {HTMLButtonElement} */ (byTestId('approve'));
  const deny = /** @type {HTMLButtonElement} */ (byTestId('deny'));
  setStatus(request.status);
  const decide = async (action) => {
    approve.disabled = true;
    deny.disabled = true;
    try {
      const response = await fetch(`${controlBase}/requests/${encodeURIComponent(request.id)}/${action}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...secretHeaders() },
        body: '{}',
        credentials: 'same-origin',
        cache: 'no-store',
      });
      const body = await response.json().catch(() => null);
      if (response.ok && isRequest(body)) {
        setStatus(body.status);
        announce(action === 'approve' ? 'You approved the request.' : 'You denied the request.');
      } else {
        const description = isObject(body) && typeof body.error_description === 'string' ? body.error_description : `HTTP ${response.status}`;
        announce(`Your answer was not recorded: ${description}`);
      }
    } catch {
      announce('Could not reach the tenant; your answer was not recorded.');
    }
  };
  approve.addEventListener('click', () => decide('approve'));
  deny.addEventListener('click', () => decide('deny'));

  function setStatus(status) {
    byTestId('request-status').textContent = String(status);
    byTestId('actions').hidden = status !== 'pending';
    approve.disabled = status !== 'pending';
    deny.disabled = status !== 'pending';
  }
}

// ---------------------------------------------------------------- small pieces

function isRequest(value) {
  return isObject(value) && typeof value.id === 'string' && typeof value.status === 'string' && typeof value.user_email === 'string';
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value) {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
}

function announce(message) {
  byTestId('status-message').textContent = message;
}

function formatTime(iso) {
  const at = Date.parse(String(iso));
  return Number.isNaN(at) ? '' : new Date(at).toLocaleString();
}

start();
