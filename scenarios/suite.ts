import type { Browser } from 'playwright';
import type { SandboxConfig } from '../sandbox/config.ts';
import { launchChromium } from './browser.ts';
import { consentsAsked, createPacer } from './pacing.ts';
import { runScenario, skipReason } from './runner.ts';
import type { Observation, Scenario } from './scenario.ts';
import { configuredPersonas, startAuth0ScenarioStack, startLocalScenarioStack, type ScenarioStack } from './stack.ts';

/** Picks scenarios by name (a case-insensitive part of it) or by `tag:<tag>`; no filter picks all. */
export function selectScenarios(all: Scenario[], filters: string[]): Scenario[] {
  if (filters.length === 0) return all;
  return all.filter((s) =>
    filters.some((f) => (f.startsWith('tag:') ? s.tags.includes(f.slice(4)) : s.name.toLowerCase().includes(f.toLowerCase()))),
  );
}

export interface SuiteOptions {
  config: SandboxConfig;
  /** Local scenarios at once; against Auth0 one at a time, as one person answers the phone. */
  concurrency?: number;
  onResult?: (observation: Observation) => void;
  prompt?: (line: string) => void;
  /** Against Auth0: push requests allowed per user per minute (Auth0: 5); 0 paces nothing. */
  consentsPerUserPerMinute?: number;
}

/** Starts one shared browser on first use. */
export function lazyBrowser(): { get: () => Promise<Browser>; close: () => Promise<void> } {
  let browser: Promise<Browser> | undefined;
  return {
    get: () => (browser ??= launchChromium()),
    close: async () => {
      if (browser) await (await browser).close();
    },
  };
}

export async function runSuite(scenarios: Scenario[], options: SuiteOptions): Promise<Observation[]> {
  const local = options.config.identity.backend === 'local';
  const browser = lazyBrowser();
  const results: Observation[] = new Array(scenarios.length);
  const pacer = createPacer(options.consentsPerUserPerMinute ?? 5);
  let next = 0;
  const worker = async () => {
    while (next < scenarios.length) {
      const index = next++;
      const scenario = scenarios[index]!;
      let observation: Observation;
      if (!local) {
        const reason = skipReason(scenario, { mode: 'auth0', personas: configuredPersonas(options.config) });
        if (reason) {
          observation = { scenario: scenario.name, status: 'skipped', skipReason: reason, observed: [], expected: [], answers: [], problems: [], durationMs: 0 };
          results[index] = observation;
          options.onResult?.(observation);
          continue;
        }
      }
      if (!local) {
        await pacer.before(consentsAsked(scenario), (seconds) =>
          options.prompt?.(`Waiting ${seconds} s: Auth0 allows 5 push requests per user per minute.`),
        );
      }
      let stack: ScenarioStack | undefined;
      try {
        stack = local ? await startLocalScenarioStack(scenario) : await startAuth0ScenarioStack(options.config, scenario);
        observation = await runScenario(scenario, {
          stack,
          browser: browser.get,
          ...(options.prompt ? { prompt: options.prompt } : {}),
          timeoutMs: local ? 45_000 : 330_000,
        });
      } catch (error) {
        observation = {
          scenario: scenario.name,
          status: 'failed',
          observed: [],
          expected: [],
          answers: [],
          problems: [`could not start: ${error instanceof Error ? error.message : String(error)}`],
          durationMs: 0,
        };
      } finally {
        await stack?.close();
      }
      results[index] = observation;
      options.onResult?.(observation);
    }
  };
  try {
    const width = local ? Math.max(1, options.concurrency ?? 6) : 1;
    await Promise.all(Array.from({ length: Math.min(width, scenarios.length) }, worker));
  } finally {
    await browser.close();
  }
  return results;
}
