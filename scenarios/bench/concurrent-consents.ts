import { setTimeout as delay } from 'node:timers/promises';
import { runTurn, type TurnResult } from '../../sandbox/conversation.ts';
import { startPostgresServer } from '../../sandbox/test/postgres-server.ts';
import { runCommand, type RunningCommand } from '../../sandbox/test/processes.ts';
import { startAgentProcessStack, type AgentProcessStack } from './agent-process-stack.ts';
import { answersFor, benchPeople, questionAbout, type BenchPerson } from './bench-tenant.ts';
import { readProcessCpuMs, readProcessMemory, readProcessSession, readProcessTreeCpuMs } from './process-memory.ts';
import type { Random } from './random.ts';
import { check, figure, type BenchmarkResult, type Check } from './report.ts';
import { percentile } from './stats.ts';

/**
 * Concurrent consents: N A2A verifications sent at once, each about a
 * different employee and so each with its own CIBA request; once all N wait
 * in AUTH_REQUIRED, the employees approve through the tenant's control API in
 * random order. Every service runs as its own process, as `npm run sandbox`
 * starts it (agent-process-stack.ts); this process is the caller and the
 * employees, and reads the agent's memory and CPU from /proc.
 * In poll mode the tenant's interval is its fastest (1 s), the heaviest
 * polling N requests can make; in ping mode it is Auth0's 5 s, the cadence of
 * the agent's checks that the backend still knows each request. `busy` runs
 * the batch while two other processes keep both cores busy.
 */

export type DeliveryMode = 'poll' | 'ping';
/** Where the agent keeps its work: its memory only, its embedded PGlite, or a real PostgreSQL server. */
export type AgentStore = 'memory' | 'embedded' | 'postgres';

export interface ConcurrentConsentsOptions {
  consents: number;
  /** How long the batch watches the consents wait, all pending and none approved yet, before it approves them. */
  waitingMs: number;
  /** Batches, each with a fresh tenant and agent process. */
  runs: number;
  mode: DeliveryMode;
  busy: boolean;
  store: AgentStore;
  /**
   * Approvals sent per second at most, each at its slot (and still only once the control API answered the one
   * before); undefined: each as soon as the one before was answered.
   */
  pacedPerSecond?: number;
  random: Random;
  log?: (line: string) => void;
}

/** Unmeasured, fully approved turns before the baseline is read (caches, lazy code). */
const WARMUP_TURNS = 3;
const INTERVAL: Record<DeliveryMode, number> = { poll: 1, ping: 5 };
const BATCH_TIMEOUT_MS = 300_000;
/** Floors (issue figures): approve → COMPLETED p95 and the agent's peak RSS at 1000 concurrent consents. */
export const CONSENT_FLOORS = { pingP95Ms: 250, pollP95OverIntervalMs: 500, peakRssMiB: 300 } as const;

interface Request {
  person: BenchPerson;
  sentAt: number;
  authRequiredAt?: number;
  approvedAt?: number;
  completedAt?: number;
  turn?: TurnResult;
  error?: unknown;
}

interface Waiting {
  /** How long the window lasted; the batch's total leaves it out. */
  ms: number;
  tokenRequestsPerSecond: number;
  agentCores: number;
  tenantCores: number;
}

interface Batch {
  /** The sessions of the sandbox's processes (its launcher's and every service's), and this process's. */
  sessions: { sandbox: (number | undefined)[]; benchmark: number | undefined };
  totalMs: number;
  allPendingMs: number;
  sendToAnswerMs: number[];
  approveToAnswerMs: number[];
  baselineRssKiB: number;
  pendingRssKiB: number;
  peakRssKiB: number;
  /** The tenant's peak RSS (VmHWM) at the end: the other process that holds every consent. */
  tenantPeakRssKiB: number;
  /** While all wait and none is approved yet: token requests the tenant answered per second, and the CPU spent (cores). */
  waiting: Waiting;
  /** CPU per approved consent from the first approval to the last answer: the agent process, and each other service's process. */
  agentCpuPerConsentMs: number;
  servicesCpuPerConsentMs: Record<string, number>;
  /** This process's own CPU per approved consent over the same time: the 1000 clients' streams and the approvals. */
  clientCpuPerConsentMs: number;
  /** Approvals sent per second, first to last: how fast the control API let them go. */
  approvalsPerSecond: number;
  completed: number;
  rightPerson: number;
  settled: number;
  approvedAtTenant: number;
  /** Turns whose connection was reset or cut (never an answer). */
  resets: number;
  /** Turns refused by the agent even after the client's retries. */
  refused: number;
  wrongAnswers: number;
  /** How turns that did not complete ended, for the report's notes. */
  failures: string[];
}

