import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, runCommand, waitUntil, type RunningCommand } from '../../sandbox/test/processes.ts';
import { check, figure, type BenchmarkResult, type Check } from './report.ts';

/**
 * Start-up: `npm run sandbox` launched as a user launches it, timed from the
 * spawn to the ready banner; then Ctrl-C (SIGINT to the process group) and a
 * wait until every process is gone before the next run. Each run alternates a
 * first start in a new state folder (the signing key is generated) with a
 * second start in that same folder (the key is read back), on fresh free ports.
 */

export const STARTUP_FLOOR_MS = 2000;
const BANNER = /Headless Agent Auth Sandbox is ready/;
/** Each service's own "listening" line, to see which one the banner waited for. */
const SERVICE_LINES = {
  tenant: /\[tenant\] Local tenant /,
  gemini: /\[gemini\] mock-gemini listening/,
  'hr-api': /\[hr-api\] Staff0 HR API listening/,
  agent: /\[agent ?\] Staff0 HR Agent listening/,
  flows: /\[flows ?\] Flow console /,
} as const;
type ServiceName = keyof typeof SERVICE_LINES;

export interface StartupOptions {
  runs: number;
  log?: (line: string) => void;
}

interface StartSample {
  bannerMs: number;
  stopMs: number;
  serviceMs: Record<ServiceName, number>;
  clean: boolean;
}

async function startOnce(stateDir: string): Promise<StartSample> {
  const [agent, hrApi, tenant, gemini, flowConsole] = await freePorts(5);
  const env: Record<string, string> = {
    HR_AGENT_PORT: String(agent),
    HR_API_PORT: String(hrApi),
    TENANT_PORT: String(tenant),
    MOCK_GEMINI_PORT: String(gemini),
    FLOW_CONSOLE_PORT: String(flowConsole),
    SANDBOX_STATE_DIR: stateDir,
    // Shields the run from a developer's .env: the local backend with mock-gemini, as after install.
    IDENTITY_BACKEND: 'local',
    TENANT_HTTPS: 'false',
    GOOGLE_API_KEY: '',
    CIBA_DELIVERY_MODE: 'poll',
    TENANT_FILE: '',
    HR_AGENT_URL: '',
    HR_API_URL: '',
  };
  const startedAt = performance.now();
  const sandbox: RunningCommand = runCommand('npm', ['run', 'sandbox'], env);
  try {
    const serviceMs = {} as Record<ServiceName, number>;
    const lines = (Object.entries(SERVICE_LINES) as [ServiceName, RegExp][]).map(([name, pattern]) =>
      sandbox.waitForOutput(pattern, 60_000).then(() => {
        serviceMs[name] = performance.now() - startedAt;
      }),
    );
    const seen = Promise.all(lines);
    seen.catch(() => undefined);
    await sandbox.waitForOutput(BANNER, 60_000);
    const bannerMs = performance.now() - startedAt;
    // Each service logs its line before it answers its health check; a line reworded away shows up as NaN, not a hang.
    await Promise.race([seen, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    for (const name of Object.keys(SERVICE_LINES) as ServiceName[]) serviceMs[name] ??= Number.NaN;

    const stoppingAt = performance.now();
    sandbox.signalGroup('SIGINT');
    await sandbox.exited;
    await waitUntil(async () => (sandbox.groupAlive() ? undefined : true), 20_000, 20);
    return { bannerMs, stopMs: performance.now() - stoppingAt, serviceMs, clean: !sandbox.groupAlive() };
  } catch (error) {
    sandbox.signalGroup('SIGKILL');
    throw error;
  }
}

export async function benchStartup(options: StartupOptions): Promise<BenchmarkResult> {
  const log = options.log ?? (() => undefined);
  const first: StartSample[] = [];
  const again: StartSample[] = [];
  const checks: Check[] = [];
  for (let run = 1; run <= options.runs; run++) {
    const stateDir = mkdtempSync(join(tmpdir(), 'sandbox-bench-state-'));
    try {
      const cold = await startOnce(stateDir);
      first.push(cold);
      const warm = await startOnce(stateDir);
      again.push(warm);
      log(`start-up run ${run}/${options.runs}: ${Math.round(cold.bannerMs)} ms (new state folder), ${Math.round(warm.bannerMs)} ms (same folder)`);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
  const all = [...first, ...again];
  checks.push(
    check('every start reached the ready banner', all.length === 2 * options.runs, `${all.length} of ${2 * options.runs} starts`),
    check('every Ctrl-C left no process behind', all.every((s) => s.clean), `${all.filter((s) => s.clean).length} clean stops`),
  );
  const slowest = (samples: StartSample[]) =>
    samples.map((s) => Object.entries(s.serviceMs).sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'none');
  return {
    id: 'startup',
    title: 'Start-up (`npm run sandbox`)',
    method:
      'Spawns `npm run sandbox` on free ports, timed from the spawn to the ready banner on stdout; each run is a first start in a new ' +
      'SANDBOX_STATE_DIR (signing key generated) followed by a second start in the same folder. Stop: SIGINT to the process group until no process is left.',
    figures: [
      figure('to banner, first start (new state folder)', 'ms', first.map((s) => s.bannerMs), { op: '<=', value: STARTUP_FLOOR_MS }),
      figure('to banner, second start (same folder)', 'ms', again.map((s) => s.bannerMs), { op: '<=', value: STARTUP_FLOOR_MS }),
      figure('Ctrl-C until every process is gone', 'ms', all.map((s) => s.stopMs)),
    ],
    extra: [
      ...(Object.keys(SERVICE_LINES) as ServiceName[]).map((name) =>
        figure(`"${name}" listening line after spawn`, 'ms', all.map((s) => s.serviceMs[name])),
      ),
    ],
    notes: { slowestServiceEachStart: slowest(all) },
    checks,
  };
}
