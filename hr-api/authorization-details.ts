import type { JWTPayload } from 'jose';

/**
 * What a consent token's RFC 9396 `authorization_details` let it read. The HR
 * Agent asks the employee to approve one `employment_verification` (Auth0's
 * schema, agent/authorization-details.ts) naming them in
 * `properties.employee.value`; the approved details travel in the access token
 * (RFC 9396 §9.1). A token that carries details may read only the records they
 * name. A token without any is what Auth0 issues for a CIBA request that sent
 * none: its consent covers the subject's own record only, as scopes always did.
 */

export const EMPLOYMENT_VERIFICATION = 'urn:auth0:schemas:authorization-details:v1:employment_verification';

export type DetailsVerdict = { ok: true } | { ok: false; reason: string };

export function detailsCover(claims: JWTPayload, employeeId: string): DetailsVerdict {
  const details = claims.authorization_details;
  if (details === undefined) return { ok: true };
  if (!Array.isArray(details)) return { ok: false, reason: "The token's authorization_details are not an array" };
  const covered = details.some((detail: unknown) => {
    if (typeof detail !== 'object' || detail === null) return false;
    const { type, properties } = detail as { type?: unknown; properties?: Record<string, { value?: unknown } | null> };
    return type === EMPLOYMENT_VERIFICATION && properties?.employee?.value === employeeId;
  });
  return covered ? { ok: true } : { ok: false, reason: "The token's authorization_details do not cover this employee" };
}
