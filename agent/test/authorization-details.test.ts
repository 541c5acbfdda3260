import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { callerOf, EMPLOYMENT_VERIFICATION, employmentVerification } from '../authorization-details.ts';
import type { CibaAuthorizer } from '../ciba.ts';
import { createTools } from '../tools.ts';
import { collect } from './a2a-caller.ts';
import { ask, employee, question, startLocalSandbox, type LocalSandbox } from './local-sandbox.ts';

/** Each consent request names who asks about whom, and why (RFC 9396 details, Auth0's Guardian schema). */

describe('employment verification details', () => {
  it("names the caller's application, the employee and the purpose in Auth0's schema", () => {
    const detail = employmentVerification({ caller: { clientId: 'a2a-client', subject: 'a2a-client@clients' }, employeeId: 'auth0|jdoe', employeeEmail: 'jdoe@staff0.com' });
    expect(detail.type).toBe(EMPLOYMENT_VERIFICATION);
    expect(detail.instruction).toMatch(/a2a-client/);
    expect(detail.properties).toMatchObject({
      requester: { display: true, value: 'a2a-client' },
      employee: { display: true, value: 'auth0|jdoe' },
      email: { value: 'jdoe@staff0.com' },
      purpose: { value: expect.stringMatching(/active employee/) },
    });
  });

  it('reads the caller from the A2A user the bearer guard built', () => {
    expect(callerOf({ isAuthenticated: true, userName: 'a2a-client@clients', clientId: 'a2a-client' } as never)).toEqual({
      clientId: 'a2a-client',
      subject: 'a2a-client@clients',
    });
    expect(callerOf(undefined)).toBeUndefined();
  });

  it('sends the details with the consent request of is_active_employee', async () => {
    const requestConsent = vi.fn<CibaAuthorizer['requestConsent']>(async () => 'token');
    const tools = createTools({
      management: { findUserByEmail: vi.fn(async () => undefined) },
      ciba: { requestConsent, resumeConsent: vi.fn(async () => 'token') },
      hrApi: { employmentStatus: vi.fn(async () => ({ employeeId: 'auth0|jdoe', name: 'John Doe', active: true })) },
    });
    const session = tools.session(new AbortController().signal, { onConsentPending: vi.fn(), onConsentSettled: vi.fn() }, {
      clientId: 'partner-app',
      subject: 'partner-app@clients',
    });
    await session.run({ name: 'is_active_employee', args: { employee_id: 'auth0|jdoe' } });
    const details = requestConsent.mock.calls[0]?.[1].authorizationDetails;
    expect(details).toEqual([
      expect.objectContaining({
        type: EMPLOYMENT_VERIFICATION,
        properties: expect.objectContaining({ requester: expect.objectContaining({ value: 'partner-app' }) }),
      }),
    ]);
  });
});

describe('the HR Agent against the local tenant', () => {
  let sandbox: LocalSandbox;
  let email: LocalSandbox;
  beforeAll(async () => {
    [sandbox, email] = await Promise.all([startLocalSandbox(), startLocalSandbox({ ciba: { requestedExpiry: 600 } })]);
  });
  afterAll(async () => {
    await Promise.all([sandbox?.close(), email?.close()]);
  });

  it('shows the employee which application asks, about whom and why, and reads the record with the approved token', async () => {
    const run = await collect(ask(sandbox, question('jdoe@staff0.com')), employee(sandbox, 'auth0|jdoe', 'approve'));
    expect(run.events.at(-1)).toBe('COMPLETED');
    const [request] = await sandbox.consentRequests({ userId: 'auth0|jdoe' });
    expect(request?.channel).toBe('guardian-push');
    expect(request?.authorization_details).toEqual([
      expect.objectContaining({
        type: EMPLOYMENT_VERIFICATION,
        properties: expect.objectContaining({
          requester: expect.objectContaining({ value: 'a2a-client' }),
          employee: expect.objectContaining({ value: 'auth0|jdoe' }),
        }),
      }),
    ]);
    expect(run.artifactText).toBe('Yes, John Doe is an active employee of Staff0.');
  });

  it('says the request waits in the employee’s email when requested_expiry selects the email channel', async () => {
    const run = await collect(ask(email, question('jsmith@staff0.com')), employee(email, 'auth0|jsmith', 'approve'));
    const pending = run.statusTexts[run.events.indexOf('AUTH_REQUIRED') - 1];
    expect(pending).toMatch(/^Waiting for jsmith@staff0\.com to approve ".+" in the email sent to them/);
    const [request] = await email.consentRequests({ userId: 'auth0|jsmith' });
    expect(request?.channel).toBe('email');
    expect(run.artifactText).toBe('Yes, Jane Smith is an active employee of Staff0.');
  });
});
