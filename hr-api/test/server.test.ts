import { createServer, type Server } from 'node:http';
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPLOYMENT_VERIFICATION } from '../authorization-details.ts';
import { createHrApi, type HrApi } from '../server.ts';
import { listenLocal } from '../../sandbox/http-listener.ts';

const ISSUER = 'https://staff0.test/';
const AUDIENCE = 'https://staff0/api';

type SigningKey = CryptoKey;

let privateKey: SigningKey;
let strangerKey: SigningKey;
let publicJwk: JWK;
let hrApi: HrApi;
let baseUrl: string;

async function token(claims: JWTPayload, options: { key?: SigningKey; kid?: string; expiresIn?: string | number } = {}) {
  return new SignJWT({ scope: 'openid read:employee', azp: 'hr-agent', iss: ISSUER, aud: AUDIENCE, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'test-key' })
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '5m')
    .sign(options.key ?? privateKey);
}

/** Builds a compact JWS with any header/claims and a signature we choose, to forge tokens. */
function forge(header: object, claims: object, signature = ''): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(claims)}.${signature}`;
}

function claimsFor(sub: string): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, aud: AUDIENCE, sub, scope: 'read:employee', iat: now, exp: now + 300 };
}

async function get(path: string, authorization?: string) {
  const response = await fetch(`${baseUrl}${path}`, {
    headers: authorization === undefined ? {} : { authorization },
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body, challenge: response.headers.get('www-authenticate'), headers: response.headers };
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  strangerKey = (await generateKeyPair('RS256')).privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  hrApi = createHrApi({ issuer: ISSUER, audience: AUDIENCE, jwks: createLocalJWKSet({ keys: [publicJwk] }) });
  baseUrl = await hrApi.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await hrApi.close();
});

describe('GET /employees/:id with the employee’s own token', () => {
  it('returns the minimal record of an active employee', async () => {
    const res = await get('/employees/auth0%7Cjdoe', `Bearer ${await token({ sub: 'auth0|jdoe' })}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: 'auth0|jdoe', name: 'John Doe', employment_status: 'active' });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('also accepts the id with an unencoded pipe', async () => {
    const res = await get('/employees/auth0|jsmith', `Bearer ${await token({ sub: 'auth0|jsmith' })}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: 'auth0|jsmith', name: 'Jane Smith', employment_status: 'active' });
  });

  it('reports a former employee as terminated, without the end date or any other detail', async () => {
    const res = await get('/employees/auth0%7Cblee', `Bearer ${await token({ sub: 'auth0|blee' })}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: 'auth0|blee', name: 'Brenda Lee', employment_status: 'terminated' });
  });

  it('answers 404 not_found for an unknown id whose owner holds a valid token', async () => {
    const res = await get('/employees/auth0%7Cghost', `Bearer ${await token({ sub: 'auth0|ghost' })}`);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: 'not_found' });
    expect(res.challenge).toBeNull();
  });

  it('accepts a case-insensitive scheme name and several spaces (RFC 6750 §2.1)', async () => {
    const res = await get('/employees/auth0%7Cjdoe', `bearer   ${await token({ sub: 'auth0|jdoe' })}`);
    expect(res.status).toBe(200);
  });
});

describe('consent is per employee', () => {
  it("refuses John's token for Jane's record with 403 insufficient_scope and no record", async () => {
    const res = await get('/employees/auth0%7Cjsmith', `Bearer ${await token({ sub: 'auth0|jdoe' })}`);
    expect(res.status).toBe(403);
    expect(res.challenge).toMatch(/^Bearer realm="Staff0 HR API", error="insufficient_scope", error_description="[^"]+", scope="read:employee"$/);
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'The token does not grant access to this employee' });
  });

  it('answers 403 alike for an unknown id, so a token never probes which ids exist', async () => {
    const res = await get('/employees/auth0%7Cghost', `Bearer ${await token({ sub: 'auth0|jdoe' })}`);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ error: 'insufficient_scope' });
  });

  it('refuses a client-credentials token (sub "<client>@clients") for any employee', async () => {
    const res = await get('/employees/auth0%7Cjdoe', `Bearer ${await token({ sub: 'a2a-client@clients', gty: 'client-credentials' })}`);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ error: 'insufficient_scope' });
  });
});

