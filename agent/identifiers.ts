/**
 * The only shapes of identifier the agent will pass on to a backend. Anything
 * the caller or the language model sends is checked here first.
 */

const EMAIL = /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Auth0 user ids: `<connection strategy>|<id>`, e.g. `auth0|jdoe`, `google-oauth2|1234`, `oauth2|corp|42`. */
const EMPLOYEE_ID = /^[A-Za-z0-9_-]{1,64}(?:\|[A-Za-z0-9._@+:-]{1,128}){1,2}$/;

export function parseEmail(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const email = value.trim();
  return email.length <= 254 && EMAIL.test(email) ? email.toLowerCase() : undefined;
}

export function parseEmployeeId(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const id = value.trim();
  return EMPLOYEE_ID.test(id) && !id.includes('..') ? id : undefined;
}
