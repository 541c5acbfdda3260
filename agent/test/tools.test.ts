import { describe, expect, it, vi } from 'vitest';
import type { CibaAuthorizer } from '../ciba.ts';
import { AgentError } from '../errors.ts';
import type { HrApiClient } from '../hr-api.ts';
import type { ManagementClient } from '../management.ts';
import { createTools, type ToolSessionEvents } from '../tools.ts';

function setup(overrides: { ciba?: CibaAuthorizer['requestConsent']; maxConsentRequests?: number } = {}) {
  const management: ManagementClient = {
    findUserByEmail: vi.fn(async (email: string) => (email === 'jdoe@staff0.com' ? { userId: 'auth0|jdoe' } : undefined)),
  };
  const requestConsent = vi.fn(
    overrides.ciba ??
      (async (employeeId: string, { onPending }: Parameters<CibaAuthorizer['requestConsent']>[1]) => {
        onPending({ employeeId, bindingMessage: 'Approve', expiresAt: new Date(0) });
        return `token-for-${employeeId}`;
      }),
  );
  const employmentStatus = vi.fn(async (employeeId: string, token: string) =>
    token === `token-for-${employeeId}` ? { employeeId, name: 'John Doe', active: true } : undefined,
  );
  const hrApi: HrApiClient = { employmentStatus };
  const events: ToolSessionEvents = { onConsentPending: vi.fn(), onConsentSettled: vi.fn() };
  const tools = createTools({
    management,
    ciba: { requestConsent, resumeConsent: vi.fn(async ({ employeeId }: { employeeId: string }) => `token-for-${employeeId}`) },
    hrApi,
    maxConsentRequests: overrides.maxConsentRequests,
  });
  const session = tools.session(new AbortController().signal, events);
  return { session, management, requestConsent, employmentStatus, events };
}

describe('tools', () => {
  it('looks up an employee id by email and answers only the id', async () => {
    const { session } = setup();
    const result = await session.run({ name: 'get_employee_id_by_email', args: { email: 'JDoe@Staff0.com' } });
    expect(result).toEqual({ kind: 'response', response: { employee_id: 'auth0|jdoe' } });
  });

  it('answers not_found for an unknown email', async () => {
    const { session } = setup();
    expect(await session.run({ name: 'get_employee_id_by_email', args: { email: 'nobody@staff0.com' } })).toEqual({
      kind: 'response',
      response: { error: 'not_found' },
    });
  });

  it.each([
    ['not an email', { email: 'jdoe' }],
    ['an injected list', { email: 'jdoe@staff0.com, jsmith@staff0.com' }],
    ['a non-string', { email: ['jdoe@staff0.com'] }],
    ['extra arguments', { email: 'jdoe@staff0.com', all: true }],
  ])('rejects %s without calling the Management API', async (_label, args) => {
    const { session, management } = setup();
    const result = await session.run({ name: 'get_employee_id_by_email', args });
    expect(result).toMatchObject({ kind: 'response', response: { error: 'invalid_argument' } });
    expect(management.findUserByEmail).not.toHaveBeenCalled();
  });

  it.each([['*'], ['auth0|*'], ['../../admin'], ['auth0|jdoe/../jsmith'], ['']])(
    'rejects the employee id %j without asking for consent or reading the HR API',
    async (employeeId) => {
      const { session, requestConsent, employmentStatus } = setup();
      const result = await session.run({ name: 'is_active_employee', args: { employee_id: employeeId } });
      expect(result).toMatchObject({ kind: 'response', response: { error: 'invalid_argument' } });
      expect(requestConsent).not.toHaveBeenCalled();
      expect(employmentStatus).not.toHaveBeenCalled();
    },
  );

  it('reads the HR API only with the token from that employee’s approval, and returns only the verdict', async () => {
    const { session, requestConsent, employmentStatus, events } = setup();
    await session.run({ name: 'get_employee_id_by_email', args: { email: 'jdoe@staff0.com' } });
    const result = await session.run({ name: 'is_active_employee', args: { employee_id: 'auth0|jdoe' } });
    expect(result).toEqual({ kind: 'response', response: { employee_id: 'auth0|jdoe', name: 'John Doe', active: true } });
    expect(requestConsent).toHaveBeenCalledWith('auth0|jdoe', expect.anything());
    expect(employmentStatus).toHaveBeenCalledWith('auth0|jdoe', 'token-for-auth0|jdoe', expect.anything());
    expect(events.onConsentPending).toHaveBeenCalledWith(expect.objectContaining({ employee: 'jdoe@staff0.com' }));
    expect(events.onConsentSettled).toHaveBeenCalledOnce();
  });

  it('never reads the HR API when consent fails, and passes the failure on', async () => {
    const { session, employmentStatus } = setup({
      ciba: async () => {
        throw new AgentError('access_denied', 'The employee denied the request');
      },
    });
    await expect(session.run({ name: 'is_active_employee', args: { employee_id: 'auth0|jdoe' } })).rejects.toMatchObject({
      code: 'access_denied',
    });
    expect(employmentStatus).not.toHaveBeenCalled();
  });

  it('answers not_found for an id the identity backend does not know', async () => {
    const { session } = setup({
      ciba: async () => {
        throw new AgentError('unknown_user', 'unknown');
      },
    });
    expect(await session.run({ name: 'is_active_employee', args: { employee_id: 'auth0|ghost' } })).toMatchObject({
      response: { outcome: 'not_found' },
    });
  });

  it('caps the consent requests per task and reuses a verdict already obtained', async () => {
    const { session, requestConsent } = setup({ maxConsentRequests: 1 });
    await session.run({ name: 'is_active_employee', args: { employee_id: 'auth0|jdoe' } });
    await session.run({ name: 'is_active_employee', args: { employee_id: 'auth0|jdoe' } });
    const third = await session.run({ name: 'is_active_employee', args: { employee_id: 'auth0|jsmith' } });
    expect(third).toMatchObject({ response: { outcome: 'error' } });
    expect(requestConsent).toHaveBeenCalledOnce();
  });

  it('turns request_user_input into an input request with the question', async () => {
    const { session } = setup();
    expect(await session.run({ name: 'request_user_input', args: { question: 'Which employee?' } })).toEqual({
      kind: 'input_required',
      question: 'Which employee?',
    });
  });

  it('refuses functions that were never declared', async () => {
    const { session } = setup();
    expect(await session.run({ name: 'list_all_employees', args: {} })).toMatchObject({
      response: { error: 'unknown_function' },
    });
    expect(await session.run({ name: 'toString', args: {} })).toMatchObject({ response: { error: 'unknown_function' } });
  });
});
