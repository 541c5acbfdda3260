// What the tenant's browser pages (the Guardian page, the mailbox and its
// consent page) share: reading their settings from the page, the control
// secret of an exposed sandbox, requests to the control API, and building
// the DOM with textContent only, since every string they show comes from outside.

/** A path from a `<meta name=…>` the server filled in; anything but a plain absolute path gives `fallback`. */
export function readPathMeta(name, fallback) {
  const meta = document.querySelector(`meta[name="${name}"]`);
  const value = meta instanceof HTMLMetaElement ? meta.content : '';
  return /^\/[A-Za-z0-9._~\/-]*$/.test(value) ? value.replace(/\/+$/, '') : fallback;
}

/**
 * An exposed sandbox's banner links here with `#secret=…`: a fragment is never sent to
 * a server nor in a Referer. Keep it for this tab and take it out of the address bar.
 */
export function readControlSecret() {
  const fromLink = new URLSearchParams(window.location.hash.slice(1)).get('secret');
  if (fromLink) {
    try {
      window.sessionStorage.setItem('controlSecret', fromLink);
    } catch {
      // Storage may be off; the secret still works until the page is reloaded.
    }
    const url = new URL(window.location.href);
    url.hash = '';
    window.history.replaceState(null, '', url);
    return fromLink;
  }
  try {
    return window.sessionStorage.getItem('controlSecret') ?? '';
  } catch {
    return '';
  }
}

/** Requests to the control API, carrying the secret when there is one. */
export function controlRequests(controlSecret) {
  const secretHeaders = () => (controlSecret ? { 'X-Control-Secret': controlSecret } : {});
  return {
    secretHeaders,
    async getJson(url) {
      const response = await fetch(url, { headers: { Accept: 'application/json', ...secretHeaders() }, cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.json();
    },
  };
}

export function el(tag, { className, testId, text } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (testId) node.dataset.testid = testId;
  if (text !== undefined) node.textContent = text;
  node.append(...children);
  return node;
}

export function option(value, label) {
  const node = document.createElement('option');
  node.value = value;
  node.textContent = label;
  return node;
}

export function byTestId(id) {
  const node = document.querySelector(`[data-testid="${id}"]`);
  if (!node) throw new Error(`page element ${id} is missing`);
  return /** @type {HTMLElement} */ (node);
}
