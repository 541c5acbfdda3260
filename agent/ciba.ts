import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { context, trace } from '@opentelemetry/api';
import { endHop, errorType, hopWarning, startHop } from '../sandbox/telemetry/hop-spans.ts';
import { HOP, shortId } from '../sandbox/telemetry/hops.ts';
import { noTelemetry, type Telemetry } from '../sandbox/telemetry/setup.ts';
import { AttemptTimeout, parseRetryAfter, statusOf, transientFailure, withDeadline, type CallPolicy } from './call-policy.ts';
import { AgentError } from './errors.ts';
import type { IdentityClient } from './identity.ts';
import type { PingNotifications, PingWaiter } from './ciba-notifications.ts';

/**
 * Asks one employee, through OpenID CIBA, to approve sharing their employment
 * details, and waits for the answer: by polling the token endpoint (CIBA §7.3,
 * honouring `interval` and `slow_down`) or, in ping mode, by waiting for the
 * backend's notification (CIBA §10.2) while still checking that the backend
 * knows the request. Only a definitive answer ends the wait.
 */

export const DEFAULT_BINDING_MESSAGE = 'Approve sharing your employment details with an external party.';
export const CONSENT_SCOPE = 'openid read:employee';
const CIBA_GRANT_TYPE = 'urn:openid:params:grant-type:ciba';
/** Seconds between polls when the backend names no `interval` (CIBA §7.3). */
const DEFAULT_INTERVAL = 5;
const SLOW_DOWN_STEP_MS = 5_000;
/**
 * In ping mode a request is checked in its turn of the shared checks (one request per interval, see
 * `ciba-notifications.ts`) and at least every this many intervals on its own (a minute at Auth0's 5 s).
 */
const PING_OWN_CHECK_INTERVALS = 12;
/** Ping-mode waits last up to this share longer, so that many tasks do not check in step. */
const PING_CHECK_JITTER = 0.2;

export interface CibaOptions {
  identity: IdentityClient;
  /** The HR API's audience; the approved token is only good there. */
  apiAudience: string;
  deliveryMode: 'poll' | 'ping';
  /** Seconds (CIBA §7.1 `requested_expiry`); undefined lets the backend choose. */
  requestedExpiry?: number;
  bindingMessage?: string;
  notifications: PingNotifications;
  policy: CallPolicy;
  /** The wait for the employee is one hop span, its polls counted on it (default: not traced). */
  telemetry?: Telemetry;
  now?: () => number;
  random?: () => number;
}

export interface PendingConsent {
  employeeId: string;
  bindingMessage: string;
  expiresAt: Date;
  /** Where the employee finds the request (consentChannel); absent: Guardian push. */
  channel?: ConsentChannel;
  /** What another start of the agent needs to go on waiting for the answer (kept in the database). */
  resumable?: ResumableConsent;
}

export type ConsentChannel = 'guardian-push' | 'email';

/**
 * Auth0 picks the channel by `requested_expiry`: Guardian push up to 300 s ("Mobile push notifications
 * with CIBA"), email from 301 s to 259200 s ("Email notifications with CIBA"); its default expiry is 300 s.
 */
export function consentChannel(requestedExpiry: number | undefined): ConsentChannel {
  return requestedExpiry !== undefined && requestedExpiry > 300 ? 'email' : 'guardian-push';
}

export interface ResumableConsent {
  /** CIBA §7.3 `auth_req_id`. */
  authReqId: string;
  deliveryMode: 'poll' | 'ping';
  /** Seconds between token requests (CIBA §7.3 `interval`). */
  interval: number;
  /** SHA-256 (hex) of the ping's `client_notification_token` (CIBA §7.1), never the token. */
  notificationTokenDigest: string | undefined;
}

export interface ConsentRequest {
  /** Aborting it (CancelTask) stops waiting at once; no further token requests are made. */
  signal: AbortSignal;
  /** Awaited before waiting for the answer, so a pending consent is recorded before anyone hears of it. */
  onPending(pending: PendingConsent): void | Promise<void>;
  /** RFC 9396 details shown to the employee and carried by the token; sent as `authorization_details` (JSON). */
  authorizationDetails?: readonly object[];
}

export interface CibaAuthorizer {
  /** Resolves with the HR API access token once the employee approves; rejects with an `AgentError`. */
  requestConsent(employeeId: string, request: ConsentRequest): Promise<string>;
  /**
   * Goes on waiting for a consent requested before a restart (or by another agent process): asks the
   * token endpoint at once, then as `requestConsent` does, until the answer or the expiry.
   */
  resumeConsent(consent: ResumableConsent & { employeeId: string; expiresAt: Date }, request: { signal: AbortSignal }): Promise<string>;
}

