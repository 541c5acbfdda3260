import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDetailsForChannel, parseAuthorizationDetails } from '../authorization-details.ts';
import { bcAuthorize, control, decodeJwtPayload, pollToken, startTenant, type RunningTenant } from './relying-party.ts';

/** Rich Authorization Requests (RFC 9396) on /bc-authorize, as Auth0's "User Authorization with CIBA". */

const TYPE = 'urn:auth0:schemas:authorization-details:v1:employment_verification';
/** Auth0's schema, the one its Guardian app shows ("Configure Rich Authorization Requests"). */
const VERIFICATION = {
  type: TYPE,
  instruction: 'A2A Client asks whether you are an active employee',
  properties: {
    requester: { display: true, name: 'Requested by', display_order: '1', value: 'a2a-client' },
    employee: { display: true, name: 'Employee', display_order: '2', value: 'auth0|jdoe' },
  },
};

describe('authorization_details on /bc-authorize', () => {
  let running: RunningTenant;
  beforeAll(async () => {
    running = await startTenant();
  });
  afterAll(() => running.tenant.close());

  it('shows the details in the control API and puts them in the token response and the access token', async () => {
    const started = await bcAuthorize(running.issuer, { authorization_details: JSON.stringify([VERIFICATION]) });
    expect(started.status).toBe(200);
    const [request] = running.tenant.requests.list({ userId: 'auth0|jdoe', status: 'pending' });
    const viewed = await control(running.issuer, `/requests/${request?.id ?? ''}`);
    expect(viewed.body).toMatchObject({ channel: 'guardian-push', authorization_details: [VERIFICATION] });

    await control(running.issuer, `/requests/${request?.id ?? ''}/approve`, { method: 'POST' });
    const token = await pollToken(running.issuer, started.body.auth_req_id as string);
    expect(token.status).toBe(200);
    // RFC 9396 §7: the token response names the details granted; §9: so does the JWT access token.
    expect(token.body.authorization_details).toEqual([VERIFICATION]);
    expect(decodeJwtPayload(token.body.access_token as string).authorization_details).toEqual([VERIFICATION]);
  });

  it('issues tokens without authorization_details when none were asked for', async () => {
    const started = await bcAuthorize(running.issuer, { login_hint: JSON.stringify({ format: 'iss_sub', iss: running.issuer, sub: 'auth0|jsmith' }) });
    const [request] = running.tenant.requests.list({ userId: 'auth0|jsmith', status: 'pending' });
    expect(request).not.toHaveProperty('authorization_details');
    await control(running.issuer, `/requests/${request?.id ?? ''}/approve`, { method: 'POST' });
    const token = await pollToken(running.issuer, started.body.auth_req_id as string);
    expect(token.body).not.toHaveProperty('authorization_details');
    expect(decodeJwtPayload(token.body.access_token as string)).not.toHaveProperty('authorization_details');
  });

  it.each([
    ['not JSON', '[{"type":'],
    ['an object, not an array', JSON.stringify(VERIFICATION)],
    ['an empty array', '[]'],
    ['an entry without a type', JSON.stringify([{ employee: 'auth0|jdoe' }])],
    ['a type that is not a string', JSON.stringify([{ type: 7 }])],
    ['an entry that is not an object', JSON.stringify(['employment_verification'])],
    ['a type the API does not register', JSON.stringify([{ type: 'payment_initiation' }])],
    ['two objects on Guardian push', JSON.stringify([VERIFICATION, VERIFICATION])],
    ["Auth0's schema without an instruction", JSON.stringify([{ ...VERIFICATION, instruction: undefined }])],
    ["Auth0's schema with a property that has no value", JSON.stringify([{ ...VERIFICATION, properties: { a: { name: 'A' } } }])],
    ['too many entries', JSON.stringify(Array.from({ length: 11 }, () => VERIFICATION))],
    ['too long', JSON.stringify([{ ...VERIFICATION, instruction: 'x'.repeat(9000) }])],
  ])('refuses authorization_details that are %s with invalid_authorization_details (RFC 9396 §5)', async (_why, value) => {
    const before = running.tenant.requests.list().length;
    const response = await bcAuthorize(running.issuer, { authorization_details: value });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_authorization_details');
    expect(running.tenant.requests.list()).toHaveLength(before);
  });
});

describe('parseAuthorizationDetails', () => {
  const api = { name: 'HR', identifier: 'https://staff0/api', scopes: [], authorization_details: [{ type: TYPE }, { type: 'plain' }] };

  it('keeps every field of a registered type as sent', () => {
    const plain = { type: 'plain', employee: 'auth0|jdoe', nested: { a: [1, 2] } };
    expect(parseAuthorizationDetails(JSON.stringify([VERIFICATION, plain]), api)).toEqual([VERIFICATION, plain]);
  });

  it('takes any registered type on the email channel, and only one object of Auth0 schema on Guardian push', () => {
    const plain = [{ type: 'plain', employee: 'auth0|jdoe' }];
    expect(() => checkDetailsForChannel(plain, 'email')).not.toThrow();
    expect(() => checkDetailsForChannel(plain, 'guardian-push')).toThrow(
      expect.objectContaining({ error: 'invalid_authorization_details', error_description: expect.stringMatching(/Auth0's schema/) }),
    );
    expect(() => checkDetailsForChannel([VERIFICATION], 'guardian-push')).not.toThrow();
  });

  it('refuses deeply nested details', () => {
    let nested: unknown = 'x';
    for (let i = 0; i < 10; i += 1) nested = { nested };
    expect(() => parseAuthorizationDetails(JSON.stringify([{ type: TYPE, nested }]), api)).toThrow(
      expect.objectContaining({ error_description: expect.stringMatching(/nest/) }),
    );
  });

  it('refuses authorization_details without an audience, since types are registered on an API', () => {
    expect(() => parseAuthorizationDetails(JSON.stringify([VERIFICATION]), undefined)).toThrow(
      expect.objectContaining({ error: 'invalid_authorization_details', error_description: expect.stringMatching(/need an audience/) }),
    );
  });
});
