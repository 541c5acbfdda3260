import type { User } from '@a2a-js/sdk/server';
import type { Context } from '@opentelemetry/api';

/**
 * What the employee is asked to authorize, as RFC 9396 `authorization_details`
 * on the CIBA request: which A2A caller asks about which employee, and why.
 * It uses Auth0's own schema (`urn:auth0:schemas:authorization-details:v1:…`,
 * an `instruction` and displayed `properties`), because Auth0's Guardian app
 * shows nothing else ("Configure Rich Authorization Requests"); the email
 * channel's consent page shows it too. The HR API reads `properties.employee`
 * to check that a token covers the record it asks for.
 */

/** Registered on the HR API (tenant file; in Auth0, the API's authorization details types). */
export const EMPLOYMENT_VERIFICATION = 'urn:auth0:schemas:authorization-details:v1:employment_verification';
export const VERIFICATION_PURPOSE = 'Confirm whether you are an active employee of Staff0';

/** The A2A caller, from its verified client-credentials token (`azp`, `sub`). */
export interface Caller {
  clientId: string | undefined;
  subject: string;
}

/** The user the A2A server builds from a verified bearer token (agent/server.ts). */
export interface CallerUser extends User {
  clientId?: string | undefined;
  /** The caller's trace (W3C Trace Context of its request), which the task's spans continue. */
  trace?: Context | undefined;
  /** The caller's verified token, described for its span (sandbox/telemetry/token-claims.ts): claims, never the token. */
  tokenDescription?: string | undefined;
}

export function callerOf(user: User | undefined): Caller | undefined {
  if (!user?.isAuthenticated || user.userName === '') return undefined;
  const clientId = (user as CallerUser).clientId;
  return { clientId, subject: user.userName };
}

export interface EmploymentVerification {
  type: typeof EMPLOYMENT_VERIFICATION;
  instruction: string;
  properties: Record<string, { display: boolean; name: string; display_order: string; value: string }>;
}

export function employmentVerification(input: { caller: Caller | undefined; employeeId: string; employeeEmail?: string | undefined }): EmploymentVerification {
  // Auth0 M2M tokens carry the application's client id (azp), not its name.
  const requester = input.caller?.clientId ?? input.caller?.subject ?? 'an unidentified caller';
  const property = (order: number, name: string, value: string) => ({ display: true, name, display_order: String(order), value });
  return {
    type: EMPLOYMENT_VERIFICATION,
    instruction: `The application ${requester} asks the Staff0 HR Agent whether you are an active employee.`,
    properties: {
      requester: property(1, 'Requested by (application)', requester),
      employee: property(2, 'Employee', input.employeeId),
      ...(input.employeeEmail === undefined ? {} : { email: property(3, 'Work email', input.employeeEmail) }),
      purpose: property(4, 'Purpose', VERIFICATION_PURPOSE),
    },
  };
}
