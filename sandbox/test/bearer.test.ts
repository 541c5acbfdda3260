import { createServer, type Server } from 'node:http';
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWK, type JWTPayload, type JWTVerifyGetKey, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BearerError, bearerChallenge, jwksFor, verifyBearer } from '../bearer.ts';
import { listenLocal } from '../http-listener.ts';

const ISSUER = 'https://staff0.test/';
const AUDIENCE = 'https://staff0/agent';

let privateKey: CryptoKey;
let publicJwk: JWK;
let jwks: JWTVerifyGetKey;

const policy = () => ({ issuer: ISSUER, audience: AUDIENCE, scopes: ['read:employee_status'], realm: 'Staff0 HR Agent', jwks });

function sign(claims: JWTPayload): Promise<string> {
  const exp = Math.floor(Date.now() / 1000) + 300;
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'a2a-client@clients', scope: 'read:employee_status', exp, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .sign(privateKey);
}

async function rejection(authorization: string | undefined): Promise<BearerError> {
  try {
    await verifyBearer(authorization, policy());
  } catch (error) {
    if (error instanceof BearerError) return error;
    throw error;
  }
  throw new Error('expected a BearerError');
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' };
  jwks = createLocalJWKSet({ keys: [publicJwk] });
});

describe('verifyBearer', () => {
  it('returns the principal: sub, client id from azp, scopes', async () => {
    const principal = await verifyBearer(`Bearer ${await sign({ azp: 'a2a-client', scope: 'openid read:employee_status' })}`, policy());
    expect(principal.sub).toBe('a2a-client@clients');
    expect(principal.clientId).toBe('a2a-client');
    expect(principal.scopes).toEqual(['openid', 'read:employee_status']);
    expect(principal.claims.iss).toBe(ISSUER);
  });

  it('falls back to client_id when there is no azp (RFC 9068 §2.2)', async () => {
    const principal = await verifyBearer(`Bearer ${await sign({ client_id: 'other-client' })}`, policy());
    expect(principal.clientId).toBe('other-client');
  });

  it('accepts the scheme name in any case and several spaces (RFC 6750 §2.1)', async () => {
    const jwt = await sign({});
    await expect(verifyBearer(`BEARER ${jwt}`, policy())).resolves.toMatchObject({ sub: 'a2a-client@clients' });
    await expect(verifyBearer(`bearer  ${jwt}`, policy())).resolves.toMatchObject({ sub: 'a2a-client@clients' });
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['another scheme', 'Basic YTpi'],
    ['a scheme that only starts with Bearer', 'Bearerish abc'],
  ])('answers %s with 401 and no error code (RFC 6750 §3.1)', async (_what, header) => {
    const error = await rejection(header);
    expect(error.status).toBe(401);
    expect(error.code).toBeUndefined();
  });

  it.each([
    ['Bearer'],
    ['Bearer '],
    ['Bearer a b'],
    ['Bearer a,b'],
    ['Bearer =abc'],
  ])('answers the malformed header "%s" with 400 invalid_request', async (header) => {
    const error = await rejection(header);
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_request');
  });

  it.each([
    ['an expired token', { exp: Math.floor(Date.now() / 1000) - 10 }, 'The access token expired'],
    ['a wrong issuer', { iss: 'https://other.test/' }, "The access token's iss claim is not accepted"],
    ['a wrong audience', { aud: 'https://staff0/api' }, "The access token's aud claim is not accepted"],
    ['a numeric sub', { sub: 7 as unknown as string }, "The access token's sub claim is not accepted"],
    ['an empty sub', { sub: '' }, "The access token's sub claim is not accepted"],
  ])('answers %s with 401 invalid_token', async (_what, claims, description) => {
    const error = await rejection(`Bearer ${await sign(claims)}`);
    expect(error.status).toBe(401);
    expect(error.code).toBe('invalid_token');
    expect(error.message).toBe(description);
  });

  it.each([
    ['an iat an hour ahead', { iat: Math.floor(Date.now() / 1000) + 3600 }, "The access token's iat claim is not accepted"],
    ['an iat just beyond the tolerance', { iat: Math.floor(Date.now() / 1000) + 60 }, "The access token's iat claim is not accepted"],
    ['an nbf an hour ahead', { nbf: Math.floor(Date.now() / 1000) + 3600 }, "The access token's nbf claim is not accepted"],
    ['an exp one second ago, inside the tolerance', { exp: Math.floor(Date.now() / 1000) - 1 }, 'The access token expired'],
  ])('answers %s with 401 invalid_token (RFC 7519 §4.1)', async (_what, claims, description) => {
    const error = await rejection(`Bearer ${await sign(claims)}`);
    expect(error.status).toBe(401);
    expect(error.code).toBe('invalid_token');
    expect(error.message).toBe(description);
  });

  it('accepts an iat and nbf a few seconds ahead (clock skew within the tolerance) and typ JWT as Auth0 sends it', async () => {
    const now = Math.floor(Date.now() / 1000);
    const skewed = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'a2a-client@clients', scope: 'read:employee_status', exp: now + 300, iat: now + 3, nbf: now + 3 })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
      .sign(privateKey);
    await expect(verifyBearer(`Bearer ${skewed}`, policy())).resolves.toMatchObject({ sub: 'a2a-client@clients' });
    await expect(verifyBearer(`Bearer ${skewed}`, { ...policy(), clockToleranceSeconds: 0 })).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('answers a token whose audience list includes ours as valid', async () => {
    const principal = await verifyBearer(`Bearer ${await sign({ aud: ['https://staff0/api', AUDIENCE] })}`, policy());
    expect(principal.sub).toBe('a2a-client@clients');
  });

  it('answers a missing scope with 403 insufficient_scope naming it', async () => {
    const error = await rejection(`Bearer ${await sign({ scope: 'openid' })}`);
    expect(error.status).toBe(403);
    expect(error.code).toBe('insufficient_scope');
    expect(error.message).toBe('The token lacks the scope read:employee_status');
  });

  it('treats a non-string scope claim as no scopes', async () => {
    const error = await rejection(`Bearer ${await sign({ scope: ['read:employee_status'] })}`);
    expect(error.code).toBe('insufficient_scope');
  });
});

