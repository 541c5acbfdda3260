/**
 * What a "hop" span says, shared by the services that emit spans and the
 * flow console that draws them. A hop is one arrow of the sequence diagram:
 * a span carrying `hop.from` and `hop.to`. Everything else about the span
 * (method, path, status, duration, error) uses OpenTelemetry's own semantic
 * conventions, so any tracing tool shows the same data.
 */

/** The lanes of the sequence diagram, left to right. */
export const PARTICIPANTS = ['client', 'agent', 'identity', 'employee', 'hr-api'] as const;
export type Participant = (typeof PARTICIPANTS)[number];

export const PARTICIPANT_LABELS: Record<Participant, string> = {
  client: 'A2A Client',
  agent: 'HR Agent',
  identity: 'Identity backend',
  employee: 'Employee',
  'hr-api': 'HR API',
};

/** Span attribute names. Values are strings unless noted. */
export const HOP = {
  /** Participant the arrow starts from. */
  from: 'hop.from',
  /** Participant the arrow points to (the same as `from` for a step inside one service, e.g. a model call). */
  to: 'hop.to',
  /** The arrow's label, short: `POST /bc-authorize`, `push to Guardian`, `approves`. */
  label: 'hop.label',
  /** The A2A task this hop belongs to, on every hop span, so hops group by task even across traces. */
  taskId: 'a2a.task.id',
  /** The A2A task's state after this hop, where the hop changed it (`AUTH_REQUIRED`, `COMPLETED`, …). */
  taskState: 'a2a.task.state',
  /** The employee the consent is about (email or user id; never a credential). */
  employee: 'enduser.id',
  /** The CIBA request, shortened to its first 8 characters and an ellipsis. */
  authReqId: 'ciba.auth_req_id',
  /** Number: token-endpoint polls made for this consent so far. */
  pollCount: 'ciba.poll_count',
  /** `poll` or `ping`. */
  deliveryMode: 'ciba.delivery_mode',
  /** `guardian-push` or `email`. */
  channel: 'ciba.channel',
  /**
   * Prefix of a token's decoded header and claims, as a JSON string:
   * `hop.token.access_token` = `{"header":{"alg","kid","typ"},"claims":{"sub","aud","scope","azp","exp","iat","authorization_details",…}}`.
   * Never the raw token or its signature.
   */
  tokenPrefix: 'hop.token.',
  /**
   * On a span of a request a service served (kind SERVER), instead of `from`/`to`: the lane of the
   * service that served it. Not an arrow (its caller's hop span is, and is its parent); its log line
   * and its timing are the receiving side's view of that arrow.
   */
  participant: 'hop.participant',
  /**
   * On the agent's span of the wait for the employee (`POST /oauth/token` polls): how it ended,
   * `approved`, `denied`, `expired` or `failed` (`canceled` when the caller gave up). In auth0 mode
   * the agent's view is all there is of the employee's decision.
   */
  outcome: 'ciba.outcome',
  /** Number, on the identity backend's `employee → identity` decision: milliseconds from the push to the answer. */
  decisionMs: 'ciba.decision_ms',
} as const;

/**
 * Span events within a hop, each also logged as a warning at once: `retry` (a transient failure
 * retried: `reason`, `attempt`, `wait_ms`), `slow_down` (CIBA §11: `interval_s`), `rate_limited`
 * (HTTP 429: `retry_after_ms`), `poll_failed` (a poll that will be tried again: `reason`).
 */
export const HOP_EVENTS = ['retry', 'slow_down', 'rate_limited', 'poll_failed'] as const;
export type HopEvent = (typeof HOP_EVENTS)[number];

/** Shortens an identifier that is not a secret but is long and noisy (`auth_req_id`). */
export function shortId(id: string): string {
  return id.length <= 8 ? id : `${id.slice(0, 8)}…`;
}
