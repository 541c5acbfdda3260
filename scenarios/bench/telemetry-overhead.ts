import { spawn, type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import type { Client } from '@a2a-js/sdk/client';
import { createTenant } from '../../mock-guardian/tenant.ts';
import { startLocalStack, type LocalStack } from '../../sandbox/local-stack.ts';
import { buildSandbox } from '../../sandbox/build.mjs';
import { nodeArgs, serviceEnvironment, waitForHealthy } from '../../sandbox/services.ts';
import { createTelemetry } from '../../sandbox/telemetry/setup.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../../sandbox/test/otlp-receiver.ts';
import { freePorts, repoRoot } from '../../sandbox/test/processes.ts';
import { approveAndTime } from './approval-latency.ts';
import { benchEmployees, benchPeople, benchTenant, type BenchPerson } from './bench-tenant.ts';
import { employeeToken, startLoadGenerator } from './hr-api-overhead.ts';
import { check, figure, type BenchmarkResult, type Check } from './report.ts';
import { readProcessCpuMs } from './process-memory.ts';
import { differences, ratios } from './stats.ts';

/**
 * What telemetry costs, on and off side by side in one run. "On" is the
 * default: every hop's span is exported over OTLP/HTTP. "Off" is
 * `OTEL_SDK_DISABLED=true`: no span leaves the service. Both keep the hop
 * log lines (the services' own logs, LOG_LEVEL=info, as JSON), so the ratio
 * is the cost of tracing; what those lines cost on top of a service that
 * logs nothing is measured beside it ("no logs"). Measured: the approval →
 * COMPLETED latency in ping mode (in-process stacks, runs alternating, the
 * spans going to a flow console process), and
 * the HR API's throughput and CPU per request (hr-api/main.ts processes as
 * `npm run sandbox` starts them, loaded in alternating rounds).
 */

/** Telemetry on may cost at most this much (the "within 5 %"); reported, not fatal. */
export const TELEMETRY_LATENCY_CEILING = 1.05;
export const TELEMETRY_THROUGHPUT_FLOOR = 0.95;
const TURN_TIMEOUT_MS = 60_000;

export interface TelemetryOverheadOptions {
  /** Approvals per stack (after `warmups`). */
  runs: number;
  warmups: number;
  /** HR API load rounds (each loads both processes) and their length. */
  rounds: number;
  durationMs: number;
  warmupMs: number;
  concurrency: number;
  log?: (line: string) => void;
}

/** Where the services' log lines go during a measurement: written, as on a pipe, and dropped. */
function discard(): Writable {
  return new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
}

async function approvalLatency(options: TelemetryOverheadOptions, checks: Check[]): Promise<{ off: number[]; on: number[] }> {
  // The spans go where `npm run sandbox` sends them: to the flow console, in a process of its own.
  const flowConsole = await startServiceProcess('sandbox/flow-console/main.ts', 'FLOW_CONSOLE_PORT', {});
  try {
    const samples = await approvalLatencyInto(`${flowConsole.url}/v1/traces`, options, checks);
    const listed = (await (await fetch(`${flowConsole.url}/api/tasks`, { signal: AbortSignal.timeout(10_000) })).json()) as { tasks: unknown[] };
    checks.push(check('the stack with telemetry on exported its spans (the flow console lists its tasks)', listed.tasks.length > 0, `${listed.tasks.length} tasks`));
    return samples;
  } finally {
    await flowConsole.stop();
  }
}

async function approvalLatencyInto(exportUrl: string, options: TelemetryOverheadOptions, checks: Check[]): Promise<{ off: number[]; on: number[] }> {
  const samples = { off: [] as number[], on: [] as number[] };
  const stacks = new Map<'off' | 'on', { stack: LocalStack; client: Client; people: BenchPerson[] }>();
  const perStack = options.runs + options.warmups;
  let completed = 0;
  try {
    for (const side of ['off', 'on'] as const) {
      const people = benchPeople(perStack, `tel${side}`);
      const stack = await startLocalStack({
        tenantFile: benchTenant(people),
        employees: benchEmployees(people),
        tenantSettings: { cibaInterval: 5 },
        ciba: { deliveryMode: 'ping' },
        telemetry: (service) =>
          createTelemetry({
            service,
            exportTo: side === 'on' ? [exportUrl] : [],
            logging: { format: 'json', level: 'info', colour: false, destination: discard() },
          }),
      });
      stacks.set(side, { stack, client: (await stack.connect()).client, people });
    }
    for (let run = 0; run < perStack; run++) {
      // Alternating who goes first cancels a drift of the machine within a round.
      const order = run % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const);
      const line: string[] = [];
      for (const side of order) {
        const entry = stacks.get(side);
        const person = entry?.people[run];
        if (!entry || !person) throw new Error(`no stack or person for ${side} #${run}`);
        const measured = await Promise.race([
          approveAndTime(entry.stack, entry.client, person, 0),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('An approval did not finish in time')), TURN_TIMEOUT_MS).unref()),
        ]);
        completed += measured.turn.finalState === 'COMPLETED' ? 1 : 0;
        if (run >= options.warmups) samples[side].push(measured.latencyMs);
        line.push(`${side} ${Math.round(measured.latencyMs)} ms`);
      }
      if (run >= options.warmups) options.log?.(`approval→COMPLETED (ping) run ${run - options.warmups + 1}/${options.runs}: ${line.join(', ')}`);
    }
  } finally {
    for (const { stack } of stacks.values()) await stack.close();
  }
  checks.push(check('every approval with telemetry on and off COMPLETED', completed === 2 * perStack, `${completed} of ${2 * perStack}`));
  return samples;
}

