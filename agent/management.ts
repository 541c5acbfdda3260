import * as oidc from 'openid-client';
import { getJson, type CallPolicy } from './call-policy.ts';
import { AgentError } from './errors.ts';
import type { IdentityClient } from './identity.ts';
import { parseEmployeeId } from './identifiers.ts';

/**
 * The subset of the Auth0 Management API the agent uses: find a user id by
 * email (`GET /api/v2/users-by-email`), with a client-credentials token that
 * is shared by concurrent callers and renewed shortly before it expires.
 */

export interface ManagementOptions {
  identity: IdentityClient;
  /** `https://TENANT/api/v2/`: both the token audience and the API's base URL. */
  managementAudience: string;
  policy: CallPolicy;
  /** Renew this many seconds before expiry (capped at half the lifetime). */
  renewBeforeSeconds?: number;
  now?: () => number;
}

export interface DirectoryUser {
  userId: string;
}

export interface ManagementClient {
  findUserByEmail(email: string, signal: AbortSignal): Promise<DirectoryUser | undefined>;
}

interface CachedToken {
  value: string;
  renewAt: number;
}

export function createManagementClient(options: ManagementOptions): ManagementClient {
  const now = options.now ?? Date.now;
  const renewBefore = options.renewBeforeSeconds ?? 60;
  let token: Promise<CachedToken> | undefined;

  const fetchToken = async (): Promise<CachedToken> => {
    const config = await options.identity.configuration();
    let response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      // Shared by every caller waiting for it, so no one caller's cancel ends it.
      response = await options.policy.call(
        'identity',
        () => oidc.clientCredentialsGrant(config, { audience: options.managementAudience, scope: 'read:users' }),
        {
          signal: new AbortController().signal,
          hop: {
            label: 'POST /oauth/token (client credentials)',
            attributes: { 'http.request.method': 'POST', 'url.path': '/oauth/token' },
            describe: (answer) => ({ tokens: { access_token: answer.access_token } }),
          },
        },
      );
    } catch (error) {
      if (error instanceof AgentError) throw error;
      throw new AgentError('backend_error', 'The agent could not get a Management API token', { cause: error });
    }
    const lifetime = response.expiresIn() ?? 60;
    const margin = Math.min(renewBefore, lifetime / 2);
    return { value: response.access_token, renewAt: now() + (lifetime - margin) * 1000 };
  };

  /** One in-flight request for all concurrent callers; a failure is not cached. */
  const accessToken = async (forceRenew = false): Promise<string> => {
    if (token && !forceRenew) {
      const cached = await token.catch(() => undefined);
      if (cached && cached.renewAt > now()) return cached.value;
    }
    const next = fetchToken();
    token = next;
    next.catch(() => {
      if (token === next) token = undefined;
    });
    return (await next).value;
  };

  const get = (url: URL, bearer: string, signal: AbortSignal) =>
    getJson(options.policy, 'identity', url, { bearer, signal, label: 'The Management API', hop: { label: 'GET /api/v2/users-by-email' } });

  return {
    async findUserByEmail(email, signal) {
      const url = new URL('users-by-email', options.managementAudience);
      url.searchParams.set('email', email);
      let answer = await get(url, await accessToken(), signal);
      if (answer.status === 401) {
        // RFC 6750 §3.1: the token was refused (revoked, rotated keys); one fresh token, one retry.
        answer = await get(url, await accessToken(true), signal);
      }
      if (answer.status < 200 || answer.status >= 300) {
        throw new AgentError('backend_error', `The Management API answered HTTP ${answer.status} to a user lookup`);
      }
      const { body } = answer;
      if (!Array.isArray(body)) {
        throw new AgentError('backend_error', 'The Management API returned an unexpected user list');
      }
      for (const entry of body as unknown[]) {
        if (typeof entry !== 'object' || entry === null) continue;
        const { user_id: rawUserId, email: userEmail } = entry as Record<string, unknown>;
        const userId = parseEmployeeId(rawUserId);
        if (userId === undefined) continue;
        if (typeof userEmail === 'string' && userEmail.toLowerCase() !== email.toLowerCase()) continue;
        return { userId };
      }
      return undefined;
    },
  };
}
