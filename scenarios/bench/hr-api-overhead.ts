import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import * as oidc from 'openid-client';
import { createHrApi, type EmployeeStatusRecord } from '../../hr-api/server.ts';
import { createTenant } from '../../mock-guardian/tenant.ts';
import { LOCAL_TENANT_DEFAULTS } from '../../sandbox/config.ts';
import { baseUrl, closeServer, listenOn } from '../../sandbox/http-listener.ts';
import { repoRoot } from '../../sandbox/test/processes.ts';
import { benchEmployees, benchPeople, benchTenant, type BenchPerson } from './bench-tenant.ts';
import type { LoadJob, LoadResult } from './load-generator.ts';
import { check, figure, type BenchmarkResult, type Check } from './report.ts';
import { ratios } from './stats.ts';

/**
 * HR API overhead: authorized `GET /employees/:id` (RS256 JWT verified with
 * jose's cached remote JWKS, scope and subject checked) against a bare
 * Express handler answering the same JSON, both served by this process,
 * loaded in alternating rounds by one load-generator process at the same
 * concurrency over keep-alive connections.
 */

export const HR_API_RATIO_FLOOR = 0.5;

export interface HrApiOverheadOptions {
  rounds: number;
  /** Milliseconds of load per server per round. */
  durationMs: number;
  /** Unmeasured load per server before the first round. */
  warmupMs: number;
  concurrency: number;
  log?: (line: string) => void;
}

const LOAD_GENERATOR = fileURLToPath(new URL('./load-generator.ts', import.meta.url));

/** An HR API token the way the agent gets one: a CIBA request the employee approves (CIBA §7.1, §10.1). */
export async function employeeToken(issuer: string, person: BenchPerson, approve: (userId: string) => Promise<void>): Promise<string> {
  const { clientId, clientSecret } = LOCAL_TENANT_DEFAULTS.hrAgentClient;
  const config = await oidc.discovery(new URL(issuer), clientId, undefined, oidc.ClientSecretPost(clientSecret), {
    execute: [oidc.allowInsecureRequests],
  });
  const started = await oidc.initiateBackchannelAuthentication(config, {
    scope: 'openid read:employee',
    audience: LOCAL_TENANT_DEFAULTS.apiAudience,
    binding_message: 'Benchmark token',
    login_hint: JSON.stringify({ format: 'iss_sub', iss: issuer, sub: person.userId }),
  });
  await approve(person.userId);
  const tokens = await oidc.pollBackchannelAuthenticationGrant(config, started, undefined, { signal: AbortSignal.timeout(30_000) });
  return tokens.access_token;
}

export function startLoadGenerator(): { child: ChildProcess; run(job: Omit<LoadJob, 'kind'>): Promise<LoadResult> } {
  const child = fork(LOAD_GENERATOR, [], { cwd: repoRoot, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return {
    child,
    run(job) {
      return new Promise((resolve, reject) => {
        const onMessage = (message: unknown) => {
          cleanup();
          const m = message as { kind?: unknown; message?: unknown };
          if (m.kind === 'result') resolve(message as LoadResult);
          else reject(new Error(`The load generator failed: ${String(m.message)}`));
        };
        const onExit = (code: number | null) => {
          cleanup();
          reject(new Error(`The load generator exited (code ${code})`));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error('The load generator did not answer in time'));
        }, job.durationMs + 30_000);
        const cleanup = () => {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
        };
        child.on('message', onMessage);
        child.on('exit', onExit);
        const message: LoadJob = { kind: 'run', ...job };
        child.send(message);
      });
    },
  };
}

