import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig, LOCAL_TENANT_DEFAULTS } from '../sandbox/config.ts';
import { ensureLocalTls } from '../sandbox/local-ca.ts';
import { freePorts, waitUntil } from '../sandbox/test/processes.ts';
import { createTenant, type TenantHandle } from '../mock-guardian/tenant.ts';
import { catalogue } from './catalogue.ts';
import type { Observation } from './scenario.ts';
import { runSuite } from './suite.ts';

/**
 * `npm run scenarios` with IDENTITY_BACKEND=auth0, against the local tenant
 * served over HTTPS as if it were an Auth0 domain. The test plays the person
 * holding the phone: it reads each terminal prompt and does what it says.
 */

describe('the scenario catalogue in auth0 mode', () => {
  let tenant: TenantHandle;
  let observations: Observation[];
  const prompts: string[] = [];

  beforeAll(async () => {
    const [port] = await freePorts(1);
    const tls = await ensureLocalTls(inject('tlsStateDir'));
    tenant = createTenant({
      issuer: `https://localhost:${port}/`,
      https: { key: tls.key, cert: tls.cert },
      // No per-user limit here, so the suite paces nothing (pacing.test.ts covers Auth0's limit of 5).
      settings: { cibaInterval: 1, cibaRateLimitPerUserPerMinute: 0 },
      log: () => undefined,
    });
    await tenant.listen(port, '127.0.0.1');
    const config = loadConfig({
      IDENTITY_BACKEND: 'auth0',
      HR_AUTH0_DOMAIN: `localhost:${port}`,
      A2A_CLIENT_AUTH0_CLIENT_ID: LOCAL_TENANT_DEFAULTS.a2aClient.clientId,
      A2A_CLIENT_AUTH0_CLIENT_SECRET: LOCAL_TENANT_DEFAULTS.a2aClient.clientSecret,
      HR_AGENT_AUTH0_CLIENT_ID: LOCAL_TENANT_DEFAULTS.hrAgentClient.clientId,
      HR_AGENT_AUTH0_CLIENT_SECRET: LOCAL_TENANT_DEFAULTS.hrAgentClient.clientSecret,
      SCENARIO_EMPLOYEE_EMAIL: 'jdoe@staff0.com',
      SCENARIO_SECOND_EMPLOYEE_EMAIL: 'jsmith@staff0.com',
      SCENARIO_FORMER_EMPLOYEE_EMAIL: 'blee@staff0.com',
    });
    const personAtThePhone = (line: string) => {
      prompts.push(line);
      // Guardian push ("On x's phone: APPROVE …") or email ("In x's inbox: … sign in as x and APPROVE …").
      const match = /(?:On (\S+)'s phone|In (\S+)'s inbox): .*?\b(APPROVE|DENY|IGNORE)\b/.exec(line);
      if (!match || match[3] === 'IGNORE') return;
      const email = match[1] ?? match[2];
      const decision = match[3];
      void waitUntil(async () => tenant.requests.list({ status: 'pending' }).find((r) => r.user_email === email)).then((request) =>
        tenant.requests.decide(request.id, decision === 'APPROVE' ? 'approve' : 'deny'),
      );
    };
    observations = await runSuite(catalogue, { config, prompt: personAtThePhone, consentsPerUserPerMinute: 0 });
  }, 240_000);

  afterAll(() => tenant?.close());

  it('skips what needs the local tenant, each with its reason', () => {
    const skipped = observations.filter((o) => o.status === 'skipped');
    expect(skipped.map((o) => o.scenario).sort()).toEqual(
      [
        'consent expired by the tenant',
        'email consent times out',
        'employee without push enrolment',
        'expired token',
        'markup in a user name',
        'wrong scope',
      ].sort(),
    );
    for (const o of skipped) expect(o.skipReason).toMatch(/^(needs|uses) .{20,}/);
  });

  it('passes every other scenario, the employee acting on the prompts', () => {
    const ran = observations.filter((o) => o.status !== 'skipped');
    expect(ran).toHaveLength(catalogue.length - 6);
    expect(ran.filter((o) => o.status === 'failed').map((o) => `${o.scenario}: ${o.problems.join('; ')}`)).toEqual([]);
  });

  it('tells the person at the phone what to do, naming the employee', () => {
    expect(prompts).toContain("▶ [active employee approves] On jdoe@staff0.com's phone: APPROVE the Guardian push now.");
    expect(prompts).toContain("▶ [employee denies] On jdoe@staff0.com's phone: DENY the Guardian push now.");
    expect(prompts).toContain("▶ [consent times out] On jdoe@staff0.com's phone: IGNORE the Guardian push (let it expire).");
    expect(prompts).toContain(
      "▶ [employee approves by email] In jsmith@staff0.com's inbox: open the email from Auth0, follow its link, sign in as jsmith@staff0.com and APPROVE the request now.",
    );
  });
});
