import type { TenantApplication } from './tenant-file.ts';

/**
 * Auth0 answers a browser's cross-origin call to its token and backchannel
 * endpoints only from an origin the application lists ("Allowed Origins
 * (CORS)", "Allowed Web Origins"); the exact origin, as the browser sends it.
 */
export function isOriginAllowed(app: TenantApplication | undefined, origin: string): boolean {
  if (origin === 'null') return false;
  return [...(app?.allowed_origins ?? []), ...(app?.web_origins ?? [])].includes(origin);
}