export async function benchHrApiOverhead(options: HrApiOverheadOptions): Promise<BenchmarkResult> {
  const log = options.log ?? (() => undefined);
  const people = benchPeople(1, 'api');
  const person = people[0] as BenchPerson;
  const tenant = createTenant({ tenantFile: benchTenant(people, { cibaInterval: 1 }), log: () => undefined });
  const closers: (() => Promise<void>)[] = [];
  const hrSamples: number[] = [];
  const bareSamples: number[] = [];
  let failed = 0;
  const bodies = new Set<string>();
  const serverCpu: Record<'hr' | 'bare', number[]> = { hr: [], bare: [] };
  const clientCpu: Record<'hr' | 'bare', number[]> = { hr: [], bare: [] };
  let generator: ReturnType<typeof startLoadGenerator> | undefined;
  try {
    const issuer = await tenant.listen(0, '127.0.0.1');
    closers.push(() => tenant.close());
    const hrApi = createHrApi({ issuer, audience: LOCAL_TENANT_DEFAULTS.apiAudience, employees: benchEmployees(people) });
    const hrApiUrl = await hrApi.listen(0, '127.0.0.1');
    closers.push(() => hrApi.close());

    // The same record the HR API returns, from a handler that checks nothing.
    const record: EmployeeStatusRecord = { id: person.userId, name: person.name, employment_status: 'active' };
    const bare = express();
    bare.disable('x-powered-by');
    bare.set('etag', false);
    bare.get('/employees/:id', (_req, res) => {
      res.set('Cache-Control', 'no-store');
      res.json(record);
    });
    const bareServer = createServer(bare);
    const bareUrl = baseUrl('http', '127.0.0.1', await listenOn(bareServer, 0, '127.0.0.1'));
    closers.push(() => closeServer(bareServer));

    const token = await employeeToken(issuer, person, async (userId) => {
      const pending = tenant.requests.list({ userId, status: 'pending' })[0];
      if (!pending) throw new Error(`No pending request for ${userId}`);
      const response = await fetch(new URL(`control/requests/${pending.id}/approve`, issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`The control API refused the approval: HTTP ${response.status}`);
    });

    const path = `/employees/${encodeURIComponent(person.userId)}`;
    const targets = {
      hr: { url: `${hrApiUrl}${path}`, headers: { authorization: `Bearer ${token}` } },
      bare: { url: `${bareUrl}${path}`, headers: {} },
    };
    const running = startLoadGenerator();
    generator = running;
    const load = async (target: keyof typeof targets, durationMs: number, measured = true) => {
      const cpuBefore = process.cpuUsage();
      const result = await running.run({ ...targets[target], concurrency: options.concurrency, durationMs });
      const cpu = process.cpuUsage(cpuBefore);
      if (measured) {
        // This process serves both; its CPU time over the run shows whether the server was the side that ran out.
        serverCpu[target].push((cpu.user + cpu.system) / 1000 / result.elapsedMs);
        clientCpu[target].push(result.cpuCores);
      }
      failed += result.failed;
      if (result.sampleBody !== undefined) bodies.add(result.sampleBody);
      return result;
    };
    await load('bare', options.warmupMs, false);
    await load('hr', options.warmupMs, false);
    for (let round = 0; round < options.rounds; round++) {
      // Alternating who goes first cancels a drift of the machine within a round.
      const order: (keyof typeof targets)[] = round % 2 === 0 ? ['bare', 'hr'] : ['hr', 'bare'];
      const got: Partial<Record<keyof typeof targets, LoadResult>> = {};
      for (const target of order) got[target] = await load(target, options.durationMs);
      hrSamples.push(got.hr?.requestsPerSecond ?? 0);
      bareSamples.push(got.bare?.requestsPerSecond ?? 0);
      log(`HR API round ${round + 1}/${options.rounds}: HR API ${Math.round(got.hr?.requestsPerSecond ?? 0)} req/s, bare ${Math.round(got.bare?.requestsPerSecond ?? 0)} req/s`);
    }
  } finally {
    if (generator) {
      const exited = new Promise((resolve) => generator?.child.once('exit', resolve));
      generator.child.disconnect();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      generator.child.kill('SIGKILL');
    }
    for (const close of closers.reverse()) await close();
  }
  const checks: Check[] = [
    check('every request answered 200', failed === 0 && hrSamples.every((s) => s > 0) && bareSamples.every((s) => s > 0), `${failed} failed`),
    check('both servers answered the same JSON', bodies.size === 1, `${bodies.size} distinct bodies`),
  ];
  return {
    id: 'hr-api-overhead',
    title: 'HR API overhead',
    method:
      `GET /employees/:id with a CIBA-issued RS256 token (jose's cached remote JWKS) vs a bare Express handler returning the same JSON, ` +
      `both served by the benchmark process; one load-generator process, ${options.concurrency} keep-alive connections, ` +
      `${options.durationMs} ms per server per round, servers alternating first; ratio per round.`,
    figures: [
      figure('authorized GET /employees/:id', 'req/s', hrSamples),
      figure('bare Express handler, same JSON', 'req/s', bareSamples),
      figure('HR API ÷ bare', 'x', ratios(hrSamples, bareSamples), { op: '>=', value: HR_API_RATIO_FLOOR }),
    ],
    extra: [
      figure('server process CPU during HR API load', 'cores', serverCpu.hr),
      figure('load generator CPU during HR API load', 'cores', clientCpu.hr),
      figure('server process CPU during bare load', 'cores', serverCpu.bare),
      figure('load generator CPU during bare load', 'cores', clientCpu.bare),
    ],
    checks,
  };
}
