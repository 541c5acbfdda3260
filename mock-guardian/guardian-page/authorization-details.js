// RFC 9396 authorization_details as a consent prompt, shared by the Guardian
// page and the email consent page. The details are chosen by the requesting
// client, so every value is shown with textContent; nothing is parsed as HTML.

const MAX_ROWS = 40;
const MAX_TEXT = 500;

/** The details of a request view, or [] when it has none or they are not an array of typed objects. */
export function readAuthorizationDetails(value) {
  if (!Array.isArray(value)) return [];
  return value.filter((d) => typeof d === 'object' && d !== null && !Array.isArray(d) && typeof d.type === 'string');
}

/** "employment_verification" → "Employment verification"; "requester.client_id" → "Requester client id". */
function label(key) {
  const words = key.replace(/[._:-]+/g, ' ').trim();
  return words === '' ? key : words.charAt(0).toUpperCase() + words.slice(1);
}

function text(value) {
  const shown = typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value);
  return shown.length > MAX_TEXT ? `${shown.slice(0, MAX_TEXT)}…` : shown;
}

/** Leaf fields as [path, value], objects flattened with dots, arrays of scalars joined. */
function fields(object, prefix = '') {
  const out = [];
  for (const [key, value] of Object.entries(object)) {
    if (prefix === '' && key === 'type') continue;
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) out.push(...fields(value, path));
    else if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) out.push([path, value.map(text).join(', ')]);
    else out.push([path, value]);
  }
  return out;
}

const AUTH0_SCHEMA = 'urn:auth0:schemas:authorization-details:v1:';

/**
 * Auth0's schema (the one its Guardian app shows): `instruction`, then the `properties` whose `display` is
 * not false, by `display_order`, each labelled by its `name`. Any other type: every field, labelled by its path.
 */
function rowsOf(detail) {
  if (detail.type.startsWith(AUTH0_SCHEMA) && typeof detail.properties === 'object' && detail.properties !== null) {
    return Object.entries(detail.properties)
      .filter(([, p]) => typeof p === 'object' && p !== null && p.display !== false)
      .sort(([, a], [, b]) => Number(a.display_order ?? Infinity) - Number(b.display_order ?? Infinity))
      .map(([key, p]) => [key, typeof p.name === 'string' ? p.name.replace(/:\s*$/, '') : label(key), p.value]);
  }
  return fields(detail).map(([path, value]) => [path, label(path), value]);
}

function headingOf(detail) {
  return label(detail.type.startsWith(AUTH0_SCHEMA) ? detail.type.slice(AUTH0_SCHEMA.length) : detail.type);
}

/** One block per detail: its type as a heading, its instruction, then each field as a labelled row. */
export function renderAuthorizationDetails(details) {
  const list = document.createElement('div');
  list.className = 'authorization-details';
  list.dataset.testid = 'authorization-details';
  for (const detail of details) {
    const block = document.createElement('section');
    block.className = 'authorization-detail';
    block.dataset.testid = 'authorization-detail';
    const heading = document.createElement('h4');
    heading.textContent = headingOf(detail);
    block.append(heading);
    if (detail.type.startsWith(AUTH0_SCHEMA) && typeof detail.instruction === 'string') {
      const instruction = document.createElement('p');
      instruction.className = 'instruction';
      instruction.dataset.testid = 'instruction';
      instruction.textContent = text(detail.instruction);
      block.append(instruction);
    }
    const rows = document.createElement('dl');
    for (const [path, name, value] of rowsOf(detail).slice(0, MAX_ROWS)) {
      const row = document.createElement('div');
      row.className = 'row';
      const dt = document.createElement('dt');
      dt.textContent = text(name);
      const dd = document.createElement('dd');
      dd.dataset.field = path;
      dd.textContent = text(value);
      row.append(dt, dd);
      rows.append(row);
    }
    block.append(rows);
    list.append(block);
  }
  return list;
}
