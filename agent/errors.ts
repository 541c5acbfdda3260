/**
 * Every way a consent-gated lookup can end other than "here is the answer".
 * Callers switch on `code`; `agent/outcomes.ts` is the one place that turns
 * a code into an A2A task state.
 */

export type AgentErrorCode =
  /** The employee denied the request on their device (CIBA §11, `access_denied`). */
  | 'access_denied'
  /** Nobody answered before the request expired (CIBA §11, `expired_token`). */
  | 'expired_token'
  /** The employee has no push (Guardian) enrolment, so nobody can be asked. */
  | 'not_enrolled'
  /** The identity backend does not know the employee (CIBA §13, `unknown_user_id`). */
  | 'unknown_user'
  /** The caller canceled the task while consent was pending (A2A CancelTask). */
  | 'canceled'
  /** The identity backend, the HR API or the language model failed. */
  | 'backend_error'
  /** A service kept failing transiently (no connection, no answer in time, 429, 5xx) until the call's limits ran out. */
  | 'unavailable'
  /** The identity backend no longer knows the pending request (CIBA §11 `invalid_grant`), e.g. it restarted. */
  | 'request_lost'
  /** The task outlived every deadline it could legitimately wait on; the watchdog ended it. */
  | 'deadline_exceeded'
  /** The agent process working on the task stopped (a restart) before the employee's approval was pending. */
  | 'interrupted';

export class AgentError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    /** Safe to show to the A2A caller: never a token, secret or raw backend body. */
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AgentError';
  }
}

export function isAgentError(error: unknown): error is AgentError {
  return error instanceof AgentError;
}

/** Anything unexpected becomes a `backend_error` with a caller-safe message. */
export function toAgentError(error: unknown, what: string): AgentError {
  if (error instanceof AgentError) return error;
  return new AgentError('backend_error', `${what} failed`, { cause: error });
}