describe('authorization_details narrow a consent token (RFC 9396 §9.1)', () => {
  const verification = (employee: string) => ({
    type: EMPLOYMENT_VERIFICATION,
    instruction: 'a2a-client asks whether you are an active employee',
    properties: { employee: { display: true, name: 'Employee', display_order: '2', value: employee } },
  });

  it('reads the record the approved verification names', async () => {
    const res = await get('/employees/auth0%7Cjdoe', `Bearer ${await token({ sub: 'auth0|jdoe', authorization_details: [verification('auth0|jdoe')] })}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: 'auth0|jdoe' });
  });

  it("refuses a token whose details name someone else, even for the subject's own record", async () => {
    const jdoeApprovedJane = await token({ sub: 'auth0|jdoe', authorization_details: [verification('auth0|jsmith')] });
    for (const id of ['auth0%7Cjdoe', 'auth0%7Cjsmith']) {
      const res = await get(`/employees/${id}`, `Bearer ${jdoeApprovedJane}`);
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ error: 'insufficient_scope' });
    }
  });

  it('refuses details of another type, or malformed details, rather than ignoring them', async () => {
    for (const authorization_details of [[{ type: 'payment_initiation', employee: 'auth0|jdoe' }], [], 'auth0|jdoe', { employee: 'auth0|jdoe' }]) {
      const res = await get('/employees/auth0%7Cjdoe', `Bearer ${await token({ sub: 'auth0|jdoe', authorization_details })}`);
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ error: 'insufficient_scope', error_description: expect.stringMatching(/authorization_details/) });
    }
  });

  it('keeps a token without details (a CIBA request that sent none, as Auth0 issues it) to its own subject', async () => {
    expect((await get('/employees/auth0%7Cjdoe', `Bearer ${await token({ sub: 'auth0|jdoe' })}`)).status).toBe(200);
    expect((await get('/employees/auth0%7Cjsmith', `Bearer ${await token({ sub: 'auth0|jdoe' })}`)).status).toBe(403);
  });
});

describe('RFC 6750 errors', () => {
  it('answers a request without a token with 401, a realm and no error code (§3.1)', async () => {
    const res = await get('/employees/auth0%7Cjdoe');
    expect(res.status).toBe(401);
    expect(res.challenge).toBe('Bearer realm="Staff0 HR API"');
    expect(res.body).toMatchObject({ error: 'unauthorized' });
  });

  it('checks the token before the id, so an unknown id without a token is 401 too', async () => {
    const res = await get('/employees/auth0%7Cghost');
    expect(res.status).toBe(401);
    expect(res.challenge).toBe('Bearer realm="Staff0 HR API"');
  });

  it('treats another authentication scheme like no token', async () => {
    const res = await get('/employees/auth0%7Cjdoe', 'Basic aHItYWdlbnQ6c2VjcmV0');
    expect(res.status).toBe(401);
    expect(res.challenge).toBe('Bearer realm="Staff0 HR API"');
  });

  it.each([
    ['an empty bearer', 'Bearer'],
    ['a bearer with only spaces', 'Bearer   '],
    ['a token with characters outside b64token', 'Bearer abc def'],
    ['a token with quotes', 'Bearer "abc"'],
  ])('answers %s with 400 invalid_request (§3.1)', async (_what, header) => {
    const res = await get('/employees/auth0%7Cjdoe', header);
    expect(res.status).toBe(400);
    expect(res.challenge).toMatch(/^Bearer realm="Staff0 HR API", error="invalid_request", error_description="[^"]+"$/);
    expect(res.body).toMatchObject({ error: 'invalid_request' });
  });

  const invalidTokens: Array<[string, () => Promise<string>]> = [
    ['a garbage token', async () => 'not-a-jwt'],
    ['a token signed by an unknown key', async () => token({ sub: 'auth0|jdoe' }, { key: strangerKey })],
    ['a token with an unknown kid', async () => token({ sub: 'auth0|jdoe' }, { kid: 'other' })],
    ['a token from another issuer', async () => token({ sub: 'auth0|jdoe', iss: 'https://evil.test/' })],
    ['a token for another audience', async () => token({ sub: 'auth0|jdoe', aud: 'https://staff0/agent' })],
    ['an expired token', async () => token({ sub: 'auth0|jdoe' }, { expiresIn: Math.floor(Date.now() / 1000) - 60 })],
    ['an unsigned token (alg none)', async () => forge({ alg: 'none', typ: 'JWT' }, claimsFor('auth0|jdoe'))],
    [
      'an HS256 token keyed with the public key',
      async () => {
        const { createHmac } = await import('node:crypto');
        const header = Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'test-key' })).toString('base64url');
        const body = Buffer.from(JSON.stringify(claimsFor('auth0|jdoe'))).toString('base64url');
        const mac = createHmac('sha256', JSON.stringify(publicJwk)).update(`${header}.${body}`).digest('base64url');
        return `${header}.${body}.${mac}`;
      },
    ],
    ['a token whose signature was swapped onto other claims', async () => {
      const [header, , signature] = (await token({ sub: 'auth0|jsmith' })).split('.');
      const body = Buffer.from(JSON.stringify(claimsFor('auth0|jdoe'))).toString('base64url');
      return `${header}.${body}.${signature}`;
    }],
    ['a token without exp', async () => {
      return new SignJWT({ scope: 'read:employee' })
        .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject('auth0|jdoe')
        .sign(privateKey);
    }],
    ['a token whose sub is not a string', async () => token({ sub: 42 as unknown as string })],
  ];

  it.each(invalidTokens)('answers %s with 401 invalid_token (§3.1)', async (_what, make) => {
    const res = await get('/employees/auth0%7Cjdoe', `Bearer ${await make()}`);
    expect(res.status).toBe(401);
    expect(res.challenge).toMatch(/^Bearer realm="Staff0 HR API", error="invalid_token", error_description="[^"]+"$/);
    expect(res.body).toMatchObject({ error: 'invalid_token' });
  });

  it('answers a token without read:employee with 403 insufficient_scope naming the scope (§3.1)', async () => {
    const res = await get('/employees/auth0%7Cjdoe', `Bearer ${await token({ sub: 'auth0|jdoe', scope: 'openid profile' })}`);
    expect(res.status).toBe(403);
    expect(res.challenge).toMatch(/error="insufficient_scope".*scope="read:employee"$/);
    expect(res.body).toMatchObject({ error: 'insufficient_scope' });
  });

  it('does not take a scope that merely contains read:employee as a substring', async () => {
    const res = await get('/employees/auth0%7Cjdoe', `Bearer ${await token({ sub: 'auth0|jdoe', scope: 'read:employees read:employee_status' })}`);
    expect(res.status).toBe(403);
  });
});

describe('untrusted ids and routes never cause a 500', () => {
  const ids: Array<[string, string]> = [
    ['a broken percent-encoding', '%E0%A4%A'],
    ['a lone percent sign', '%'],
    ['an encoded NUL byte', 'auth0%7Cjdoe%00'],
    ['an encoded slash', 'auth0%2F..%2Fjdoe'],
    ['a very long id', 'a'.repeat(8000)],
    ['unicode', '%F0%9F%98%80'],
    ['prototype keys', '__proto__'],
    ['constructor', 'constructor'],
  ];

  it.each(ids)('answers %s with a client error', async (_what, id) => {
    const res = await get(`/employees/${id}`, `Bearer ${await token({ sub: 'auth0|jdoe' })}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(typeof res.body).toBe('object');
  });

  it('answers an id that matches the token but not a record with 404', async () => {
    const id = 'x'.repeat(5000);
    const res = await get(`/employees/${id}`, `Bearer ${await token({ sub: id })}`);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: 'not_found' });
  });

  it('answers __proto__ held by its own token with 404, not an inherited object', async () => {
    const res = await get('/employees/__proto__', `Bearer ${await token({ sub: '__proto__' })}`);
    expect(res.status).toBe(404);
  });

  it('answers a broken percent-encoding with 400 invalid_request once authenticated', async () => {
    const res = await get('/employees/%E0%A4%A', `Bearer ${await token({ sub: 'auth0|jdoe' })}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request' });
  });

  it('answers other methods on a record with 405 once authenticated', async () => {
    const response = await fetch(`${baseUrl}/employees/auth0%7Cjdoe`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await token({ sub: 'auth0|jdoe' })}` },
    });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers unknown routes with 404 JSON', async () => {
    const res = await get('/nothing/here');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: 'not_found' });
  });

  it('keeps serving after all of the above', async () => {
    const res = await get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
  });
});