export async function approve(controlUrl: string, id: string): Promise<void> {
  const response = await fetch(new URL(`requests/${encodeURIComponent(id)}/approve`, controlUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
    signal: AbortSignal.timeout(10_000),
  });
  // Read, not cancelled: the answer is a few hundred bytes, and a cancel costs the reader an abort error each time.
  const answer = await response.text();
  if (!response.ok) throw new Error(`The control API refused to approve ${id}: HTTP ${response.status} ${answer.slice(0, 200)}`);
}

async function until(condition: () => boolean | Promise<boolean>, what: string, signal: AbortSignal): Promise<void> {
  while (!(await condition())) {
    if (signal.aborted) throw new Error(`Gave up waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Approvals per second from the first to the last (0 with fewer than two). */
function approvalRate(approvedAt: number[]): number {
  if (approvedAt.length < 2) return 0;
  const spanMs = Math.max(...approvedAt) - Math.min(...approvedAt);
  return spanMs > 0 ? ((approvedAt.length - 1) * 1000) / spanMs : 0;
}

/** Two processes that spin until killed: a machine busy with other work. */
function keepCoresBusy(): RunningCommand[] {
  return [0, 1].map(() => runCommand(process.execPath, ['-e', 'for (;;) {}'], {}));
}

function isReset(error: unknown): boolean {
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 6; cause = cause.cause, depth += 1) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || /terminated|other side closed|socket hang up/i.test(cause.message)) return true;
  }
  return false;
}

async function runBatch(options: ConcurrentConsentsOptions, batch: number): Promise<Batch> {
  const people = benchPeople(options.consents + WARMUP_TURNS, 'load');
  const warmups = people.slice(0, WARMUP_TURNS);
  const load = people.slice(WARMUP_TURNS);
  let burners: RunningCommand[] = [];
  const deadline = AbortSignal.timeout(BATCH_TIMEOUT_MS);
  const postgres = options.store === 'postgres' ? await startPostgresServer() : undefined;
  const stack = await startAgentProcessStack({
    people,
    mode: options.mode,
    interval: INTERVAL[options.mode],
    env:
      options.store === 'memory'
        ? { AGENT_STATE: 'memory', DATABASE_URL: '' }
        : { AGENT_STATE: 'database', DATABASE_URL: postgres ? await postgres.createDatabase() : '' },
  }).catch(async (error: unknown) => {
    await postgres?.stop();
    throw error;
  });
  try {
    const { controlUrl, client, pid } = stack;
    await Promise.all(warmups.map((person) => askAndApproveAtOnce(stack, person, deadline)));
    const baselineRssKiB = readProcessMemory(pid).rssKiB;
    if (options.busy) burners = keepCoresBusy();

    const requests: Request[] = load.map((person) => ({ person, sentAt: 0 }));
    const startedAt = performance.now();
    const turns = requests.map(async (request) => {
      request.sentAt = performance.now();
      try {
        request.turn = await runTurn(client, questionAbout(request.person), {}, {
          signal: deadline,
          onEvent(event) {
            if (event.kind !== 'state') return;
            if (event.state === 'AUTH_REQUIRED') request.authRequiredAt ??= event.at;
            if (event.state === 'COMPLETED') request.completedAt = event.at;
          },
        });
      } catch (error) {
        request.error = error;
      }
    });
    const pendingOf = new Map<string, string>();
    await until(
      async () => {
        // A turn that ended (reset, refused) never reaches AUTH_REQUIRED: count it, do not wait for it.
        if (!requests.every((r) => r.authRequiredAt !== undefined || r.error !== undefined || r.turn !== undefined)) return false;
        for (const view of await stack.requests({ status: 'pending' })) pendingOf.set(view.user_id, view.id);
        return requests.every((r) => r.authRequiredAt === undefined || pendingOf.has(r.person.userId));
      },
      `all ${load.length} consent requests are pending`,
      deadline,
    );
    const allPendingMs = performance.now() - startedAt;
    const pendingRssKiB = readProcessMemory(pid).rssKiB;
    const waiting = await watchWaiting(stack, options.waitingMs);

    const servicesCpu = (): Record<string, number> => ({
      ...Object.fromEntries(Object.entries(stack.otherPids).map(([name, other]) => [name, readProcessCpuMs(other)])),
      ...(postgres ? { postgres: readProcessTreeCpuMs(postgres.pid) } : {}),
    });
    const agentCpuAtFirstApproval = readProcessCpuMs(pid);
    const servicesCpuAtFirstApproval = servicesCpu();
    const clientCpuAtFirstApproval = process.cpuUsage();
    const approvingFrom = performance.now();
    let slot = 0;
    for (const request of options.random.shuffle(requests)) {
      const id = pendingOf.get(request.person.userId);
      if (id === undefined) continue;
      if (options.pacedPerSecond !== undefined) {
        const waitMs = approvingFrom + (slot++ * 1000) / options.pacedPerSecond - performance.now();
        if (waitMs > 0) await delay(waitMs);
      }
      request.approvedAt = performance.now();
      await approve(controlUrl, id);
    }
    await Promise.all(turns);
    const peakRssKiB = readProcessMemory(pid).peakRssKiB;
    const tenantPeakRssKiB = readProcessMemory(tenantPidOf(stack)).peakRssKiB;
    const approvedAt = requests.flatMap((r) => (r.approvedAt === undefined ? [] : [r.approvedAt]));
    const approved = Math.max(1, approvedAt.length);
    const agentCpuMs = readProcessCpuMs(pid) - agentCpuAtFirstApproval;
    const clientCpu = process.cpuUsage(clientCpuAtFirstApproval);
    const servicesCpuNow = servicesCpu();
    const servicesCpuMs = Object.fromEntries(Object.entries(servicesCpuNow).map(([name, ms]) => [name, ms - (servicesCpuAtFirstApproval[name] ?? 0)]));
    const approvedUsers = new Set((await stack.requests({ status: 'approved' })).map((view) => view.user_id));

    const done = requests.filter((r) => r.completedAt !== undefined && r.approvedAt !== undefined);
    const lastAnswer = Math.max(startedAt, ...done.map((r) => r.completedAt as number));
    const result: Batch = {
      sessions: {
        sandbox: [pid, ...Object.values(stack.otherPids)].map(readProcessSession),
        benchmark: readProcessSession(process.pid),
      },
      totalMs: Math.max(0, lastAnswer - startedAt - waiting.ms),
      allPendingMs,
      sendToAnswerMs: done.map((r) => (r.completedAt as number) - r.sentAt),
      approveToAnswerMs: done.map((r) => (r.completedAt as number) - (r.approvedAt as number)),
      baselineRssKiB,
      pendingRssKiB,
      peakRssKiB,
      tenantPeakRssKiB,
      waiting,
      agentCpuPerConsentMs: agentCpuMs / approved,
      servicesCpuPerConsentMs: Object.fromEntries(Object.entries(servicesCpuMs).map(([name, ms]) => [name, ms / approved])),
      clientCpuPerConsentMs: (clientCpu.user + clientCpu.system) / 1000 / approved,
      approvalsPerSecond: approvalRate(approvedAt),
      completed: requests.filter((r) => r.turn?.finalState === 'COMPLETED').length,
      rightPerson: requests.filter((r) => r.turn && answersFor(r.person, r.turn.answer)).length,
      settled: requests.filter((r) => r.turn !== undefined || r.error !== undefined).length,
      approvedAtTenant: load.filter((p) => approvedUsers.has(p.userId)).length,
      resets: requests.filter((r) => r.error !== undefined && isReset(r.error)).length,
      refused: requests.filter((r) => r.error !== undefined && !isReset(r.error)).length,
      wrongAnswers: requests.filter((r) => r.turn?.finalState === 'COMPLETED' && !answersFor(r.person, r.turn.answer)).length,
      failures: requests
        .filter((r) => r.turn?.finalState !== 'COMPLETED')
        .map((r) => (r.turn ? `${r.turn.states.join(' → ')}: ${r.turn.answer}` : String(r.error)))
        .slice(0, 20),
    };
    options.log?.(
      `${options.mode}${options.busy ? ' (busy machine)' : ''} batch ${batch}: ${result.completed}/${load.length} COMPLETED in ${Math.round(result.totalMs)} ms, ` +
        `${result.resets} reset, ${result.refused} refused, ${result.wrongAnswers} wrong; approve → COMPLETED p95 ${Math.round(percentile(result.approveToAnswerMs, 95))} ms; ` +
        `all waiting: ${Math.round(waiting.tokenRequestsPerSecond)} token requests/s, agent ${waiting.agentCores.toFixed(2)} and tenant ${waiting.tenantCores.toFixed(2)} cores; ` +
        `${result.failures.length > 0 ? `first failure: ${result.failures[0]}; ` : ''}agent RSS ${Math.round(baselineRssKiB / 1024)} → ${Math.round(pendingRssKiB / 1024)} MiB pending, peak ${Math.round(peakRssKiB / 1024)} MiB`,
    );
    return result;
  } finally {
    for (const burner of burners) burner.signalGroup('SIGKILL');
    await stack.close();
    await postgres?.stop();
  }
}

function tenantPidOf(stack: AgentProcessStack): number {
  const tenantPid = stack.otherPids.tenant;
  if (tenantPid === undefined) throw new Error('The stack has no tenant process to read');
  return tenantPid;
}

/**
 * What waiting costs: over `windowMs` with every consent pending and none approved, the token requests the
 * tenant counted (polls in poll mode, the agent's checks in ping mode) and the CPU the agent and the tenant spent.
 */
async function watchWaiting(stack: AgentProcessStack, windowMs: number): Promise<Waiting> {
  const tenantPid = tenantPidOf(stack);
  const polls = async () => (await stack.requests({ status: 'pending' })).reduce((sum, view) => sum + view.polls, 0);
  const read = async () => ({ at: performance.now(), polls: await polls(), agent: readProcessCpuMs(stack.pid), tenant: readProcessCpuMs(tenantPid) });
  const before = await read();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const after = await read();
  const ms = after.at - before.at;
  return {
    ms,
    tokenRequestsPerSecond: ((after.polls - before.polls) * 1000) / ms,
    agentCores: (after.agent - before.agent) / ms,
    tenantCores: (after.tenant - before.tenant) / ms,
  };
}

/** A warm-up turn: approved as soon as its request is pending. */
async function askAndApproveAtOnce(stack: AgentProcessStack, person: BenchPerson, signal: AbortSignal): Promise<void> {
  let approving: Promise<void> | undefined;
  const turn = await runTurn(stack.client, questionAbout(person), {}, {
    signal,
    onEvent(event) {
      if (event.kind === 'state' && event.state === 'AUTH_REQUIRED' && !approving) {
        // The agent records the request before it says AUTH_REQUIRED, so the tenant already lists it.
        approving = stack.requests({ userId: person.userId, status: 'pending' }).then(([pending]) => {
          if (!pending) throw new Error(`no pending request for ${person.userId}`);
          return approve(stack.controlUrl, pending.id);
        });
      }
    },
  });
  await approving;
  if (turn.finalState !== 'COMPLETED') throw new Error(`Warm-up turn for ${person.email} ended ${turn.finalState}: ${turn.answer}`);
}

const SERVICE_LABEL: Record<string, string> = { launcher: 'launcher (`npm run sandbox`)', tenant: 'tenant', 'hr-api': 'HR API', gemini: 'mock-gemini', flows: 'flow console', postgres: 'PostgreSQL server' };

const STORE_LABEL: Record<AgentStore, string> = {
  memory: 'memory (AGENT_STATE=memory)',
  embedded: 'embedded PGlite (the default)',
  postgres: 'PostgreSQL (DATABASE_URL)',
};

export function consentsBenchmarkId(options: Pick<ConcurrentConsentsOptions, 'mode' | 'busy' | 'store' | 'pacedPerSecond'>): string {
  const paced = options.pacedPerSecond === undefined ? '' : `-paced-${options.pacedPerSecond}`;
  return `consents-${options.mode}${options.busy ? '-busy' : ''}${options.store === 'memory' ? '' : `-${options.store}`}${paced}`;
}

export async function benchConcurrentConsents(options: ConcurrentConsentsOptions): Promise<BenchmarkResult> {
  const batches: Batch[] = [];
  for (let batch = 1; batch <= options.runs; batch++) batches.push(await runBatch(options, batch));
  const n = options.consents;
  const checks: Check[] = [];
  for (const [i, b] of batches.entries()) {
    const tag = `batch ${i + 1}`;
    checks.push(
      check(`${tag}: every verification COMPLETED`, b.completed === n, `${b.completed} of ${n}`),
      check(`${tag}: every answer names its own employee`, b.rightPerson === n && b.wrongAnswers === 0, `${b.rightPerson} of ${n}, ${b.wrongAnswers} wrong`),
      check(`${tag}: no request reset or refused`, b.resets === 0 && b.refused === 0, `${b.resets} reset, ${b.refused} refused`),
      check(`${tag}: no turn lost (every one settled, every request approved at the tenant)`, b.settled === n && b.approvedAtTenant === n, `${b.settled} settled, ${b.approvedAtTenant} approved`),
      check(
        `${tag}: the sandbox ran in one session of its own, as from another terminal`,
        new Set(b.sessions.sandbox).size === 1 && b.sessions.sandbox[0] !== undefined && b.sessions.sandbox[0] !== b.sessions.benchmark,
        `sandbox sessions ${[...new Set(b.sessions.sandbox)].join(', ')}; the benchmark's ${b.sessions.benchmark}`,
      ),
    );
    // Polling every interval, the waiting consents are asked about all the time; a window with none counted measured nothing.
    if (options.mode === 'poll') {
      checks.push(check(`${tag}: the waiting consents were polled`, b.waiting.tokenRequestsPerSecond > 0, `${b.waiting.tokenRequestsPerSecond.toFixed(1)} token requests per second`));
    }
  }
  const mib = (kib: number) => kib / 1024;
  const interval = INTERVAL[options.mode];
  // The floors are for the full load; a quick run is a smoke test of the same code, judged on its checks only.
  const full = n >= 1000;
  // A paced load shows what the same consents answer in below the machine's capacity; the latency floor judges the full rate.
  const latencyJudged = full && options.pacedPerSecond === undefined;
  const p95Floor = options.mode === 'ping' ? CONSENT_FLOORS.pingP95Ms : interval * 1000 + CONSENT_FLOORS.pollP95OverIntervalMs;
  const paced = options.pacedPerSecond === undefined ? '' : `, approvals paced at ${options.pacedPerSecond} a second`;
  return {
    id: consentsBenchmarkId(options),
    title: `${n} concurrent consents, ${options.mode}${options.busy ? ', busy machine' : ''}, agent state: ${STORE_LABEL[options.store]}${paced}`,
    method:
      '`npm run sandbox` started in a session of its own, as from another terminal (its services scheduled together, beside this process); ' +
      `${n} streaming A2A verifications sent at once to its agent (CIBA ${options.mode}, tenant interval ${interval} s, ` +
      `its work kept in ${STORE_LABEL[options.store]}), each for a different ` +
      'push-enrolled employee of a generated tenant; once all are AUTH_REQUIRED they are approved one by one through the control API ' +
      `in random order${options.busy ? ', while two other processes spin on both cores' : ''}. Memory from the agent's /proc/<pid>/status, nothing forced: VmRSS after ${WARMUP_TURNS} warm-up turns (baseline) and ` +
      `with all ${n} pending; peak is VmHWM at the end; per pending consent = (pending − baseline) / ${n}. ` +
      'Reset: the connection broke with no answer; refused: the agent still said 503 after the client\'s retries. ' +
      'CPU per approved consent: user + system time from the first approval to the last answer, divided by the approvals; the agent\'s from /proc/<pid>/stat, ' +
      'each other service\'s (tenant, HR API, mock-gemini, flow console) and the launcher\'s (it passes their log lines on) likewise, and the PostgreSQL server\'s (its processes together) when it holds the state; ' +
      'the benchmark\'s own (its clients\' streams, the approvals, reading the sandbox\'s output) from process.cpuUsage(), as it shares the same cores. ' +
      'Approvals sent per second: from the first to the last, each sent when the control API answered the one before' +
      (options.pacedPerSecond === undefined
        ? '. '
        : ` and not before its slot at ${options.pacedPerSecond} a second (below what the machine can finish, to show the latency there; no latency floor is judged on it). `) +
      `Waiting: over ${options.waitingMs / 1000} s with all ${n} pending and none approved yet (left out of the total, first send to last COMPLETED), the token requests the tenant counted on them ` +
      '(the control API\'s poll counts: polls in poll mode, the agent\'s checks in ping mode) per second, and the agent\'s and the tenant\'s CPU over the same time, in cores; ' +
      'in poll mode also each one\'s CPU per token request.',
    figures: [
      figure('COMPLETED', 'count', batches.map((b) => b.completed)),
      figure('wrong-employee answers', 'count', batches.map((b) => b.wrongAnswers)),
      figure('requests reset or refused', 'count', batches.map((b) => b.resets + b.refused)),
      figure('per request, approve → COMPLETED, p50', 'ms', batches.map((b) => percentile(b.approveToAnswerMs, 50))),
      figure(
        'per request, approve → COMPLETED, p95',
        'ms',
        batches.map((b) => percentile(b.approveToAnswerMs, 95)),
        latencyJudged ? { op: '<=', value: p95Floor } : undefined,
      ),
      figure("agent's peak RSS (VmHWM)", 'MiB', batches.map((b) => mib(b.peakRssKiB)), full ? { op: '<=', value: CONSENT_FLOORS.peakRssMiB } : undefined),
      figure("tenant's peak RSS (VmHWM)", 'MiB', batches.map((b) => mib(b.tenantPeakRssKiB))),
      figure('total, first send to last COMPLETED', 'ms', batches.map((b) => b.totalMs)),
      figure(`send to all ${n} AUTH_REQUIRED`, 'ms', batches.map((b) => b.allPendingMs)),
      figure('approvals sent per second', 'req/s', batches.map((b) => b.approvalsPerSecond)),
      figure('agent CPU per approved consent', 'ms', batches.map((b) => b.agentCpuPerConsentMs)),
      ...Object.keys(batches[0]?.servicesCpuPerConsentMs ?? {}).map((name) =>
        figure(`${SERVICE_LABEL[name] ?? name} CPU per approved consent`, 'ms', batches.map((b) => b.servicesCpuPerConsentMs[name] ?? 0)),
      ),
      figure("the benchmark's own client CPU per approved consent", 'ms', batches.map((b) => b.clientCpuPerConsentMs)),
      figure(`all ${n} waiting: token requests answered per second`, 'req/s', batches.map((b) => b.waiting.tokenRequestsPerSecond)),
      figure(`all ${n} waiting: agent CPU`, 'cores', batches.map((b) => b.waiting.agentCores)),
      figure(`all ${n} waiting: tenant CPU`, 'cores', batches.map((b) => b.waiting.tenantCores)),
      ...(options.mode === 'poll'
        ? [
            figure(`all ${n} waiting: agent CPU per token request`, 'ms', batches.map((b) => (b.waiting.agentCores * 1000) / Math.max(b.waiting.tokenRequestsPerSecond, 1))),
            figure(`all ${n} waiting: tenant CPU per token request`, 'ms', batches.map((b) => (b.waiting.tenantCores * 1000) / Math.max(b.waiting.tokenRequestsPerSecond, 1))),
          ]
        : []),
      figure("agent's RSS, baseline", 'MiB', batches.map((b) => mib(b.baselineRssKiB))),
      figure('memory held per pending consent', 'KiB', batches.map((b) => (b.pendingRssKiB - b.baselineRssKiB) / n)),
    ],
    notes: { failures: batches.flatMap((b) => b.failures) },
    checks,
  };
}
