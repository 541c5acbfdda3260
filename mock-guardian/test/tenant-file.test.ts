import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadOrCreateSigningKey, SIGNING_KEY_FILE } from '../signing-key.ts';
import { createTenantDirectory } from '../tenant-directory.ts';
import { DEFAULT_TENANT_FILE, loadTenantFile, parseTenantFile, TenantFileError } from '../tenant-file.ts';
import { createTenant } from '../tenant.ts';

const problemsOf = (input: unknown): string[] => {
  try {
    parseTenantFile(input, 'test');
  } catch (error) {
    if (error instanceof TenantFileError) return error.problems;
    throw error;
  }
  return [];
};

describe('tenant file', () => {
  it('loads the built-in tenant with the documented applications and users', () => {
    const file = loadTenantFile(DEFAULT_TENANT_FILE);
    expect(file.applications.map((a) => a.client_id)).toEqual(['a2a-client', 'hr-agent', 'hr-agent-ping']);
    expect(file.users.find((u) => u.user_id === 'auth0|jdoe')).toMatchObject({ email: 'jdoe@staff0.com', guardian: { push: true } });
    expect(file.users.some((u) => !u.guardian.push)).toBe(true);
    expect(file.settings).toEqual({
      cibaRateLimitPerUserPerMinute: 5,
      cibaRateLimitPerIpPerMinute: 500,
      cibaDefaultExpiry: 300,
      cibaInterval: 5,
      expiryError: 'access_denied',
      accessTokenLifetime: 86_400,
    });
  });

  it('fills in {{ISSUER}} and, when asked, the current {{HR_AGENT_URL}}', () => {
    let agentUrl = 'http://127.0.0.1:10050/';
    const directory = createTenantDirectory(loadTenantFile(), 'http://127.0.0.1:4000/', () => ({ HR_AGENT_URL: agentUrl }));
    expect(directory.findApi('http://127.0.0.1:4000/api/v2/')?.name).toBe('Auth0 Management API');
    expect(directory.clientGrantScopes('hr-agent', 'http://127.0.0.1:4000/api/v2/')).toEqual(['read:users']);
    expect(directory.notificationEndpoint('hr-agent-ping')).toBe('http://127.0.0.1:10050/ciba/notify');
    agentUrl = 'http://127.0.0.1:5555';
    expect(directory.notificationEndpoint('hr-agent-ping')).toBe('http://127.0.0.1:5555/ciba/notify');
    expect(directory.notificationEndpoint('hr-agent')).toBeUndefined();
  });

  it("reads an API's authorization_details types and an application's notification channels, and checks them", () => {
    const file = loadTenantFile();
    expect(file.apis.find((a) => a.identifier === 'https://staff0/api')?.authorization_details).toEqual([
      { type: 'urn:auth0:schemas:authorization-details:v1:employment_verification' },
    ]);
    expect(file.applications.find((a) => a.client_id === 'hr-agent')?.async_approval_notification_channels).toEqual(['guardian-push', 'email']);

    const raw = JSON.parse(readFileSync(DEFAULT_TENANT_FILE, 'utf8')) as { apis: Record<string, unknown>[]; applications: Record<string, unknown>[] };
    raw.apis[1] = { ...raw.apis[1], authorization_details: [{ type: 'a' }, { type: 'a' }, { kind: 'b' }] };
    raw.applications[1] = { ...raw.applications[1], async_approval_notification_channels: ['sms'] };
    raw.applications[2] = { ...raw.applications[2], async_approval_notification_channels: [] };
    const problems = problemsOf(raw);
    expect(problems).toContain('apis[1].authorization_details[].type "a" appears more than once');
    expect(problems).toContain('apis[1].authorization_details[2] has the unknown field "kind" (allowed: type)');
    expect(problems).toContain('applications[1].async_approval_notification_channels[0] must be "guardian-push" or "email"');
    expect(problems).toContain('applications[2].async_approval_notification_channels must name at least one channel');
  });

  it('reports every problem with its path', () => {
    const file = JSON.parse(readFileSync(DEFAULT_TENANT_FILE, 'utf8')) as {
      apis: unknown[];
      applications: unknown[];
      users: Record<string, unknown>[];
    };
    file.users[0] = { ...file.users[0], email: 'not-an-email', guardian: { push: 'yes' } };
    file.applications.push({ name: 'Dup', client_id: 'a2a-client', client_secret: 'long-enough-secret', grant_types: ['password'] });
    file.apis.push({ name: 'Bad', identifier: '{{NOPE}}/x', scopes: [] });
    const problems = problemsOf(file);
    expect(problems).toContain('users[0].email "not-an-email" is not an email address');
    expect(problems).toContain('users[0].guardian.push must be true or false');
    expect(problems).toContain('applications[3].grant_types[0] must be "client_credentials" or "urn:openid:params:grant-type:ciba"');
    expect(problems).toContain('applications[].client_id "a2a-client" appears more than once');
    expect(problems.some((p) => p.includes('unknown placeholder {{NOPE}}'))).toBe(true);
  });

  it('refuses client grants for undeclared APIs, unknown fields and bad settings', () => {
    const problems = problemsOf({
      settings: { cibaInterval: 0, expiryError: 'never', extra: true },
      apis: [],
      applications: [
        {
          name: 'App',
          client_id: 'app',
          client_secret: 'sixteen-characters',
          grant_types: ['client_credentials'],
          client_grants: [{ audience: 'https://missing/', scope: ['x'] }],
        },
      ],
      users: [],
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'settings has the unknown field "extra" (allowed: cibaRateLimitPerUserPerMinute, cibaRateLimitPerIpPerMinute, cibaDefaultExpiry, cibaInterval, expiryError, accessTokenLifetime)',
        'settings.cibaInterval must be a whole number from 1 to 60',
        'settings.expiryError must be "expired_token" or "access_denied"',
        'applications[0].client_grants[0].audience "https://missing/" is not one of the declared apis',
      ]),
    );
  });

  it('names the file when it cannot be read or parsed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenant-file-'));
    const broken = join(dir, 'tenant.json');
    writeFileSync(broken, '{ nope');
    expect(() => loadTenantFile(broken)).toThrow(/Invalid tenant file .*tenant\.json:\n {2}- is not valid JSON/);
    expect(() => loadTenantFile(join(dir, 'missing.json'))).toThrow(/cannot be read \(ENOENT\)/);
    expect(() => createTenant({ tenantFile: join(dir, 'missing.json') })).toThrow(TenantFileError);
    expect(() => createTenant({ settings: { cibaInterval: -1 } })).toThrow(/cibaInterval/);
  });
});

describe('signing key', () => {
  it('is generated once, kept private on disk, and reused', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tenant-keys-')), 'state');
    const first = await loadOrCreateSigningKey(dir);
    expect(first).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(statSync(join(dir, SIGNING_KEY_FILE)).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateSigningKey(dir);
    expect(second.kid).toBe(first.kid);
    const inMemory = await loadOrCreateSigningKey(undefined);
    expect(inMemory.kid).not.toBe(first.kid);
  });
});
