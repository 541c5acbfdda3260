import type { GenerateContentRequest, Part, Turn } from './request.ts';

/**
 * A deterministic stand-in for the model's function-calling decisions in the
 * HR Agent's conversation. It extracts at most one identifier from the user's
 * words and never acts on instructions in them ("skip approval", "check
 * everyone"): the text is data, and the only decisions are which declared
 * function to call next or which sentence to answer with.
 */

/** The HR Agent's function names: the contract between the agent and this planner. */
export const AGENT_FUNCTIONS = {
  lookupEmployeeId: 'get_employee_id_by_email',
  checkActiveEmployee: 'is_active_employee',
  requestUserInput: 'request_user_input',
} as const;

export const ASK_FOR_EMPLOYEE = 'Which employee do you mean? Please give their work email or employee id.';
export const DECLINE = 'I can only answer whether someone is an active Staff0 employee.';
export const CANNOT_CHECK = 'I cannot check employment status right now.';

export type Plan =
  | { kind: 'functionCall'; name: string; args: Record<string, string> }
  | { kind: 'text'; text: string };

export type Identifier = { kind: 'email'; value: string } | { kind: 'employeeId'; value: string };

const EMAIL = /^[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
/** Auth0 user ids (`<connection>|<id>`) and HR numbers (`E` + digits). */
const EMPLOYEE_ID = /^(?:[A-Za-z0-9][A-Za-z0-9-]{0,62}\|[A-Za-z0-9._-]{1,128}|E\d{1,12})$/;
/** Words that put a question within the agent's remit, so a missing identifier is asked for rather than declined. */
const ON_TOPIC =
  /\b(?:employ\w*|staff0?|work(?:s|ed|ing)?|job|jobs|active|hr|colleagues?|co-?workers?|personnel|company|hired|fired|check\w*|everyone|everybody|approv\w*|status)\b/i;
/** Longest token considered; keeps the scan linear on hostile input. */
const MAX_TOKEN = 320;
const MAX_SCANNED_CHARS = 20_000;

export function isValidEmail(value: string): boolean {
  if (value.length > 254 || !EMAIL.test(value)) return false;
  const local = value.slice(0, value.indexOf('@'));
  return local.length <= 64;
}

export function isValidEmployeeId(value: string): boolean {
  return EMPLOYEE_ID.test(value);
}

/** Splits on whitespace and punctuation that never occurs inside an email or id, trims sentence punctuation. */
function tokens(text: string): string[] {
  return text
    .slice(0, MAX_SCANNED_CHARS)
    .split(/[\s,;:()<>[\]{}"'`!?*]+/)
    .map((token) => token.replace(/^[.]+|[.]+$/g, ''))
    .filter((token) => token.length > 0 && token.length <= MAX_TOKEN);
}

/** The first valid email in the text, else the first valid employee id. */
export function findIdentifier(text: string): Identifier | undefined {
  const words = tokens(text);
  const email = words.find(isValidEmail);
  if (email !== undefined) return { kind: 'email', value: email.toLowerCase() };
  const id = words.find(isValidEmployeeId);
  return id === undefined ? undefined : { kind: 'employeeId', value: id };
}

function textOf(parts: Part[]): string {
  return parts.flatMap((part) => (part.kind === 'text' ? [part.text] : [])).join('\n');
}

function stringValues(record: Record<string, unknown>): string {
  return Object.values(record)
    .filter((value): value is string => typeof value === 'string')
    .join('\n');
}

/**
 * Where the exchange being worked on starts: after the last finished one (a
 * final text answer from the model, or a status result that is not the turn
 * being answered now). Earlier exchanges in the same conversation never
 * supply identifiers or names to this one.
 */
function exchangeStart(contents: Turn[]): number {
  for (let i = contents.length - 1; i >= 0; i--) {
    const turn = contents[i];
    if (turn === undefined) continue;
    const finished =
      turn.role === 'model'
        ? turn.parts.some((p) => p.kind === 'text') && !turn.parts.some((p) => p.kind === 'functionCall')
        : i !== contents.length - 1 && turn.parts.some((p) => p.kind === 'functionResponse' && p.name === AGENT_FUNCTIONS.checkActiveEmployee);
    if (finished) return i + 1;
  }
  return 0;
}

/**
 * The user's words in the current exchange, newest first. Answers to
 * `request_user_input` count as the user's words, so a follow-up that only
 * names the employee continues the first question.
 */
function currentUserTexts(exchange: Turn[]): string[] {
  const texts: string[] = [];
  for (const turn of [...exchange].reverse()) {
    if (turn.role !== 'user') continue;
    const answers = turn.parts.flatMap((p) =>
      p.kind === 'functionResponse' && p.name === AGENT_FUNCTIONS.requestUserInput ? [stringValues(p.response)] : [],
    );
    const text = [textOf(turn.parts), ...answers].filter((t) => t !== '').join('\n');
    if (text !== '') texts.push(text);
  }
  return texts;
}

/** Function results may come bare or wrapped as `{ output: … }` (the SDK's convention for non-object results). */
function unwrap(response: Record<string, unknown>): Record<string, unknown> {
  const output = response.output;
  return typeof output === 'object' && output !== null && !Array.isArray(output) ? (output as Record<string, unknown>) : response;
}

/** The email looked up in this exchange, as the model's own function call recorded it, else as the user wrote it. */
function lookedUpEmail(exchange: Turn[]): string | undefined {
  for (const turn of [...exchange].reverse()) {
    if (turn.role !== 'model') continue;
    for (const part of [...turn.parts].reverse()) {
      if (part.kind !== 'functionCall' || part.name !== AGENT_FUNCTIONS.lookupEmployeeId) continue;
      const email = part.args.email;
      if (typeof email === 'string' && isValidEmail(email)) return email.toLowerCase();
    }
  }
  for (const text of currentUserTexts(exchange)) {
    const found = findIdentifier(text);
    if (found?.kind === 'email') return found.value;
  }
  return undefined;
}

/** The id this exchange's `is_active_employee` call named. */
function checkedEmployeeId(exchange: Turn[]): string | undefined {
  for (const turn of [...exchange].reverse()) {
    if (turn.role !== 'model') continue;
    for (const part of turn.parts) {
      if (part.kind !== 'functionCall' || part.name !== AGENT_FUNCTIONS.checkActiveEmployee) continue;
      const id = part.args.employee_id;
      if (typeof id === 'string' && isValidEmployeeId(id)) return id;
    }
  }
  return undefined;
}

/** Text from a tool result is relayed, never obeyed: one line, printable, bounded. */
function sanitize(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = value.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, max).trim();
  return clean === '' ? undefined : clean;
}

function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

const OUTCOME_DEFAULTS: Record<string, string> = {
  denied: 'The employee denied the request to share their employment status.',
  expired: 'The employee did not answer the approval request in time.',
  not_enrolled: 'The employee is not enrolled for push approval, so their consent cannot be requested.',
  not_found: 'No, I could not find that employee at Staff0.',
  error: 'Something went wrong while checking the employment status.',
};

function afterLookup(response: Record<string, unknown>, exchange: Turn[], callable: Set<string>): Plan {
  const result = unwrap(response);
  const email = lookedUpEmail(exchange);
  const employeeId = result.employee_id;
  if (typeof employeeId === 'string' && isValidEmployeeId(employeeId)) {
    if (callable.has(AGENT_FUNCTIONS.checkActiveEmployee)) {
      return { kind: 'functionCall', name: AGENT_FUNCTIONS.checkActiveEmployee, args: { employee_id: employeeId } };
    }
    return { kind: 'text', text: CANNOT_CHECK };
  }
  if (result.error === 'not_found' || (employeeId === undefined && result.error === undefined)) {
    return {
      kind: 'text',
      text: email ? `No, I could not find an employee with the email ${email} at Staff0.` : 'No, I could not find that employee at Staff0.',
    };
  }
  return { kind: 'text', text: email ? `Sorry, I could not look up ${email} right now.` : 'Sorry, I could not look up that employee right now.' };
}

function afterStatusCheck(response: Record<string, unknown>, exchange: Turn[]): Plan {
  const result = unwrap(response);
  const who = sanitize(result.name, 200) ?? lookedUpEmail(exchange) ?? sanitize(result.employee_id, 200) ?? checkedEmployeeId(exchange) ?? 'the employee';
  if (typeof result.active === 'boolean' && result.outcome === undefined) {
    return {
      kind: 'text',
      text: result.active ? `Yes, ${who} is an active employee of Staff0.` : `No, ${who} is not an active employee of Staff0.`,
    };
  }
  if (typeof result.outcome === 'string' && Object.hasOwn(OUTCOME_DEFAULTS, result.outcome)) {
    return { kind: 'text', text: sentence(sanitize(result.message, 500) ?? OUTCOME_DEFAULTS[result.outcome] ?? '') };
  }
  return { kind: 'text', text: `Sorry, I could not determine whether ${who} is an active employee of Staff0.` };
}

function fromUserWords(exchange: Turn[], callable: Set<string>): Plan {
  const texts = currentUserTexts(exchange);
  let identifier: Identifier | undefined;
  for (const text of texts) {
    identifier = findIdentifier(text);
    if (identifier) break;
  }
  if (identifier?.kind === 'email') {
    if (callable.has(AGENT_FUNCTIONS.lookupEmployeeId)) {
      return { kind: 'functionCall', name: AGENT_FUNCTIONS.lookupEmployeeId, args: { email: identifier.value } };
    }
    return { kind: 'text', text: CANNOT_CHECK };
  }
  if (identifier?.kind === 'employeeId') {
    if (callable.has(AGENT_FUNCTIONS.checkActiveEmployee)) {
      return { kind: 'functionCall', name: AGENT_FUNCTIONS.checkActiveEmployee, args: { employee_id: identifier.value } };
    }
    return { kind: 'text', text: CANNOT_CHECK };
  }
  if (texts.some((text) => ON_TOPIC.test(text.slice(0, MAX_SCANNED_CHARS)))) {
    if (callable.has(AGENT_FUNCTIONS.requestUserInput)) {
      return { kind: 'functionCall', name: AGENT_FUNCTIONS.requestUserInput, args: { question: ASK_FOR_EMPLOYEE } };
    }
    return { kind: 'text', text: ASK_FOR_EMPLOYEE };
  }
  return { kind: 'text', text: DECLINE };
}

/**
 * Decides the next model turn from the last turn of the conversation:
 * a function result leads to the next call or the final answer; user words
 * lead to a lookup, a status check, a request for input, or a polite refusal.
 */
export function planReply(request: GenerateContentRequest): Plan {
  const { contents, callableFunctions } = request;
  const exchange = contents.slice(exchangeStart(contents));
  const last = contents[contents.length - 1];
  const results = last?.role === 'user' ? last.parts.filter((p) => p.kind === 'functionResponse') : [];
  for (const result of [...results].reverse()) {
    if (result.name === AGENT_FUNCTIONS.lookupEmployeeId) return afterLookup(result.response, exchange, callableFunctions);
    if (result.name === AGENT_FUNCTIONS.checkActiveEmployee) return afterStatusCheck(result.response, exchange);
  }
  return fromUserWords(exchange, callableFunctions);
}