describe('bearerChallenge', () => {
  const challengePolicy = { realm: 'Staff0 HR Agent', scopes: ['read:employee_status'] };

  it('has only the realm when no credentials were sent', () => {
    expect(bearerChallenge(new BearerError(401, undefined, 'A bearer token is required'), challengePolicy)).toBe('Bearer realm="Staff0 HR Agent"');
  });

  it('adds the error, a description without quotes or backslashes, and the scope for insufficient_scope', () => {
    const challenge = bearerChallenge(new BearerError(403, 'insufficient_scope', 'needs "more" \\ scope'), challengePolicy);
    expect(challenge).toBe('Bearer realm="Staff0 HR Agent", error="insufficient_scope", error_description="needs more  scope", scope="read:employee_status"');
  });
});

describe('jwksFor', () => {
  let server: Server;
  let issuer: string;
  const paths: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] }));
    });
    issuer = `${await listenLocal(server)}/`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("reads the keys from the issuer's /.well-known/jwks.json (issuer with trailing slash)", async () => {
    const jwt = await new SignJWT({ scope: 'read:employee_status' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject('a2a-client@clients')
      .setExpirationTime('5m')
      .sign(privateKey);
    const principal = await verifyBearer(`Bearer ${jwt}`, { ...policy(), issuer, jwks: jwksFor(issuer) });
    expect(principal.sub).toBe('a2a-client@clients');
    expect(paths).toEqual(['/.well-known/jwks.json']);
  });

  it('answers 401 invalid_token, not a crash, when the issuer cannot be reached', async () => {
    const unreachable = 'http://127.0.0.1:9/';
    const jwt = await sign({ iss: unreachable });
    await expect(verifyBearer(`Bearer ${jwt}`, { ...policy(), issuer: unreachable, jwks: jwksFor(unreachable) })).rejects.toMatchObject({
      status: 401,
      code: 'invalid_token',
    });
  });
});
