import type { TaskStateName } from '../sandbox/conversation.ts';
import type { PersonaKey } from './personas.ts';

/**
 * A scenario is data: who calls, what they say, what the employee does and
 * what the caller must observe. The runner (`runner.ts`) plays it against a
 * stack (`stack.ts`): the local tenant, or a real Auth0 tenant.
 */

/** How the caller authenticates to the HR Agent. */
export type Caller =
  | 'a2a-client' // the A2A Client's client-credentials token (the normal case)
  | 'no-token'
  | 'wrong-audience' // a valid token from the same tenant, for the Management API
  | 'wrong-scope' // a token for the agent's audience without read:employee_status
  | 'expired-token';

/**
 * What the employee does with the consent request the agent causes: on the Guardian page (`browser`), in
 * the email channel's mailbox and consent page (`mailbox`, a `requestedExpiry` above 300 s), or by script.
 */
export type EmployeeStep =
  | { user: PersonaKey; decision: 'approve' | 'deny'; via: 'browser' | 'mailbox' | 'api' }
  /**
   * Lets the request run out: `browser` watches it expire on the Guardian page,
   * `wait` just waits out the short requested_expiry, `expire-now` uses the control API.
   */
  | { user: PersonaKey; decision: 'ignore'; via: 'browser' | 'wait' | 'expire-now' };

export interface Conversation {
  /** Each turn is sent in the same context; a later turn answers INPUT_REQUIRED. */
  turns: string[];
  /** Every state the caller sees, in order, across all turns (consecutive repeats folded). */
  states: TaskStateName[];
  answer?: RegExp;
  /** The answer must not match this (e.g. no data without consent). */
  notAnswer?: RegExp;
  /** Cancel the task once it reaches AUTH_REQUIRED. */
  cancelWhilePending?: boolean;
}

export type Requirement =
  /** Needs the local tenant's control API, users or settings; skipped against Auth0 with this reason. */
  { localTenant: string };

interface ScenarioBase {
  name: string;
  tags: string[];
  summary: string;
  requires?: Requirement;
}

/** One or more conversations with the agent, started together, and the employee's decisions in order. */
export interface ConversationScenario extends ScenarioBase {
  kind: 'conversation';
  caller?: 'a2a-client';
  conversations: Conversation[];
  employee: EmployeeStep[];
  /** Users for whom no push request may ever be created. */
  noPushFor?: PersonaKey[];
  /** Seconds the agent asks the employee to answer within (CIBA requested_expiry). */
  requestedExpiry?: number;
  /** Check on the Guardian page that this tenant-sourced text shows literally and runs nothing. */
  pageShowsLiterally?: string;
  /**
   * Check that the consent request carries the agent's RFC 9396 details naming the A2A caller and the
   * employee, and that the page the employee decides on shows them.
   */
  showsAuthorizationDetails?: boolean;
}

/** A call the agent must refuse at the HTTP layer, creating no task. */
export interface RefusedCallScenario extends ScenarioBase {
  kind: 'refused-call';
  caller: Exclude<Caller, 'a2a-client'>;
  question: string;
  status: 401 | 403;
  /** RFC 6750 error code in WWW-Authenticate; undefined when none is due (no credentials). */
  error: 'invalid_token' | 'insufficient_scope' | undefined;
}

/** A request straight to the identity backend's /bc-authorize that it must refuse. */
export interface RefusedConsentScenario extends ScenarioBase {
  kind: 'refused-consent';
  user: PersonaKey;
  bindingMessage: string;
  error: string;
}

/**
 * Consent is per employee: with a token one employee approved, the HR API
 * must refuse another employee's record (and still serve the consenting one's).
 */
export interface CrossEmployeeReadScenario extends ScenarioBase {
  kind: 'cross-employee-read';
  employee: EmployeeStep & { decision: 'approve' };
  reading: PersonaKey;
}

export type Scenario = ConversationScenario | RefusedCallScenario | RefusedConsentScenario | CrossEmployeeReadScenario;

export interface Observation {
  scenario: string;
  status: 'passed' | 'failed' | 'skipped';
  /** What was observed, per conversation (states), or the HTTP status / OAuth error. */
  observed: string[];
  expected: string[];
  answers: string[];
  problems: string[];
  skipReason?: string;
  durationMs: number;
}
