import { getJson, type CallPolicy } from './call-policy.ts';
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
  employmentStatus(employeeId: string, accessToken: string, signal: AbortSignal): Promise<EmploymentStatus | undefined>;
}

export function createHrApiClient(options: { baseUrl: string; policy: CallPolicy }): HrApiClient {
  return {
    async employmentStatus(employeeId, accessToken, signal) {
      const url = new URL(`employees/${encodeURIComponent(employeeId)}`, withTrailingSlash(options.baseUrl));
      // A read is safe to repeat: timeouts, 429 and 5xx are retried under the call policy.
      const { status, body } = await getJson(options.policy, 'hrApi', url, {
        bearer: accessToken,
        signal,
        hop: { label: 'GET /employees/:id' },
      });
      if (status === 404) return undefined;
      if (status === 401 || status === 403) {
        throw new AgentError('backend_error', `The HR API refused the employee's approval (HTTP ${status})`);
      }
      if (status < 200 || status >= 300) throw new AgentError('backend_error', `The HR API answered HTTP ${status}`);
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
