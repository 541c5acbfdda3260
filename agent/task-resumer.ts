import { TaskState, type StreamResponse } from '@a2a-js/sdk';
import {
  ExecutionEventQueue,
  ResultManager,
  type ExecutionEventBus,
  type ExecutionEventBusManager,
  type PushNotificationSender,
  type TaskStore,
} from '@a2a-js/sdk/server';
import type { DurableState } from './durable-state.ts';
import { contextOf } from './event-relay.ts';
import type { HrAgentExecutor } from './executor.ts';
import type { RunKey } from './task-ledger.ts';

/**
 * Takes over work whose process is gone: at start and every `scanEveryMs`,
 * renews this process's leases, claims pending consents whose lease lapsed
 * and resumes them, and ends FAILED the tasks whose process stopped before
 * any consent was pending. Resumed work publishes on the task's bus from the
 * SDK's bus manager, with a `ResultManager` saving every event to the task
 * store, so GetTask and SubscribeToTask see it as they see any execution.
 */

export interface TaskResumerOptions {
  durable: DurableState;
  executor: HrAgentExecutor;
  taskStore: TaskStore;
  busManager: ExecutionEventBusManager;
  pushSender?: PushNotificationSender;
  /** How often leases are renewed and lapsed ones looked for. */
  scanEveryMs?: number;
  /** Work claimed per scan. */
  batch?: number;
  log?: (line: string) => void;
}

export interface TaskResumer {
  /** The first scan; with PGlite (one process per folder) it takes every lease at once, lapsed or not. */
  start(): Promise<void>;
  /** Stops scanning and waits for resumed work to wind down (after `executor.abortAll()`). */
  close(): Promise<void>;
}

const TERMINAL = new Set<TaskState>([
  TaskState.TASK_STATE_COMPLETED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELED,
  TaskState.TASK_STATE_REJECTED,
]);

export function createTaskResumer(options: TaskResumerOptions): TaskResumer {
  const { durable, executor, taskStore, busManager } = options;
  const { ledger } = durable;
  const scanEveryMs = options.scanEveryMs ?? 1000;
  const batch = options.batch ?? 50;
  const log = options.log ?? ((line: string) => console.error(line));
  const driving = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let scanning: Promise<void> | undefined;

  /** Runs `work` on the task's bus, saving what it publishes; skips a task that ended or is gone meanwhile. */
  const drive = (run: RunKey, work: (bus: ExecutionEventBus) => Promise<void>) => {
    const driven = (async () => {
      const context = contextOf(run.owner);
      const task = await taskStore.load(run.taskId, context);
      const state = task?.status?.state;
      if (!task || (state !== undefined && TERMINAL.has(state))) {
        await ledger.finished(run);
        return;
      }
      // Its bus is the one a running execution here publishes on: never finish that one.
      if (executor.isRunning(run.taskId)) return;
      const bus = busManager.createOrGetByTaskId(run.taskId, context);
      const queue = new ExecutionEventQueue(bus);
      const results = new ResultManager(taskStore, context);
      const saving = (async () => {
        for await (const event of queue.events()) {
          await results.processEvent(event);
          if (options.pushSender) {
            const response = { payload: { $case: event.kind, value: event.data } } as StreamResponse;
            options.pushSender.send(response, context, results.getCurrentTask()).catch(() => undefined);
          }
        }
      })();
      try {
        await work(bus);
      } finally {
        // Ends open streams cleanly, also when the agent stops with the task still resumable.
        bus.finished();
        busManager.cleanupByTaskId(run.taskId, context);
        await saving.catch((error: unknown) => log(`Could not save task ${run.taskId}: ${(error as Error).message}`));
      }
    })().catch((error: unknown) => log(`Could not resume task ${run.taskId}: ${(error as Error).message}`));
    driving.add(driven);
    void driven.finally(() => driving.delete(driven));
  };

  const scan = async (anyLease: boolean) => {
    // Stalled past a lease: another process polls that consent now, so this one stops (one poller per auth_req_id).
    for (const lost of await ledger.renew()) {
      log(`Another agent process took over task ${lost.taskId}; stopping it here`);
      executor.abandon(lost.taskId);
    }
    for (const consent of await ledger.claimConsents(batch, anyLease)) {
      if (closed) return;
      if (executor.isRunning(consent.taskId)) continue;
      drive(consent, (bus) => executor.resume(consent, bus));
    }
    for (const run of await ledger.claimInterrupted(batch, anyLease)) {
      if (closed) return;
      if (executor.isRunning(run.taskId)) continue;
      drive(run, (bus) => executor.endInterrupted(run, bus));
    }
  };

  const tick = () => {
    if (closed || scanning) return;
    scanning = scan(false)
      .catch((error: unknown) => log(`Could not look for work to take over: ${(error as Error).message}`))
      .finally(() => (scanning = undefined));
  };

  return {
    async start() {
      const ownFolder = durable.database.kind === 'pglite';
      scanning = scan(ownFolder).finally(() => (scanning = undefined));
      await scanning;
      // A PGlite folder has one process: nobody else can take work over, so leases need no renewing (with a
      // thousand consents pending, renewing would rewrite two thousand rows a second on its one thread).
      if (closed || ownFolder) return;
      timer = setInterval(tick, scanEveryMs);
      timer.unref();
    },

    async close() {
      closed = true;
      clearInterval(timer);
      await scanning?.catch(() => undefined);
      await Promise.allSettled([...driving]);
    },
  };
}
