import { STATUS_CODES } from 'node:http';
import { Router, type Response } from 'express';
import type { JWTVerifyGetKey } from 'jose';
import { BearerError, bearerChallenge, verifyBearer, type BearerPolicy } from '../sandbox/bearer.ts';
import { managementAudienceOf } from '../sandbox/config.ts';
import type { TenantUser } from './tenant-file.ts';

/**
 * The slice of Auth0's Management API v2 the HR Agent uses:
 * `GET /api/v2/users-by-email`. Tokens are checked by the shared bearer
 * guard against the tenant's own keys; errors keep Auth0's Management API
 * body shape (`statusCode`, `error`, `message`, `errorCode`).
 */

export interface ManagementApiOptions {
  issuer: string;
  jwks: JWTVerifyGetKey;
  users: readonly TenantUser[];
}

/** A user as Auth0's Management API returns it (no MFA enrolment details). */
export interface ManagementUser extends Omit<TenantUser, 'guardian'> {
  nickname: string;
  updated_at: string;
  identities: { connection: string; provider: string; user_id: string; isSocial: boolean }[];
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,190}$/;

export const READ_USERS = 'read:users';

export function toManagementUser(user: TenantUser): ManagementUser {
  const bar = user.user_id.indexOf('|');
  const provider = bar > 0 ? user.user_id.slice(0, bar) : 'auth0';
  const localId = bar > 0 ? user.user_id.slice(bar + 1) : user.user_id;
  return {
    user_id: user.user_id,
    email: user.email,
    email_verified: user.email_verified,
    name: user.name,
    ...(user.given_name === undefined ? {} : { given_name: user.given_name }),
    ...(user.family_name === undefined ? {} : { family_name: user.family_name }),
    nickname: user.email.split('@')[0] ?? user.name,
    created_at: user.created_at,
    updated_at: user.created_at,
    identities: [{ connection: 'Username-Password-Authentication', provider, user_id: localId, isSocial: false }],
  };
}

function sendError(res: Response, status: number, message: string, errorCode: string): void {
  res.status(status).json({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', message, errorCode });
}

export function createManagementApi(options: ManagementApiOptions): Router {
  const policy: BearerPolicy & { jwks: JWTVerifyGetKey } = {
    issuer: options.issuer,
    audience: managementAudienceOf(options.issuer),
    scopes: [READ_USERS],
    realm: 'Management API',
    jwks: options.jwks,
  };
  const router = Router();

  router.use((req, res, next) => {
    res.set('Cache-Control', 'no-store');
    verifyBearer(req.headers.authorization, policy).then(
      () => next(),
      (error: unknown) => {
        if (!(error instanceof BearerError)) return next(error);
        res.set('WWW-Authenticate', bearerChallenge(error, policy));
        sendError(res, error.status, error.message, error.code ?? 'unauthorized');
      },
    );
  });

  router.get('/users-by-email', (req, res) => {
    const email = req.query.email;
    if (email === undefined || email === '') {
      return sendError(res, 400, 'Query validation error: Missing required property: email', 'invalid_query_string');
    }
    if (typeof email !== 'string' || email.length > 254 || !EMAIL.test(email)) {
      return sendError(res, 400, "Query validation error: 'email' must be a single email address", 'invalid_query_string');
    }
    const lower = email.toLowerCase();
    res.json(options.users.filter((u) => u.email.toLowerCase() === lower).map(toManagementUser));
  });

  router.use((_req, res) => sendError(res, 404, 'Not Found', 'not_found'));
  return router;
}
