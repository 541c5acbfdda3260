import { afterAll, describe, expect, it } from 'vitest';
import { catalogue } from './catalogue.ts';
import { runScenario } from './runner.ts';
import { startLocalScenarioStack } from './stack.ts';
import { lazyBrowser } from './suite.ts';

/**
 * The whole catalogue against the local tenant, as `npm run scenarios` runs it:
 * each scenario on its own in-process stack, browser steps in Chromium.
 */

const browser = lazyBrowser();
afterAll(() => browser.close());

describe.concurrent('scenario catalogue against the local tenant', () => {
  for (const scenario of catalogue) {
    it(scenario.name, async () => {
      const stack = await startLocalScenarioStack(scenario);
      try {
        const observation = await runScenario(scenario, { stack, browser: browser.get });
        expect(observation.problems).toEqual([]);
        expect(observation.status).toBe('passed');
      } finally {
        await stack.close();
      }
    });
  }
});