/**
 * `silent`: no spans exported, no log lines; `off`: JSON hop lines but no export (OTEL_SDK_DISABLED); `on`: both;
 * `pretty`: no export, the hop lines as `npm run sandbox` prints them by default (LOG_FORMAT=pretty).
 */
type HrApiSide = 'silent' | 'off' | 'on' | 'pretty';
const HR_API_SIDES: readonly HrApiSide[] = ['silent', 'off', 'on', 'pretty'];

interface ServiceProcess {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** A service's main as `npm run sandbox` runs it, on a free port (`portVariable`), with `env` on top; its output is dropped. */
async function startServiceProcess(entry: string, portVariable: string, env: Record<string, string>): Promise<ServiceProcess> {
  const [port] = await freePorts(1);
  const child = spawn(process.execPath, nodeArgs({ entry, nodeFlags: [] }, await buildSandbox()), {
    cwd: repoRoot,
    env: { ...process.env, ...serviceEnvironment(), [portVariable]: String(port), SANDBOX_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const ready = new AbortController();
  const timer = setTimeout(() => ready.abort(new Error(`${entry} did not start in time`)), 60_000);
  try {
    await Promise.race([waitForHealthy(`${url}/health`, ready.signal), exited.then(() => Promise.reject(new Error(`${entry} exited`)))]);
  } finally {
    clearTimeout(timer);
    ready.abort();
  }
  return {
    child,
    url,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
      child.kill('SIGKILL');
    },
  };
}

/** `hr-api/main.ts` on a free port. */
export function startHrApiProcess(env: Record<string, string>): Promise<ServiceProcess> {
  return startServiceProcess('hr-api/main.ts', 'HR_API_PORT', { HR_API_URL: '', ...env });
}

async function hrApiThroughput(
  options: TelemetryOverheadOptions,
  receiver: OtlpReceiver,
  checks: Check[],
): Promise<Record<HrApiSide, { rate: number[]; cpuUs: number[] }>> {
  const samples: Record<HrApiSide, { rate: number[]; cpuUs: number[] }> = {
    silent: { rate: [], cpuUs: [] },
    off: { rate: [], cpuUs: [] },
    on: { rate: [], cpuUs: [] },
    pretty: { rate: [], cpuUs: [] },
  };
  const tenant = createTenant({ settings: { cibaInterval: 1 }, log: () => undefined });
  const closers: (() => Promise<void>)[] = [];
  let failed = 0;
  try {
    const issuer = await tenant.listen(0, '127.0.0.1');
    closers.push(() => tenant.close());
    const person: BenchPerson = { userId: 'auth0|jdoe', email: 'jdoe@staff0.com', name: 'John Doe' };
    const token = await employeeToken(issuer, person, async (userId) => {
      const pending = tenant.requests.list({ userId, status: 'pending' })[0];
      if (!pending) throw new Error(`No pending request for ${userId}`);
      await tenant.requests.decide(pending.id, 'approve');
    });
    const common = {
      IDENTITY_BACKEND: 'local',
      TENANT_HTTPS: 'false',
      TENANT_PORT: new URL(issuer).port,
      FLOW_CONSOLE_PORT: new URL(receiver.url).port,
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
    };
    const processes: Record<HrApiSide, ServiceProcess> = {
      silent: await startHrApiProcess({ ...common, OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'silent' }),
      off: await startHrApiProcess({ ...common, OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'info', LOG_FORMAT: 'json' }),
      on: await startHrApiProcess({ ...common, OTEL_SDK_DISABLED: 'false', LOG_LEVEL: 'info', LOG_FORMAT: 'json' }),
      pretty: await startHrApiProcess({ ...common, OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'info', LOG_FORMAT: 'pretty' }),
    };
    closers.push(...HR_API_SIDES.map((side) => () => processes[side].stop()));
    const generator = startLoadGenerator();
    closers.push(async () => {
      const exited = new Promise((resolve) => generator.child.once('exit', resolve));
      generator.child.disconnect();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
      generator.child.kill('SIGKILL');
    });
    const load = async (side: HrApiSide, durationMs: number) => {
      const pid = processes[side].child.pid ?? 0;
      const cpuBefore = readProcessCpuMs(pid);
      const result = await generator.run({
        url: `${processes[side].url}/employees/${encodeURIComponent(person.userId)}`,
        headers: { authorization: `Bearer ${token}` },
        concurrency: options.concurrency,
        durationMs,
      });
      failed += result.failed;
      // CPU time per request, read from outside the process: what telemetry costs, whatever else the machine does.
      const cpuUsPerRequest = ((readProcessCpuMs(pid) - cpuBefore) * 1000) / Math.max(1, result.ok);
      return { rate: result.requestsPerSecond, cpuUsPerRequest };
    };
    for (const side of HR_API_SIDES) await load(side, options.warmupMs);
    const exportsBefore = receiver.exports;
    for (let round = 0; round < options.rounds; round++) {
      // Each round in another order, so that a drift of the machine within a round favours no side.
      const order = HR_API_SIDES.map((_, i) => HR_API_SIDES[(i + round) % HR_API_SIDES.length]!);
      const line: string[] = [];
      for (const side of order) {
        const got = await load(side, options.durationMs);
        samples[side].rate.push(got.rate);
        samples[side].cpuUs.push(got.cpuUsPerRequest);
        line.push(`${side} ${Math.round(got.rate)} req/s (${Math.round(got.cpuUsPerRequest)} µs CPU each)`);
      }
      options.log?.(`HR API round ${round + 1}/${options.rounds}: ${line.join(', ')}`);
    }
    // The "on" process must really have exported: its spans reach the receiver in batches.
    await new Promise((resolve) => setTimeout(resolve, 500));
    checks.push(
      check('every HR API request answered 200', failed === 0, `${failed} failed`),
      check('the HR API with telemetry on exported its spans', receiver.exports > exportsBefore, `${receiver.exports - exportsBefore} exports`),
    );
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
  return samples;
}

export async function benchTelemetryOverhead(options: TelemetryOverheadOptions): Promise<BenchmarkResult> {
  const receiver = await startOtlpReceiver({ keep: false });
  const checks: Check[] = [];
  let latency: { off: number[]; on: number[] };
  let throughput: Record<HrApiSide, { rate: number[]; cpuUs: number[] }>;
  try {
    latency = await approvalLatency(options, checks);
    throughput = await hrApiThroughput(options, receiver, checks);
  } finally {
    await receiver.close();
  }
  return {
    id: 'telemetry-overhead',
    title: 'Telemetry on ÷ off',
    method:
      'Telemetry on: every hop span exported over OTLP/HTTP JSON (the default); off: OTEL_SDK_DISABLED=true. Both log each hop ' +
      'as a JSON line (LOG_LEVEL=info) to a stream that drops it, so the ratios are the cost of tracing. Approve → COMPLETED at an ' +
      'A2A streaming client in ping mode, approving as soon as AUTH_REQUIRED arrives, on two in-process stacks, runs alternating, ' +
      'the "on" stack exporting to a flow console process (sandbox/flow-console/main.ts) ' +
      '(the async context manager is process-wide, so both share its cost). HR API: GET /employees/:id with a CIBA token against ' +
      'four hr-api/main.ts processes — telemetry on, off, off with LOG_LEVEL=silent ("no logs": what the hop lines cost), and off ' +
      'with LOG_FORMAT=pretty (the lines as `npm run sandbox` prints them) — one ' +
      `load generator, ${options.concurrency} keep-alive connections, ${options.durationMs} ms per process per round, in rotating ` +
      "order; ratios per round. CPU per request is the HR API process's user+system time (/proc) over the requests it answered, " +
      'which a busy machine disturbs less than throughput.',
    figures: [
      figure('approve → COMPLETED (ping), telemetry off', 'ms', latency.off),
      figure('approve → COMPLETED (ping), telemetry on', 'ms', latency.on),
      figure('approval latency on ÷ off', 'x', ratios(latency.on, latency.off), { op: '<=', value: TELEMETRY_LATENCY_CEILING }),
      figure('HR API, telemetry off', 'req/s', throughput.off.rate),
      figure('HR API, telemetry on', 'req/s', throughput.on.rate),
      figure('HR API throughput on ÷ off', 'x', ratios(throughput.on.rate, throughput.off.rate), { op: '>=', value: TELEMETRY_THROUGHPUT_FLOOR }),
      figure('HR API CPU per request on ÷ off', 'x', ratios(throughput.on.cpuUs, throughput.off.cpuUs)),
      figure('HR API, no logs and no telemetry', 'req/s', throughput.silent.rate),
      figure('HR API throughput, hop lines ÷ no logs', 'x', ratios(throughput.off.rate, throughput.silent.rate)),
    ],
    extra: [
      figure('HR API CPU per request, no logs (µs)', 'count', throughput.silent.cpuUs),
      figure('HR API CPU per request, telemetry off (µs)', 'count', throughput.off.cpuUs),
      figure('HR API CPU per request, telemetry on (µs)', 'count', throughput.on.cpuUs),
      figure('HR API CPU per request, telemetry off, pretty hop lines (µs)', 'count', throughput.pretty.cpuUs),
      figure('HR API CPU per request, pretty hop lines − no logs (µs)', 'count', differences(throughput.pretty.cpuUs, throughput.silent.cpuUs)),
    ],
    checks,
  };
}
