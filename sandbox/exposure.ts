import { randomBytes } from 'node:crypto';
import type { SandboxConfig } from './config.ts';

/**
 * A sandbox bound beyond loopback (`SANDBOX_EXPOSE=true`) is reachable by anyone
 * on the network, and its control API approves consents. Nothing is exposed
 * silently: start-up names what is reachable, and the control API and Guardian
 * page then need a secret that only the person who read the banner has.
 */

/** 256 bits, URL-safe: it travels in a URL fragment and a header. */
export function createControlSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The Guardian page link. The secret goes in the fragment, which browsers send
 * to no server and put in no Referer; the page moves it into a header.
 */
export function guardianPageUrl(
  tenantBaseUrl: string,
  options: { userId?: string; secret?: string; page?: 'guardian' | 'mailbox' } = {},
): string {
  const url = new URL(options.page ?? 'guardian', tenantBaseUrl.endsWith('/') ? tenantBaseUrl : `${tenantBaseUrl}/`);
  if (options.userId !== undefined) url.searchParams.set('user_id', options.userId);
  if (options.secret !== undefined) url.hash = `secret=${options.secret}`;
  return url.href;
}

/** The flow console's link, its secret (when exposed) in the fragment as on the Guardian link; `task` opens one task's diagram. */
export function flowConsoleUrl(consoleBaseUrl: string, options: { task?: string; secret?: string } = {}): string {
  const url = new URL(consoleBaseUrl.endsWith('/') ? consoleBaseUrl : `${consoleBaseUrl}/`);
  if (options.task !== undefined) url.searchParams.set('task', options.task);
  if (options.secret !== undefined) url.hash = `secret=${options.secret}`;
  return url.href;
}

/** The warning `npm run sandbox` prints when bound beyond loopback; undefined otherwise. */
export function exposureWarning(config: SandboxConfig): string | undefined {
  if (!config.security.exposed) return undefined;
  const reachable = [
    config.identity.backend === 'local' ? `the local tenant, its control API and Guardian page (port ${config.ports.tenant})` : undefined,
    config.gemini.mode === 'mock' ? `mock-gemini (port ${config.ports.mockGemini})` : undefined,
    `the HR API (port ${config.ports.hrApi})`,
    `the HR Agent (port ${config.ports.agent})`,
    `the flow console (port ${config.ports.flowConsole})`,
  ].filter((s): s is string => s !== undefined);
  return [
    `WARNING: SANDBOX_EXPOSE=true and SANDBOX_HOST=${config.host}: ${reachable.join(', ')} are reachable from the network.`,
    config.identity.backend === 'local'
      ? "  The local tenant's application credentials are public (README); its control API and Guardian page need the secret in the banner's link."
      : undefined,
    `  Host names answered besides each service's own URL and localhost: ${config.security.allowedHosts.join(', ') || 'none (set SANDBOX_ALLOWED_HOSTS)'}.`,
  ]
    .filter((line): line is string => line !== undefined)
    .join('\n');
}
