import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { DatabaseSchema } from '../sandbox/storage/schema.ts';
import type { ResumableConsent } from './ciba.ts';
import type { PlanCheckpoint } from './planner.ts';

/**
 * What the agent is working on, written down as it goes, so that work
 * outlives the process doing it: a lease on every task in flight
 * (`agent_runs`) and every pending consent with what finishing its task
 * needs (`consents`). Leases name one agent process and lapse unless it
 * renews them, so when a process dies (or stops) another start of the agent,
 * or another agent process on the same PostgreSQL, takes the work over:
 * exactly one process at a time polls an `auth_req_id` (CIBA §7.3).
 */

export interface RunKey {
  /** The A2A caller the task belongs to (the task store's `owner`). */
  owner: string;
  taskId: string;
}

export interface Run extends RunKey {
  contextId: string;
}

/** A pending consent as stored: enough to go on waiting for the answer and finish the task anywhere. */
export interface StoredConsent extends Run, ResumableConsent {
  employeeId: string;
  /** How the status message names the employee (the email the caller gave, or the id). */
  employeeLabel: string;
  bindingMessage: string;
  expiresAt: Date;
  resume: ResumeState;
}

/** The planner's state at the pending call, and what a failure after it needs to close the conversation. */
export interface ResumeState {
  checkpoint: PlanCheckpoint;
  userText: string;
  /** How many turns of `checkpoint.contents` were the conversation before this task. */
  historyLength: number;
}

export interface TaskLedger {
  /** A task started working in this process. */
  started(run: Run): Promise<void>;
  /** Its consent is pending; recorded before anyone is told (the AUTH_REQUIRED status). */
  consentPending(consent: StoredConsent): Promise<void>;
  /** The employee answered, or the consent ended otherwise: nobody polls it any more. */
  consentSettled(authReqId: string): Promise<void>;
  /** The task ended, or waits for the caller's input: nothing of it is left to take over. */
  finished(run: RunKey): Promise<void>;
}

/** Without a database, nothing outlives the process: nothing is written down. */
export const NO_LEDGER: TaskLedger = {
  started: async () => undefined,
  consentPending: async () => undefined,
  consentSettled: async () => undefined,
  finished: async () => undefined,
};

export interface LeaseTimes {
  /** How long a lease lasts unless renewed. */
  ttlMs: number;
}

export const DEFAULT_LEASE: LeaseTimes = { ttlMs: 5_000 };

export interface DatabaseTaskLedger extends TaskLedger {
  /** This process's name in `lease_owner`. */
  readonly processId: string;
  /**
   * Extends every lease this process holds; resolves to the tasks whose consent it no longer holds (it
   * stalled past the lease and another process took the consent over), which it must stop working on.
   */
  renew(): Promise<RunKey[]>;
  /**
   * Pending consents whose lease lapsed (their process died or stopped), now leased to this process,
   * with their tasks' runs. `anyLease`: also those leased to others (a PGlite folder has one process).
   */
  claimConsents(limit: number, anyLease?: boolean): Promise<StoredConsent[]>;
  /** Runs whose lease lapsed and that wait for no consent: their work was lost with their process. Now leased here. */
  claimInterrupted(limit: number, anyLease?: boolean): Promise<Run[]>;
  /** The pending consent of `authReqId`, if the ping token digest matches (CIBA §10.2 relayed between processes). */
  pendingWithDigest(authReqId: string, tokenDigest: string): Promise<boolean>;
  /** Gives up this process's leases (a graceful stop): the next start, or another process, goes on at once. */
  release(): Promise<void>;
}

/**
 * The consents this process polls, to notice one taken over by another process; also found by their run, since a
 * thousand pending consents made a walk over all of them, on every finished run, a measurable cost.
 */
class HeldConsents {
  readonly #byId = new Map<string, RunKey>();
  readonly #byRun = new Map<string, Set<string>>();
  static #runId = (run: RunKey) => `${run.owner}\0${run.taskId}`;

