import type { FunctionCall, FunctionDeclaration } from '@google/genai';
import type { CibaAuthorizer, PendingConsent, ResumableConsent } from './ciba.ts';
import { employmentVerification, type Caller } from './authorization-details.ts';
import { AgentError, isAgentError } from './errors.ts';
import type { HrApiClient } from './hr-api.ts';
import { parseEmail, parseEmployeeId } from './identifiers.ts';
import type { ManagementClient } from './management.ts';
import { taskScopeOf } from '../sandbox/telemetry/hop-spans.ts';

/**
 * The three functions the language model may call, and the code that runs
 * them. Arguments come from the model and are untrusted: each is checked
 * before anything reaches a backend. The only path to the HR API goes through
 * a completed CIBA approval by exactly the employee being read.
 */

export const FUNCTION_DECLARATIONS: FunctionDeclaration[] = [
  {
    name: 'get_employee_id_by_email',
    description: "Looks up a person's employee id from their work email address.",
    parametersJsonSchema: {
      type: 'object',
      properties: { email: { type: 'string', description: 'The work email address, e.g. jdoe@staff0.com' } },
      required: ['email'],
      additionalProperties: false,
    },
  },
  {
    name: 'is_active_employee',
    description:
      'Asks the employee to approve on their phone, then reports whether they are an active employee of Staff0. ' +
      'Returns {employee_id, name, active} once approved, or {outcome, message} when it cannot answer.',
    parametersJsonSchema: {
      type: 'object',
      properties: { employee_id: { type: 'string', description: 'The employee id, e.g. auth0|jdoe' } },
      required: ['employee_id'],
      additionalProperties: false,
    },
  },
  {
    name: 'request_user_input',
    description: 'Asks the caller for missing information, such as the work email or employee id of the person to check.',
    parametersJsonSchema: {
      type: 'object',
      properties: { question: { type: 'string', description: 'The question to ask the caller' } },
      required: ['question'],
      additionalProperties: false,
    },
  },
];

export type ToolResult =
  | { kind: 'response'; response: Record<string, unknown> }
  | { kind: 'input_required'; question: string };


export interface ToolSessionEvents {
  /** Consent was requested and is now pending on the employee's device (awaited before waiting for the answer). */
  onConsentPending(pending: PendingConsent & { employee: string }): void | Promise<void>;
  /** The employee answered (or the request ended) and work goes on. */
  onConsentSettled(): void;
}

export interface ToolSession {
  run(call: FunctionCall): Promise<ToolResult>;
}

export interface ResumableToolSession extends ToolSession {
  /**
   * Finishes an `is_active_employee` call whose consent was requested before a restart (or by another
   * agent process): waits for the employee's answer, then reads the HR API as `run` would have.
   */
  resume(consent: ResumableConsent & { employeeId: string; expiresAt: Date }): Promise<ToolResult>;
}

export interface ToolsOptions {
  management: ManagementClient;
  ciba: CibaAuthorizer;
  hrApi: HrApiClient;
  /** How many employees one task may ask for approval; more calls get an error response. */
  maxConsentRequests?: number;
}

export interface Tools {
  /** `caller` is the A2A client asking; each consent request names it to the employee (RFC 9396 details). */
  session(signal: AbortSignal, events: ToolSessionEvents, caller?: Caller): ResumableToolSession;
}

const MAX_QUESTION_LENGTH = 500;

export function createTools(options: ToolsOptions): Tools {
  const maxConsentRequests = options.maxConsentRequests ?? 2;

  return {
    session(signal, events, caller) {
      /** The email the caller gave for each id we looked up, to name the employee in status messages. */
      const emails = new Map<string, string>();
      const verdicts = new Map<string, Record<string, unknown>>();
      let consentRequests = 0;

      const handlers: Record<string, (args: Record<string, unknown>) => Promise<ToolResult>> = {
        async get_employee_id_by_email(args) {
          const email = parseEmail(args.email);
          if (email === undefined || Object.keys(args).length !== 1) {
            return respond({ error: 'invalid_argument', message: 'email must be a single work email address' });
          }
          // From here on the task's hops name the person it is about (an identifier, never a credential).
          nameEmployee(email);
          const user = await options.management.findUserByEmail(email, signal);
          if (!user) return respond({ error: 'not_found' });
          emails.set(user.userId, email);
          return respond({ employee_id: user.userId });
        },

        async is_active_employee(args) {
          const employeeId = parseEmployeeId(args.employee_id);
          if (employeeId === undefined || Object.keys(args).length !== 1) {
            return respond({ error: 'invalid_argument', message: 'employee_id must be a single employee id such as auth0|jdoe' });
          }
          const known = verdicts.get(employeeId);
          if (known) return respond(known);
          if (consentRequests >= maxConsentRequests) {
            return respond({ outcome: 'error', message: `Only ${maxConsentRequests} employee(s) can be checked per request` });
          }
          consentRequests += 1;
          nameEmployee(emails.get(employeeId) ?? employeeId);
          let accessToken: string;
          try {
            accessToken = await options.ciba.requestConsent(employeeId, {
              signal,
              onPending: (pending) => events.onConsentPending({ ...pending, employee: emails.get(employeeId) ?? employeeId }),
              authorizationDetails: [employmentVerification({ caller, employeeId, employeeEmail: emails.get(employeeId) })],
            });
          } catch (error) {
            // An id the identity backend does not know has no one to ask: the answer is simply "no".
            if (isAgentError(error) && error.code === 'unknown_user') {
              const verdict = { outcome: 'not_found', message: 'No employee has this id' };
              verdicts.set(employeeId, verdict);
              return respond(verdict);
            }
            throw error;
          }
          events.onConsentSettled();
          return respond(await verdictWith(employeeId, accessToken));
        },

        async request_user_input(args) {
          const question = typeof args.question === 'string' ? args.question.trim().slice(0, MAX_QUESTION_LENGTH) : '';
          return {
            kind: 'input_required',
            question: question || 'Which person should I check? Please give their work email address or employee id.',
          };
        },
      };

      const verdictWith = async (employeeId: string, accessToken: string) => {
        const status = await options.hrApi.employmentStatus(employeeId, accessToken, signal);
        const verdict = status
          ? { employee_id: employeeId, name: status.name, active: status.active }
          : { employee_id: employeeId, active: false };
        verdicts.set(employeeId, verdict);
        return verdict;
      };

      return {
        async resume(consent) {
          consentRequests += 1;
          nameEmployee(consent.employeeId);
          const accessToken = await options.ciba.resumeConsent(consent, { signal });
          events.onConsentSettled();
          return respond(await verdictWith(consent.employeeId, accessToken));
        },

        async run(call) {
          const handler = call.name !== undefined ? handlers[call.name] : undefined;
          if (!handler || !Object.hasOwn(handlers, call.name ?? '')) {
            return respond({ error: 'unknown_function', message: 'Only the declared functions can be called' });
          }
          const args = call.args;
          if (typeof args !== 'object' || args === null || Array.isArray(args)) {
            return respond({ error: 'invalid_argument', message: 'Arguments must be an object' });
          }
          if (signal.aborted) throw new AgentError('canceled', 'The request was canceled');
          return handler(args);
        },
      };
    },
  };
}

function nameEmployee(employee: string): void {
  const scope = taskScopeOf();
  if (scope) scope.employee = employee;
}

function respond(response: Record<string, unknown>): ToolResult {
  return { kind: 'response', response };
}
