import { AgentError } from './errors.ts';

/**
 * The agent's client for the Staff0 HR API. It is only ever called with an
 * access token from a completed CIBA approval by the employee being read.
 */

export interface EmploymentStatus {
  employeeId: string;
  name: string | undefined;
  active: boolean;
}

export interface HrApiClient {
  /** `undefined` when the HR API has no record of the employee. */
  employmentStatus(employeeId: string, accessToken: string, signal?: AbortSignal): Promise<EmploymentStatus | undefined>;
}

export function createHrApiClient(options: { baseUrl: string }): HrApiClient {
  return {
    async employmentStatus(employeeId, accessToken, signal) {
      const url = new URL(`employees/${encodeURIComponent(employeeId)}`, withTrailingSlash(options.baseUrl));
      let response: Response;
      try {
        response = await fetch(url, {
          headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
          signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000),
        });
      } catch (error) {
        throw new AgentError('backend_error', 'The HR API could not be reached', { cause: error });
      }
      if (response.status === 404) {
        await response.body?.cancel();
        return undefined;
      }
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        throw new AgentError('backend_error', `The HR API refused the employee's approval (HTTP ${response.status})`);
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new AgentError('backend_error', `The HR API answered HTTP ${response.status}`);
      }
      const body: unknown = await response.json().catch(() => undefined);
      if (typeof body !== 'object' || body === null) {
        throw new AgentError('backend_error', 'The HR API returned an unexpected record');
      }
      const record = body as Record<string, unknown>;
      if (record.id !== employeeId || typeof record.employment_status !== 'string') {
        throw new AgentError('backend_error', 'The HR API returned an unexpected record');
      }
      // Only the verdict and the display name leave this function: no other record detail.
      return {
        employeeId,
        name: typeof record.name === 'string' ? record.name.slice(0, 200) : undefined,
        active: record.employment_status === 'active',
      };
    },
  };
}

function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
