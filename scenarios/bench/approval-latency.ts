import type { Client } from '@a2a-js/sdk/client';
import { runTurn, type TurnResult } from '../../sandbox/conversation.ts';
import { startLocalStack, type LocalStack } from '../../sandbox/local-stack.ts';
import { answersFor, benchEmployees, benchPeople, benchTenant, questionAbout, type BenchPerson } from './bench-tenant.ts';
import type { Random } from './random.ts';
import { check, figure, type BenchmarkResult, type Check } from './report.ts';
import { ratios } from './stats.ts';

/**
 * Approval to answer: from the moment the employee's approve call leaves for
 * the tenant's control API to the moment the COMPLETED event reaches an A2A
 * streaming client, for the three ways the agent can learn of the approval:
 * polling at Auth0's 5-second interval, polling at the local tenant's fastest
 * (1 s), and CIBA ping (CIBA §10.2). One stack per way, all in this process;
 * runs interleave the three so slow moments of the machine hit all alike.
 */

export const PING_FLOOR_MS = 50;
const TURN_TIMEOUT_MS = 60_000;

export interface ApprovalLatencyOptions {
  runs: number;
  /** Unmeasured turns per way first (discovery, JWKS and token caches, JIT). */
  warmups: number;
  random: Random;
  log?: (line: string) => void;
}

interface Way {
  key: 'poll5' | 'poll1' | 'ping';
  label: string;
  interval: number;
  ping: boolean;
  /** Approvals land uniformly within this many ms after AUTH_REQUIRED. */
  spreadMs: number;
}

const WAYS: readonly Way[] = [
  { key: 'poll5', label: 'poll, interval 5 s (Auth0)', interval: 5, ping: false, spreadMs: 5000 },
  { key: 'poll1', label: 'poll, interval 1 s (fastest local)', interval: 1, ping: false, spreadMs: 1000 },
  // Nothing polls in ping mode, so where the approval lands does not matter; a short spread keeps runs short.
  { key: 'ping', label: 'ping', interval: 5, ping: true, spreadMs: 1000 },
];

export interface Measured {
  latencyMs: number;
  turn: TurnResult;
  person: BenchPerson;
}

/** Asks about `person`, approves `delayMs` after AUTH_REQUIRED, and times approve → COMPLETED. */
export async function approveAndTime(stack: LocalStack, client: Client, person: BenchPerson, delayMs: number): Promise<Measured> {
  let approvedAt: number | undefined;
  let completedAt: number | undefined;
  let approving: Promise<void> | undefined;
  // Bounded: a failed approval ends the turn at once, a stuck one after a minute.
  const stop = new AbortController();
  const turn = await runTurn(client, questionAbout(person), {}, {
    signal: AbortSignal.any([stop.signal, AbortSignal.timeout(TURN_TIMEOUT_MS)]),
    onEvent(event) {
      if (event.kind !== 'state') return;
      if (event.state === 'AUTH_REQUIRED' && !approving) {
        approving = (async () => {
          const pending = await stack.pendingRequestFor(person.userId);
          await new Promise((resolve) => setTimeout(resolve, delayMs));
          approvedAt = performance.now();
          await stack.decide(pending.id, 'approve');
        })();
        approving.catch(() => stop.abort());
      }
      if (event.state === 'COMPLETED') completedAt = event.at;
    },
  });
  await approving;
  if (approvedAt === undefined || completedAt === undefined) {
    throw new Error(`${person.email}: the turn ended ${turn.finalState} (${turn.states.join(' → ')}) without an approval and an answer`);
  }
  return { latencyMs: completedAt - approvedAt, turn, person };
}

export async function benchApprovalLatency(options: ApprovalLatencyOptions): Promise<BenchmarkResult> {
  const log = options.log ?? (() => undefined);
  const perWay = options.runs + options.warmups;
  const stacks = new Map<Way['key'], { stack: LocalStack; client: Client; people: BenchPerson[] }>();
  const samples = new Map<Way['key'], number[]>(WAYS.map((w) => [w.key, []]));
  const checks: Check[] = [];
  let answered = 0;
  let rightPerson = 0;
  try {
    for (const way of WAYS) {
      const people = benchPeople(perWay, way.key);
      const stack = await startLocalStack({
        tenantFile: benchTenant(people),
        employees: benchEmployees(people),
        tenantSettings: { cibaInterval: way.interval },
        ciba: { deliveryMode: way.ping ? 'ping' : 'poll' },
      });
      const { client } = await stack.connect();
      stacks.set(way.key, { stack, client, people });
    }
    // Stratified: run k's approval lands at a random point of the k-th slice of the interval, in shuffled order,
    // so a few runs already cover the whole interval evenly (a plain uniform draw can bunch them at one end).
    const offsets = new Map(
      WAYS.map((way) => [
        way.key,
        options.random.shuffle(Array.from({ length: options.runs }, (_, k) => ((k + options.random.next()) / options.runs) * way.spreadMs)),
      ]),
    );
    const turn = async (way: Way, index: number, delayMs: number) => {
      const entry = stacks.get(way.key);
      const person = entry?.people[index];
      if (!entry || !person) throw new Error(`no stack or person for ${way.key} #${index}`);
      const measured = await approveAndTime(entry.stack, entry.client, person, delayMs);
      answered += measured.turn.finalState === 'COMPLETED' ? 1 : 0;
      rightPerson += answersFor(person, measured.turn.answer) ? 1 : 0;
      return measured.latencyMs;
    };
    for (let w = 0; w < options.warmups; w++) {
      await Promise.all(WAYS.map((way) => turn(way, w, options.random.between(0, way.spreadMs))));
    }
    for (let run = 0; run < options.runs; run++) {
      const line: string[] = [];
      for (const way of WAYS) {
        const ms = await turn(way, options.warmups + run, offsets.get(way.key)?.[run] ?? 0);
        samples.get(way.key)?.push(ms);
        line.push(`${way.key} ${Math.round(ms)} ms`);
      }
      log(`approval→answer run ${run + 1}/${options.runs}: ${line.join(', ')}`);
    }
  } finally {
    for (const { stack } of stacks.values()) await stack.close();
  }
  const total = WAYS.length * perWay;
  checks.push(
    check('every turn was approved and COMPLETED', answered === total, `${answered} of ${total} turns COMPLETED`),
    check('every answer named its own employee', rightPerson === total, `${rightPerson} of ${total} answers`),
  );
  const label = (key: Way['key']) => WAYS.find((w) => w.key === key)?.label ?? key;
  const poll5 = samples.get('poll5') ?? [];
  const poll1 = samples.get('poll1') ?? [];
  const ping = samples.get('ping') ?? [];
  return {
    id: 'approval-latency',
    title: 'Approval → answer',
    method:
      'Time from sending the approve POST to the tenant\'s control API to the COMPLETED event at an A2A streaming client (mock-gemini, ' +
      'in-process stacks). Each approval lands a random delay after AUTH_REQUIRED within the poll interval (0–5 s for 5 s polling, ' +
      '0–1 s otherwise), stratified: run k of n falls at a random point of the k-th n-th of the interval, in shuffled order. ' +
      'Ratios pair the runs of one round.',
    figures: [
      figure(label('poll5'), 'ms', poll5),
      figure(label('poll1'), 'ms', poll1),
      figure(label('ping'), 'ms', ping, { op: '<=', value: PING_FLOOR_MS }),
      figure('5 s polling ÷ ping', 'x', ratios(poll5, ping)),
      figure('1 s polling ÷ ping', 'x', ratios(poll1, ping)),
    ],
    checks,
  };
}
