import * as oidc from 'openid-client';
import { AgentError } from './errors.ts';
import type { IdentityClient } from './identity.ts';
import type { PingNotifications, PingWaiter } from './ciba-notifications.ts';

/**
 * Asks one employee, through OpenID CIBA, to approve sharing their employment
 * details, and waits for the answer: by polling the token endpoint (CIBA §7.3,
 * honouring `interval` and `slow_down`) or, in ping mode, by waiting for the
 * backend's notification (CIBA §10.2) and then fetching the token once.
 */

export const DEFAULT_BINDING_MESSAGE = 'Approve sharing your employment details with an external party.';
export const CONSENT_SCOPE = 'openid read:employee';
const CIBA_GRANT_TYPE = 'urn:openid:params:grant-type:ciba';

export interface CibaOptions {
  identity: IdentityClient;
  /** The HR API's audience; the approved token is only good there. */
  apiAudience: string;
  deliveryMode: 'poll' | 'ping';
  /** Seconds (CIBA §7.1 `requested_expiry`); undefined lets the backend choose. */
  requestedExpiry?: number;
  bindingMessage?: string;
  notifications: PingNotifications;
  now?: () => number;
}

export interface PendingConsent {
  employeeId: string;
  bindingMessage: string;
  expiresAt: Date;
}

export interface ConsentRequest {
  /** Aborting it (CancelTask) stops waiting at once; no further token requests are made. */
  signal: AbortSignal;
  onPending(pending: PendingConsent): void;
}

export interface CibaAuthorizer {
  /** Resolves with the HR API access token once the employee approves; rejects with an `AgentError`. */
  requestConsent(employeeId: string, request: ConsentRequest): Promise<string>;
}

export function createCibaAuthorizer(options: CibaOptions): CibaAuthorizer {
  const now = options.now ?? Date.now;
  const bindingMessage = options.bindingMessage ?? DEFAULT_BINDING_MESSAGE;

  return {
    async requestConsent(employeeId, { signal, onPending }) {
      const config = await options.identity.configuration();
      const waiter = options.deliveryMode === 'ping' ? options.notifications.register() : undefined;
      try {
        const parameters: Record<string, string> = {
          scope: CONSENT_SCOPE,
          audience: options.apiAudience,
          binding_message: bindingMessage,
          // Auth0's login_hint format for a known user id.
          login_hint: JSON.stringify({ format: 'iss_sub', iss: options.identity.issuer, sub: employeeId }),
        };
        if (options.requestedExpiry !== undefined) parameters.requested_expiry = String(options.requestedExpiry);
        if (waiter) parameters.client_notification_token = waiter.token;

        let started: oidc.BackchannelAuthenticationResponse;
        try {
          started = await oidc.initiateBackchannelAuthentication(config, parameters);
        } catch (error) {
          throw consentError(error, undefined);
        }
        if (signal.aborted) throw new AgentError('canceled', 'The request was canceled');
        const expiresAt = now() + started.expires_in * 1000;
        waiter?.bind(started.auth_req_id);
        onPending({ employeeId, bindingMessage, expiresAt: new Date(expiresAt) });

        const tokens = waiter
          ? await waitForPing(config, started, waiter, signal)
          : await poll(config, started, signal);
        checkSubject(tokens, employeeId);
        return tokens.access_token;
      } catch (error) {
        if (signal.aborted) throw new AgentError('canceled', 'The request was canceled', { cause: error });
        throw error instanceof AgentError ? error : consentError(error, undefined);
      } finally {
        waiter?.release();
      }
    },
  };

  async function poll(
    config: oidc.Configuration,
    started: oidc.BackchannelAuthenticationResponse,
    signal: AbortSignal,
  ): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
    const expiresAt = now() + started.expires_in * 1000;
    // openid-client stops at `expires_in` only without a signal of our own, so combine both;
    // one extra interval lets the backend report `expired_token` itself.
    const deadline = AbortSignal.timeout((started.expires_in + (started.interval ?? 5)) * 1000);
    const polling = oidc.pollBackchannelAuthenticationGrant(config, started, undefined, {
      signal: AbortSignal.any([signal, deadline]),
    });
    try {
      return await untilAborted(polling, signal);
    } catch (error) {
      if (signal.aborted) throw new AgentError('canceled', 'The request was canceled');
      if (deadline.aborted) throw expired();
      throw consentError(error, expiresAt);
    }
  }

  async function waitForPing(
    config: oidc.Configuration,
    started: oidc.BackchannelAuthenticationResponse,
    waiter: PingWaiter,
    signal: AbortSignal,
  ): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
    const expiresAt = now() + started.expires_in * 1000;
    // CIBA §10.2 promises no notification on expiry: ask once more when the request lapses.
    const deadline = AbortSignal.timeout(started.expires_in * 1000);
    for (;;) {
      let lapsed = false;
      try {
        await waiter.next(AbortSignal.any([signal, deadline]));
      } catch {
        if (signal.aborted) throw new AgentError('canceled', 'The request was canceled');
        lapsed = true;
      }
      try {
        return await oidc.genericGrantRequest(config, CIBA_GRANT_TYPE, { auth_req_id: started.auth_req_id });
      } catch (error) {
        const pending =
          error instanceof oidc.ResponseBodyError &&
          (error.error === 'authorization_pending' || error.error === 'slow_down');
        if (!pending) throw consentError(error, expiresAt);
        if (lapsed) throw expired();
      }
    }
  }

  function expired(): AgentError {
    return new AgentError('expired_token', 'The approval request timed out before the employee answered');
  }

  /** Maps CIBA §11 / §13 token and authentication errors to agent error codes. */
  function consentError(error: unknown, expiresAt: number | undefined): AgentError {
    if (error instanceof AgentError) return error;
    if (error instanceof oidc.ResponseBodyError) {
      const description = typeof error.error_description === 'string' ? error.error_description : '';
      switch (error.error) {
        case 'access_denied':
          // Auth0 answers access_denied for an expired request too; past the expiry it means "timed out".
          if (expiresAt !== undefined && now() >= expiresAt - 1000) return expired();
          return new AgentError('access_denied', 'The employee denied the request');
        case 'expired_token':
          return expired();
        case 'unknown_user_id':
          return new AgentError('unknown_user', 'The identity backend does not know this employee');
        case 'invalid_request':
          if (/enrol/i.test(description)) {
            return new AgentError('not_enrolled', 'The employee is not enrolled for push notifications, so nobody can approve the request');
          }
          break;
        case 'too_many_requests':
        case 'slow_down':
          return new AgentError('backend_error', 'The identity backend is rate limiting approval requests; try again in a minute');
      }
      return new AgentError('backend_error', `The identity backend refused the approval request (${error.error})`, { cause: error });
    }
    return new AgentError('backend_error', 'The identity backend could not be reached', { cause: error });
  }
}

/** Consent is per employee: a token whose ID Token names someone else is never used. */
function checkSubject(tokens: oidc.TokenEndpointResponseHelpers, employeeId: string): void {
  const claims = tokens.claims();
  if (claims && claims.sub !== employeeId) {
    throw new AgentError('backend_error', 'The identity backend returned an approval for a different user');
  }
}

/** Settles as soon as `signal` aborts, without waiting for `promise` (which keeps running to its own end). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  promise.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
