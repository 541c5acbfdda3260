import type { NextFunction, Request, RequestHandler, Response } from 'express';
import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type ProtectedHeaderParameters,
} from 'jose';
import { DEFAULT_CLOCK_TOLERANCE_SECONDS } from './config.ts';

/**
 * The one bearer-token guard shared by the HR API and the HR Agent:
 * RS256 JWTs from the identity backend, checked for issuer, audience,
 * expiry and scope, with RFC 6750 §3 errors.
 */

export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

export class BearerError extends Error {
  constructor(
    readonly status: 400 | 401 | 403,
    /** Undefined when no credentials were sent at all (RFC 6750 §3.1: no error code then). */
    readonly code: BearerErrorCode | undefined,
    description: string,
  ) {
    super(description);
    this.name = 'BearerError';
  }
}

export interface Principal {
  sub: string;
  clientId: string | undefined;
  scopes: string[];
  claims: JWTPayload;
  /** The token's verified protected header (`alg`, `kid`, `typ`). */
  header: ProtectedHeaderParameters;
}

export interface BearerPolicy {
  issuer: string;
  audience: string;
  /** Every one of these scopes is required. */
  scopes: string[];
  realm: string;
  /** Key source; defaults to the issuer's `/.well-known/jwks.json`, cached by jose. */
  jwks?: JWTVerifyGetKey;
  /**
   * Seconds an `iat` or `nbf` may lie in the future (the issuer's clock ahead of ours);
   * default DEFAULT_CLOCK_TOLERANCE_SECONDS. `exp` stays exact: an expired token is expired.
   */
  clockToleranceSeconds?: number;
}


export function jwksFor(issuer: string): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL('.well-known/jwks.json', issuer));
}

/** RFC 6750 §2.1: `"Bearer" 1*SP b64token`; the scheme name is case-insensitive (RFC 9110 §11.1). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const BEARER_SCHEME = /^Bearer(?: |$)/i;

export async function verifyBearer(
  authorization: string | undefined,
  policy: BearerPolicy & { jwks: JWTVerifyGetKey },
): Promise<Principal> {
  if (authorization === undefined || authorization === '') {
    throw new BearerError(401, undefined, 'A bearer token is required');
  }
  // Another scheme (Basic, DPoP, …) is no attempt at bearer auth: RFC 6750 §3.1
  // answers it like a missing token, with a challenge and no error code.
  if (!BEARER_SCHEME.test(authorization)) {
    throw new BearerError(401, undefined, 'A bearer token is required');
  }
  const match = BEARER.exec(authorization);
  if (!match?.[1]) {
    throw new BearerError(400, 'invalid_request', 'The Authorization header must be "Bearer <token>"');
  }
  let payload: JWTPayload;
  let header: ProtectedHeaderParameters;
  const tolerance = policy.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  try {
    // jose applies the tolerance to nbf (and exp, made exact again below); it never looks at a future iat.
    ({ payload, protectedHeader: header } = await jwtVerify(match[1], policy.jwks, {
      issuer: policy.issuer,
      audience: policy.audience,
      algorithms: ['RS256'],
      requiredClaims: ['sub', 'exp'],
      clockTolerance: tolerance,
    }));
  } catch (error) {
    throw new BearerError(401, 'invalid_token', describeJoseError(error));
  }
  const now = Math.floor(Date.now() / 1000);
  // RFC 7519 §4.1.4: not accepted on or after exp (jose has checked it is a number).
  if ((payload.exp as number) <= now) throw new BearerError(401, 'invalid_token', 'The access token expired');
  // RFC 7519 §4.1.6: a token "issued" in the future was minted by a clock or a key we should not trust.
  if (payload.iat !== undefined && payload.iat > now + tolerance) {
    throw new BearerError(401, 'invalid_token', "The access token's iat claim is not accepted");
  }
  // jose checks that `sub` is present, not that it is a string; callers compare it to ids.
  if (typeof payload.sub !== 'string' || payload.sub === '') {
    throw new BearerError(401, 'invalid_token', "The access token's sub claim is not accepted");
  }
  const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
  const missing = policy.scopes.filter((s) => !scopes.includes(s));
  if (missing.length > 0) {
    throw new BearerError(403, 'insufficient_scope', `The token lacks the scope ${missing.join(' ')}`);
  }
  const azp = payload.azp ?? payload.client_id;
  return {
    sub: payload.sub,
    clientId: typeof azp === 'string' ? azp : undefined,
    scopes,
    claims: payload,
    header,
  };
}

function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'The access token expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `The access token's ${error.claim} claim is not accepted`;
  if (error instanceof joseErrors.JOSEError) return 'The access token is invalid';
  return 'The access token could not be verified';
}

/** The `WWW-Authenticate` value for an error, per RFC 6750 §3. */
export function bearerChallenge(error: BearerError, policy: Pick<BearerPolicy, 'realm' | 'scopes'>): string {
  const params = [`realm="${policy.realm}"`];
  if (error.code !== undefined) {
    params.push(`error="${error.code}"`, `error_description="${error.message.replace(/["\\]/g, '')}"`);
  }
  if (error.code === 'insufficient_scope') params.push(`scope="${policy.scopes.join(' ')}"`);
  return `Bearer ${params.join(', ')}`;
}

export function sendBearerError(res: Response, error: BearerError, policy: BearerPolicy): void {
  res
    .status(error.status)
    .set('WWW-Authenticate', bearerChallenge(error, policy))
    .json(error.code === undefined ? { error: 'unauthorized', error_description: error.message } : { error: error.code, error_description: error.message });
}

/** Express middleware: verified principal in `res.locals.principal`, RFC 6750 errors otherwise. */
export function requireBearer(policy: BearerPolicy): RequestHandler {
  const jwks = policy.jwks ?? jwksFor(policy.issuer);
  return (req: Request, res: Response, next: NextFunction) => {
    verifyBearer(req.headers.authorization, { ...policy, jwks }).then(
      (principal) => {
        res.locals.principal = principal;
        next();
      },
      (error: unknown) => {
        if (error instanceof BearerError) sendBearerError(res, error, policy);
        else next(error);
      },
    );
  };
}
