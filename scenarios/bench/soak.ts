import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TaskState } from '@a2a-js/sdk';
import { runTurn } from '../../sandbox/conversation.ts';
import { startAgentProcessStack } from './agent-process-stack.ts';
import { approve } from './concurrent-consents.ts';
import { answersFor, benchPeople, questionAbout } from './bench-tenant.ts';
import { readProcessMemory } from './process-memory.ts';
import { check, figure, type BenchmarkResult } from './report.ts';

/**
 * A soak: questions at a steady rate for minutes, each approved as soon as
 * the control API lists it pending, against an agent process (every service
 * its own process, agent-process-stack.ts) whose finished tasks are forgotten
 * beyond a small retention count. The agent keeps its work where
 * `npm run sandbox` keeps it, in its embedded database. Memory must stay
 * flat: the agent's RSS once the retention count is reached (the start) and
 * at the end (drift), and the tasks it still holds; and so must the embedded
 * databases' files (the agent's and the tenant's), which only the VACUUMs the
 * services run for them keep from growing (storage/database.ts).
 */

export interface SoakOptions {
  /** Questions per second. */
  rate: number;
  /** Before the start reading: long enough to fill the retention count. */
  warmupMs: number;
  durationMs: number;
  log?: (line: string) => void;
}

export const SOAK_DRIFT_FLOOR = 0.1;
/** Finished tasks the soak's agent keeps (TASK_RETENTION_MAX); the warm-up fills it. */
const RETENTION = 100;
const PEOPLE = 200;

export async function benchSoak(options: SoakOptions): Promise<BenchmarkResult> {
  const people = benchPeople(PEOPLE, 'soak');
  const stack = await startAgentProcessStack({
    people,
    mode: 'poll',
    interval: 1,
    // The default: the agent's work in its embedded database, as a newcomer's `npm run sandbox` keeps it.
    env: { TASK_RETENTION_MAX: String(RETENTION), AGENT_STATE: 'database', DATABASE_URL: '' },
  });
  const { client, pid } = stack;
  const databaseMiB = (service: 'agent' | 'tenant') => folderBytes(join(stack.stateDir, 'db', service)) / 2 ** 20;
  // The employees' phones: every pending request is approved as soon as the control API lists it.
  const approving = new AbortController();
  const approver = (async () => {
    const approved = new Set<string>();
    while (!approving.signal.aborted) {
      const pending = await stack.requests({ status: 'pending' }).catch(() => []);
      await Promise.all(
        pending.filter((view) => !approved.has(view.id)).map(async (view) => {
          approved.add(view.id);
          await approve(stack.controlUrl, view.id).catch(() => approved.delete(view.id));
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    let asked = 0;
    let completed = 0;
    let wrong = 0;
    const failures: string[] = [];
    const turns = new Set<Promise<void>>();
    const ask = () => {
      const person = people[asked % people.length]!;
      asked += 1;
      const turn = runTurn(client, questionAbout(person), {}, { signal: AbortSignal.timeout(60_000) })
        .then((result) => {
          if (result.finalState === 'COMPLETED') completed += 1;
          else failures.push(`${result.finalState}: ${result.answer}`);
          if (result.finalState === 'COMPLETED' && !answersFor(person, result.answer)) wrong += 1;
        })
        .catch((error: unknown) => {
          failures.push(String(error));
        })
        .finally(() => turns.delete(turn));
      turns.add(turn);
    };
    /** Asks at `rate` per second for `ms`, on a schedule that does not drift with the machine's load. */
    const askFor = async (ms: number) => {
      const from = performance.now();
      const first = asked;
      for (;;) {
        const due = first + Math.floor(((performance.now() - from) / 1000) * options.rate);
        while (asked < due) ask();
        if (performance.now() - from >= ms) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };

    await askFor(options.warmupMs);
    const startRssKiB = readProcessMemory(pid).rssKiB;
    const startDatabases = { agent: databaseMiB('agent'), tenant: databaseMiB('tenant') };
    const startAsked = asked;
    await askFor(options.durationMs);
    await Promise.all([...turns]);
    const endRssKiB = readProcessMemory(pid).rssKiB;
    const endDatabases = { agent: databaseMiB('agent'), tenant: databaseMiB('tenant') };
    const held = await client.listTasks({
      tenant: '',
      contextId: '',
      status: TaskState.TASK_STATE_UNSPECIFIED,
      pageToken: '',
      statusTimestampAfter: undefined,
      pageSize: 1,
    });
    const drift = (endRssKiB - startRssKiB) / startRssKiB;
    options.log?.(
      `soak: ${asked} asked (${asked - startAsked} after the start reading), ${completed} COMPLETED, ${wrong} wrong; ` +
        `agent RSS ${Math.round(startRssKiB / 1024)} → ${Math.round(endRssKiB / 1024)} MiB (${(drift * 100).toFixed(1)}%), ${held.totalSize} tasks held; ` +
        `databases on disk: agent ${startDatabases.agent.toFixed(1)} → ${endDatabases.agent.toFixed(1)} MiB, tenant ${startDatabases.tenant.toFixed(1)} → ${endDatabases.tenant.toFixed(1)} MiB`,
    );
    const mib = (kib: number) => kib / 1024;
    return {
      id: 'soak',
      title: `Soak, ${options.rate} questions/s`,
      method:
        `${options.rate} verifications a second, each approved as soon as it is pending, against an agent process (CIBA poll, interval 1 s) ` +
        `keeping ${RETENTION} finished tasks (TASK_RETENTION_MAX). The start reading of VmRSS is taken after ${options.warmupMs / 1000} s, ` +
        `once retention is full; the end reading after ${options.durationMs / 1000} s more, once every question is answered. ` +
        'Tasks held: ListTasks totalSize for the caller at the end. The agent keeps its work in its embedded database (the default); ' +
        "each database's size on disk is the sum of its folder's file sizes, at the same two moments.",
      figures: [
        figure('questions asked', 'count', [asked]),
        figure("agent's RSS at the start", 'MiB', [mib(startRssKiB)]),
        figure("agent's RSS at the end", 'MiB', [mib(endRssKiB)]),
        figure('RSS drift, end vs start', 'x', [drift], options.durationMs >= 120_000 ? { op: '<=', value: SOAK_DRIFT_FLOOR } : undefined),
        figure('tasks held at the end', 'count', [held.totalSize]),
        figure("agent's database on disk at the start", 'MiB', [startDatabases.agent]),
        figure("agent's database on disk at the end", 'MiB', [endDatabases.agent]),
        figure("tenant's database on disk at the start", 'MiB', [startDatabases.tenant]),
        figure("tenant's database on disk at the end", 'MiB', [endDatabases.tenant]),
      ],
      notes: { failures: failures.slice(0, 20) },
      checks: [
        check('every question COMPLETED', completed === asked && failures.length === 0, `${completed} of ${asked}`),
        check('every answer names its own employee', wrong === 0, `${wrong} wrong`),
        check('finished tasks are forgotten beyond the retention count', held.totalSize <= RETENTION, `${held.totalSize} held`),
      ],
    };
  } finally {
    approving.abort();
    await approver;
    await stack.close();
  }
}

/** The bytes of every file under `dir`. */
function folderBytes(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += statSync(join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return bytes;
}