  get(authReqId: string): RunKey | undefined {
    return this.#byId.get(authReqId);
  }
  ids(): string[] {
    return [...this.#byId.keys()];
  }
  set(authReqId: string, run: RunKey): void {
    this.delete(authReqId);
    this.#byId.set(authReqId, run);
    const runId = HeldConsents.#runId(run);
    const ids = this.#byRun.get(runId) ?? new Set<string>();
    this.#byRun.set(runId, ids.add(authReqId));
  }
  delete(authReqId: string): void {
    const run = this.#byId.get(authReqId);
    if (!run) return;
    this.#byId.delete(authReqId);
    const runId = HeldConsents.#runId(run);
    const ids = this.#byRun.get(runId);
    ids?.delete(authReqId);
    if (ids?.size === 0) this.#byRun.delete(runId);
  }
  deleteRun(run: RunKey): void {
    const runId = HeldConsents.#runId(run);
    for (const authReqId of this.#byRun.get(runId) ?? []) this.#byId.delete(authReqId);
    this.#byRun.delete(runId);
  }
  clear(): void {
    this.#byId.clear();
    this.#byRun.clear();
  }
}

export function createDatabaseTaskLedger(db: Kysely<DatabaseSchema>, lease: LeaseTimes = DEFAULT_LEASE): DatabaseTaskLedger {
  const processId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const leaseEnd = sql<Date>`now() + ${`${lease.ttlMs} milliseconds`}::interval`;
  const mine = new HeldConsents();
  const lapsed = (anyLease: boolean) =>
    anyLease ? sql`true` : sql`(lease_expires_at is null or lease_expires_at < now())`;

  return {
    processId,

    async started(run) {
      await db
        .insertInto('agent_runs')
        .values({ owner: run.owner, task_id: run.taskId, context_id: run.contextId, lease_owner: processId, lease_expires_at: leaseEnd })
        .onConflict((c) => c.columns(['owner', 'task_id']).doUpdateSet({ lease_owner: processId, lease_expires_at: leaseEnd }))
        .execute();
    },

    async consentPending(consent) {
      await db
        .insertInto('consents')
        .values({
          auth_req_id: consent.authReqId,
          task_id: consent.taskId,
          context_id: consent.contextId,
          owner: consent.owner,
          employee_id: consent.employeeId,
          employee_label: consent.employeeLabel,
          binding_message: consent.bindingMessage,
          expires_at: consent.expiresAt,
          delivery_mode: consent.deliveryMode,
          client_notification_token_digest: consent.notificationTokenDigest ?? null,
          poll_interval_seconds: consent.interval,
          resume_state: JSON.stringify(consent.resume),
          status: 'pending',
          lease_owner: processId,
          lease_expires_at: leaseEnd,
        })
        .onConflict((c) => c.column('auth_req_id').doNothing())
        .execute();
      mine.set(consent.authReqId, { owner: consent.owner, taskId: consent.taskId });
    },

    async consentSettled(authReqId) {
      mine.delete(authReqId);
      await db.deleteFrom('consents').where('auth_req_id', '=', authReqId).execute();
    },

    async finished(run) {
      mine.deleteRun(run);
      // One statement, so one write on the way to the task's end.
      await sql`
        with settled as (delete from consents where owner = ${run.owner} and task_id = ${run.taskId})
        delete from agent_runs where owner = ${run.owner} and task_id = ${run.taskId}`.execute(db);
    },

    async renew() {
      await db.updateTable('agent_runs').set({ lease_expires_at: leaseEnd }).where('lease_owner', '=', processId).execute();
      const held = await db
        .updateTable('consents')
        .set({ lease_expires_at: leaseEnd, updated_at: new Date() })
        .where('lease_owner', '=', processId)
        .where('status', '=', 'pending')
        .returning('auth_req_id')
        .execute();
      const renewed = new Set(held.map((row) => row.auth_req_id));
      const suspects = mine.ids().filter((id) => !renewed.has(id));
      if (suspects.length === 0) return [];
      // Recorded while renewing, or really lost? Only the rows say.
      const still = await db
        .selectFrom('consents')
        .select('auth_req_id')
        .where('auth_req_id', 'in', suspects)
        .where('lease_owner', '=', processId)
        .where('status', '=', 'pending')
        .execute();
      const kept = new Set(still.map((row) => row.auth_req_id));
      const lost: RunKey[] = [];
      for (const id of suspects) {
        const run = mine.get(id);
        if (kept.has(id) || !run) continue;
        mine.delete(id);
        lost.push(run);
      }
      return lost;
    },

    async claimConsents(limit, anyLease = false) {
      const { rows } = await sql<ConsentRow>`
        update consents set lease_owner = ${processId}, lease_expires_at = ${leaseEnd}, updated_at = now()
        where auth_req_id in (
          select auth_req_id from consents
          where status = 'pending' and ${lapsed(anyLease)} and (lease_owner is distinct from ${processId})
          order by created_at limit ${limit} for update skip locked)
        returning *`.execute(db);
      for (const row of rows) {
        mine.set(row.auth_req_id, { owner: row.owner, taskId: row.task_id });
        await db
          .insertInto('agent_runs')
          .values({ owner: row.owner, task_id: row.task_id, context_id: row.context_id, lease_owner: processId, lease_expires_at: leaseEnd })
          .onConflict((c) => c.columns(['owner', 'task_id']).doUpdateSet({ lease_owner: processId, lease_expires_at: leaseEnd }))
          .execute();
      }
      return rows.flatMap((row) => {
        const consent = consentOf(row);
        return consent ? [consent] : [];
      });
    },

    async claimInterrupted(limit, anyLease = false) {
      const { rows } = await sql<{ owner: string; task_id: string; context_id: string }>`
        update agent_runs set lease_owner = ${processId}, lease_expires_at = ${leaseEnd}
        where (owner, task_id) in (
          select r.owner, r.task_id from agent_runs r
          where ${anyLease ? sql`true` : sql`(r.lease_expires_at is null or r.lease_expires_at < now())`}
            and (r.lease_owner is distinct from ${processId})
            and not exists (select 1 from consents c where c.owner = r.owner and c.task_id = r.task_id and c.status = 'pending')
          limit ${limit} for update skip locked)
        returning owner, task_id, context_id`.execute(db);
      return rows.map((row) => ({ owner: row.owner, taskId: row.task_id, contextId: row.context_id }));
    },

    async pendingWithDigest(authReqId, tokenDigest) {
      const row = await db
        .selectFrom('consents')
        .select('auth_req_id')
        .where('auth_req_id', '=', authReqId)
        .where('client_notification_token_digest', '=', tokenDigest)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      return row !== undefined;
    },

    async release() {
      mine.clear();
      await db.updateTable('consents').set({ lease_owner: null, lease_expires_at: null }).where('lease_owner', '=', processId).execute();
      await db.updateTable('agent_runs').set({ lease_owner: null, lease_expires_at: null }).where('lease_owner', '=', processId).execute();
    },
  };
}

interface ConsentRow {
  auth_req_id: string;
  task_id: string;
  context_id: string;
  owner: string;
  employee_id: string;
  employee_label: string | null;
  binding_message: string | null;
  expires_at: Date | string;
  delivery_mode: 'poll' | 'ping';
  client_notification_token_digest: string | null;
  poll_interval_seconds: number | null;
  resume_state: unknown;
}

/** A row written by `consentPending`; one without a plan to resume (written by another version) is skipped. */
function consentOf(row: ConsentRow): StoredConsent | undefined {
  const state = (typeof row.resume_state === 'string' ? JSON.parse(row.resume_state) : row.resume_state) as ResumeState | null;
  if (!state || !Array.isArray(state.checkpoint?.contents)) return undefined;
  return {
    owner: row.owner,
    taskId: row.task_id,
    contextId: row.context_id,
    authReqId: row.auth_req_id,
    deliveryMode: row.delivery_mode,
    interval: row.poll_interval_seconds ?? 5,
    notificationTokenDigest: row.client_notification_token_digest ?? undefined,
    employeeId: row.employee_id,
    employeeLabel: row.employee_label ?? row.employee_id,
    bindingMessage: row.binding_message ?? '',
    expiresAt: new Date(row.expires_at),
    resume: state,
  };
}