describe('keys from the issuer', () => {
  let issuerServer: Server;
  let issuer: string;
  let api: HrApi;
  let apiUrl: string;
  const jwksRequests: string[] = [];

  beforeAll(async () => {
    issuerServer = createServer((req, res) => {
      jwksRequests.push(req.url ?? '');
      if (req.url === '/.well-known/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] }));
      } else {
        res.writeHead(404).end();
      }
    });
    issuer = `${await listenLocal(issuerServer)}/`;
    api = createHrApi({ issuer, audience: AUDIENCE });
    apiUrl = await api.listen(0, '127.0.0.1');
  });

  afterAll(async () => {
    await api.close();
    await new Promise((resolve) => issuerServer.close(resolve));
  });

  it("fetches the issuer's /.well-known/jwks.json and caches it", async () => {
    const signed = await new SignJWT({ scope: 'read:employee' })
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject('auth0|akhan')
      .setExpirationTime('5m')
      .sign(privateKey);
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${apiUrl}/employees/auth0%7Cakhan`, { headers: { authorization: `Bearer ${signed}` } });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ id: 'auth0|akhan', name: 'Ali Khan', employment_status: 'active' });
    }
    expect(jwksRequests).toEqual(['/.well-known/jwks.json']);
  });
});

describe('lifecycle', () => {
  it('can close before listening and after closing', async () => {
    const api = createHrApi({ issuer: ISSUER, audience: AUDIENCE, jwks: createLocalJWKSet({ keys: [] }) });
    await api.close();
    const url = await api.listen(0, '127.0.0.1');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await api.close();
    await api.close();
  });

  it('rejects listen on a port in use', async () => {
    const api = createHrApi({ issuer: ISSUER, audience: AUDIENCE, jwks: createLocalJWKSet({ keys: [] }) });
    const port = Number(new URL(baseUrl).port);
    await expect(api.listen(port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});

describe('time claims (TOKEN_CLOCK_TOLERANCE_SECONDS)', () => {
  const signed = (claims: JWTPayload) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'JWT' }).sign(privateKey);

  it.each([
    ['an iat an hour in the future', { iat: 3600 }, 'iat'],
    ['an nbf an hour in the future', { nbf: 3600 }, 'nbf'],
  ])('answers a token with %s 401 invalid_token', async (_what, ahead, claim) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = claimsFor('auth0|jdoe');
    for (const [name, seconds] of Object.entries(ahead)) claims[name] = now + seconds;
    const res = await get('/employees/auth0%7Cjdoe', `Bearer ${await signed(claims)}`);
    expect(res.status).toBe(401);
    expect(res.challenge).toMatch(/^Bearer realm="Staff0 HR API", error="invalid_token"/);
    expect(res.challenge).toContain(`${claim} claim`);
  });

  it('follows its configured tolerance, accepting a small skew and Auth0\'s typ JWT', async () => {
    const strict = createHrApi({ issuer: ISSUER, audience: AUDIENCE, jwks: createLocalJWKSet({ keys: [publicJwk] }), clockToleranceSeconds: 0 });
    const strictUrl = await strict.listen(0, '127.0.0.1');
    try {
      const claims = { ...claimsFor('auth0|jdoe'), iat: Math.floor(Date.now() / 1000) + 3 };
      const jwt = await signed(claims);
      expect((await get('/employees/auth0%7Cjdoe', `Bearer ${jwt}`)).status).toBe(200);
      const refused = await fetch(`${strictUrl}/employees/auth0%7Cjdoe`, { headers: { authorization: `Bearer ${jwt}` } });
      expect(refused.status).toBe(401);
    } finally {
      await strict.close();
    }
  });
});