export function createCibaAuthorizer(options: CibaOptions): CibaAuthorizer {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const bindingMessage = options.bindingMessage ?? DEFAULT_BINDING_MESSAGE;
  const { policy } = options;
  const telemetry = options.telemetry ?? noTelemetry();

  return {
    async requestConsent(employeeId, { signal, onPending, authorizationDetails }) {
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
        if (authorizationDetails !== undefined) parameters.authorization_details = JSON.stringify(authorizationDetails);

        const started = await policy.call('identity', () => oidc.initiateBackchannelAuthentication(config, parameters), {
          signal,
          classify: (error) => {
            const failure = transientFailure(error);
            // A per-user limit that lifts only after the call's deadline is an answer, not a hiccup.
            const rateLimited = error instanceof oidc.ResponseBodyError && error.error === 'too_many_requests';
            if (rateLimited && (failure?.retryAfterMs ?? 0) > policy.limits('identity').maxBackoffMs) return undefined;
            return failure;
          },
          hop: {
            label: 'POST /bc-authorize',
            attributes: {
              'http.request.method': 'POST',
              'url.path': '/bc-authorize',
              [HOP.deliveryMode]: options.deliveryMode,
              [HOP.channel]: consentChannel(options.requestedExpiry),
            },
            describe: (answer) => ({ attributes: { [HOP.authReqId]: shortId(answer.auth_req_id), 'ciba.expires_in': answer.expires_in } }),
          },
        });
        if (signal.aborted) throw new AgentError('canceled', 'The request was canceled');
        const expiresAt = now() + started.expires_in * 1000;
        const interval = started.interval ?? DEFAULT_INTERVAL;
        waiter?.bind(started.auth_req_id, interval * 1000);
        await onPending({
          employeeId,
          bindingMessage,
          expiresAt: new Date(expiresAt),
          channel: consentChannel(options.requestedExpiry),
          resumable: {
            authReqId: started.auth_req_id,
            deliveryMode: options.deliveryMode,
            interval,
            notificationTokenDigest: waiter?.tokenDigest,
          },
        });
        if (signal.aborted) throw new AgentError('canceled', 'The request was canceled');

        const tokens = await traceWait(started.auth_req_id, options.deliveryMode, () =>
          waitForAnswer(started.auth_req_id, interval, expiresAt, signal, waiter),
        );
        checkSubject(tokens, employeeId);
        return tokens.access_token;
      } catch (error) {
        if (signal.aborted) throw new AgentError('canceled', 'The request was canceled', { cause: error });
        throw consentError(error, undefined);
      } finally {
        waiter?.release();
      }
    },

    async resumeConsent(consent, { signal }) {
      const expiresAt = consent.expiresAt.getTime();
      const waiter =
        consent.deliveryMode === 'ping' && consent.notificationTokenDigest
          ? options.notifications.restore(consent.notificationTokenDigest, consent.authReqId, consent.interval * 1000)
          : undefined;
      try {
        const tokens = await traceWait(consent.authReqId, consent.deliveryMode, () =>
          waitForAnswer(consent.authReqId, consent.interval, expiresAt, signal, waiter, 0),
        );
        checkSubject(tokens, consent.employeeId);
        return tokens.access_token;
      } catch (error) {
        if (signal.aborted) throw new AgentError('canceled', 'The request was canceled', { cause: error });
        throw consentError(error, expiresAt);
      } finally {
        waiter?.release();
      }
    },
  };

  /**
   * Asks the token endpoint until the employee's answer or the request's
   * expiry (CIBA §7.3, §11): every `interval` in poll mode; in ping mode as
   * soon as the notification arrives (§10.2) or the shared checks call on
   * this request, and otherwise every `PING_OWN_CHECK_INTERVALS` intervals,
   * so that a backend that lost its requests is noticed within an interval or
   * two rather than at expiry. A failed or timed-out poll is tried again at
   * the next interval; only a definitive answer ends it.
   */
  async function waitForAnswer(
    authReqId: string,
    intervalSeconds: number,
    expiresAt: number,
    signal: AbortSignal,
    waiter: PingWaiter | undefined,
    firstWaitMs?: number,
  ): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
    let interval = intervalSeconds * 1000;
    // One interval past the expiry lets the backend report `expired_token` itself.
    const giveUpAt = expiresAt + interval;
    if (now() > giveUpAt) throw expired();
    const pendingWait = () => (waiter ? interval * PING_OWN_CHECK_INTERVALS : interval);
    let waitMs = firstWaitMs ?? pendingWait();
    let lastFailure: string | undefined;
    const pollConfig = await options.identity.pollConfiguration();
    /**
     * A poll that outlived its attempt deadline: its request runs on (identity.ts, LATE_ANSWER_FACTOR) and is
     * waited for again rather than repeated. The backend answers a poll with the tokens once and `invalid_grant`
     * after that (CIBA §11), so a second poll sent meanwhile would lose an approval the first one took; and on a
     * backend too busy to answer in time, repeated polls only add to its queue. One poll in flight per consent.
     */
    let unanswered: Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> | undefined;
    // The wait's hop span (traceWait): one span for every poll, which only counts them.
    const span = trace.getActiveSpan();
    let polls = 0;
    for (;;) {
      if (waitMs > 0) await pause(waiter ? waitMs + Math.round(random() * waitMs * PING_CHECK_JITTER) : waitMs, signal, waiter);
      try {
        if (!unanswered) {
          polls += 1;
          if (span?.isRecording()) span.setAttribute(HOP.pollCount, polls);
        }
        const poll = unanswered ?? oidc.genericGrantRequest(pollConfig, CIBA_GRANT_TYPE, { auth_req_id: authReqId });
        poll.catch(() => undefined);
        unanswered = undefined;
        try {
          return await policy.attempt('identity', () => poll, signal);
        } catch (error) {
          if (error instanceof AttemptTimeout) unanswered = poll;
          throw error;
        }
      } catch (error) {
        if (signal.aborted) throw new AgentError('canceled', 'The request was canceled', { cause: error });
        waitMs = interval;
        if (error instanceof oidc.ResponseBodyError && error.error === 'authorization_pending') {
          waitMs = pendingWait();
          lastFailure = undefined;
        } else if (error instanceof oidc.ResponseBodyError && error.error === 'slow_down') {
          // CIBA §11 via RFC 8628 §3.5: add 5 seconds to the interval for this and all later polls.
          interval += SLOW_DOWN_STEP_MS;
          hopWarning(telemetry, span, 'slow_down', { interval_s: interval / 1000 });
          waitMs = Math.max(pendingWait(), parseRetryAfter(error.response.headers.get('retry-after')) ?? 0);
          lastFailure = undefined;
        } else {
          const failure = transientFailure(error);
          if (!failure) {
            if (error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant') waiter?.reportLost();
            throw consentError(error, expiresAt);
          }
          // A poll past its deadline is still running: wait for its answer again at once, without another poll.
          waitMs = unanswered ? 0 : Math.max(interval, failure.retryAfterMs ?? 0);
          lastFailure = failure.reason;
          if (statusOf(error) === 429) hopWarning(telemetry, span, 'rate_limited', { retry_after_ms: waitMs });
          else hopWarning(telemetry, span, 'poll_failed', { reason: failure.reason });
        }
      }
      if (now() + waitMs > giveUpAt) {
        // The request lapses before the next poll; without an answer by then, it timed out.
        if (now() < giveUpAt) waitMs = giveUpAt - now();
        else throw expired(lastFailure);
      }
    }
  }

  /**
   * The wait for the employee's answer as one hop: every token request it makes is counted on it
   * (`ciba.poll_count`), and it ends with the outcome (`ciba.outcome`), the agent's whole view of
   * the employee's decision when the identity backend traces nothing (Auth0).
   */
  async function traceWait(
    authReqId: string,
    deliveryMode: 'poll' | 'ping',
    wait: () => Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers>,
  ): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
    const span = startHop(telemetry, {
      from: 'agent',
      to: 'identity',
      label: 'POST /oauth/token (CIBA)',
      attributes: {
        'http.request.method': 'POST',
        'url.path': '/oauth/token',
        [HOP.authReqId]: shortId(authReqId),
        [HOP.deliveryMode]: deliveryMode,
      },
    });
    try {
      const tokens = await context.with(trace.setSpan(context.active(), span), wait);
      endHop(span, {
        attributes: { [HOP.outcome]: 'approved', 'http.response.status_code': 200 },
        tokens: { access_token: tokens.access_token, id_token: tokens.id_token },
      });
      return tokens;
    } catch (error) {
      const code = errorType(error);
      const outcome = WAIT_OUTCOMES[code];
      // A denial or an expiry is the employee's answer, not a failure of the call.
      if (outcome !== undefined) endHop(span, { attributes: { [HOP.outcome]: outcome, 'http.response.status_code': 400, 'ciba.error': code } });
      else endHop(span, { attributes: { [HOP.outcome]: code === 'canceled' ? 'canceled' : 'failed' }, error });
      throw error;
    }
  }

  function expired(lastFailure?: string): AgentError {
    const base = 'The approval request timed out before the employee answered';
    return new AgentError('expired_token', lastFailure ? `${base}; the identity backend ${lastFailure} when last asked` : base);
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
        case 'invalid_grant':
          return new AgentError(
            'request_lost',
            'The identity backend no longer knows the approval request (it may have restarted); please ask again',
          );
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

/** How the wait ended, by the `AgentError` code it ended with, when that is the employee's answer. */
const WAIT_OUTCOMES: Readonly<Record<string, string>> = { access_denied: 'denied', expired_token: 'expired' };

/** Waits `ms`, or in ping mode until the notification arrives if that is sooner. */
async function pause(ms: number, signal: AbortSignal, waiter: PingWaiter | undefined): Promise<void> {
  try {
    if (waiter) await withDeadline(ms, (deadline) => waiter.next(deadline), signal);
    else await sleep(ms, undefined, { signal });
  } catch (error) {
    if (error instanceof AttemptTimeout) return;
    throw new AgentError('canceled', 'The request was canceled', { cause: error });
  }
}

/** Consent is per employee: a token whose ID Token names someone else is never used. */
function checkSubject(tokens: oidc.TokenEndpointResponseHelpers, employeeId: string): void {
  const claims = tokens.claims();
  if (claims && claims.sub !== employeeId) {
    throw new AgentError('backend_error', 'The identity backend returned an approval for a different user');
  }
}
