import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../sandbox/test/processes.ts';
import { catalogue } from './catalogue.ts';
import { htmlReport, junitReport, terminalReport } from './report.ts';
import { runScenario } from './runner.ts';
import type { Observation } from './scenario.ts';
import { startLocalScenarioStack } from './stack.ts';
import { lazyBrowser } from './suite.ts';

/**
 * The whole catalogue against the local tenant, as `npm run scenarios` runs it:
 * each scenario on its own in-process stack, browser steps in Chromium. The
 * same terminal, JUnit and HTML reports land in reports/scenarios/.
 */

const browser = lazyBrowser();
const observations: Observation[] = [];
const started = performance.now();

afterAll(async () => {
  await browser.close();
  const totalMs = performance.now() - started;
  const ordered = catalogue.flatMap((s) => observations.filter((o) => o.scenario === s.name));
  console.log(terminalReport(ordered, totalMs));
  const dir = join(repoRoot, 'reports', 'scenarios');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'junit.xml'), junitReport(ordered, totalMs));
  writeFileSync(join(dir, 'report.html'), htmlReport(ordered, catalogue, totalMs, new Date()));
});

describe.concurrent('scenario catalogue against the local tenant', () => {
  for (const scenario of catalogue) {
    it(scenario.name, async () => {
      const stack = await startLocalScenarioStack(scenario);
      try {
        const observation = await runScenario(scenario, { stack, browser: browser.get });
        observations.push(observation);
        expect(observation.problems).toEqual([]);
        expect(observation.status).toBe('passed');
      } finally {
        await stack.close();
      }
    });
  }
});
