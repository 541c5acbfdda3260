import { createServer } from 'node:http';
import { listenLocal } from '../sandbox/http-listener.ts';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { requireBearer } from '../sandbox/bearer.ts';
import { catalogue } from './catalogue.ts';
import { runScenario } from './runner.ts';
import type { ConversationScenario, Scenario } from './scenario.ts';
import { startLocalScenarioStack } from './stack.ts';

/** A runner that cannot fail proves nothing: these break the system on purpose and expect a red scenario. */

function scenarioNamed<K extends Scenario['kind']>(name: string, kind: K): Extract<Scenario, { kind: K }> {
  const found = catalogue.find((s) => s.name === name);
  if (!found || found.kind !== kind) throw new Error(`no ${kind} scenario named ${name}`);
  return found as Extract<Scenario, { kind: K }>;
}

describe('the scenario runner', () => {
  it("fails the per-employee scenario when the HR API serves any employee to any consent", async () => {
    const scenario = scenarioNamed("one employee's consent never reads another", 'cross-employee-read');
    const stack = await startLocalScenarioStack(scenario);
    // An HR API with the right token checks but without the check that sub is the employee read.
    const broken = express();
    broken.get(
      '/employees/:id',
      requireBearer({ issuer: stack.issuer, audience: 'https://staff0/api', scopes: ['read:employee'], realm: 'broken' }),
      (req, res) => {
        res.json({ id: req.params.id, name: 'someone', employment_status: 'active' });
      },
    );
    const server = createServer(broken);
    const hrApiUrl = await listenLocal(server);
    try {
      const observation = await runScenario(scenario, { stack: { ...stack, services: { ...stack.services, hrApiUrl } } });
      expect(observation.status).toBe('failed');
      expect(observation.problems.join('\n')).toMatch(/another employee's record answered 200/);
    } finally {
      server.close();
      await stack.close();
    }
  });

  it('fails a scenario whose employee does something other than it expects, and says how', async () => {
    const denies = scenarioNamed('employee denies', 'conversation');
    const approvesInstead: ConversationScenario = { ...denies, employee: [{ user: 'john', decision: 'approve', via: 'api' }] };
    const stack = await startLocalScenarioStack(approvesInstead);
    try {
      const observation = await runScenario(approvesInstead, { stack });
      expect(observation.status).toBe('failed');
      expect(observation.observed).toEqual(['SUBMITTED → WORKING → AUTH_REQUIRED → WORKING → COMPLETED']);
      expect(observation.expected).toEqual(['SUBMITTED → WORKING → AUTH_REQUIRED → REJECTED']);
      expect(observation.problems.some((p) => p.startsWith('answer "Yes, John Doe'))).toBe(true);
    } finally {
      await stack.close();
    }
  });

  it('fails a browser step when no browser is available rather than skipping it', async () => {
    const approves = scenarioNamed('active employee approves', 'conversation');
    const stack = await startLocalScenarioStack(approves);
    try {
      const observation = await runScenario(approves, { stack, timeoutMs: 15_000 });
      expect(observation.status).toBe('failed');
      expect(observation.problems.join('\n')).toMatch(/needs a browser/);
    } finally {
      await stack.close();
    }
  });
});
