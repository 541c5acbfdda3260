import { TaskState, type CancelTaskRequest, type StreamResponse, type SubscribeToTaskRequest, type Task } from '@a2a-js/sdk';
import {
  AgentEvent,
  DefaultExecutionEventBusManager,
  DefaultRequestHandler,
  type TaskStore,
  ServerCallContext,
  type AgentExecutionEvent,
  type ExecutionEventBus,
  type ExecutionEventBusManager,
  type PushNotificationSender,
} from '@a2a-js/sdk/server';
import type { Database } from '../sandbox/storage/database.ts';

/**
 * Live task updates between agent processes sharing one PostgreSQL server.
 * The process running a task publishes every event with NOTIFY once the task
 * store has saved it (where the SDK hands it to the push sender); another
 * process mirrors them onto a bus of its own while someone there follows the
 * task (SubscribeToTask), so both show the same task live, and a GetTask
 * after an update a caller may act on (AUTH_REQUIRED, INPUT_REQUIRED, the
 * end) never reads an older task; a working task's progress is written up to
 * 0.1 s after it is sent (agent/durable-state.ts, `lateProgress`).
 * NOTIFY payloads stop at 8000 bytes: a larger event is sent as "reload" and
 * the receiver reads the task from the store instead.
 */

const TASK_EVENTS = 'agent_task_events';
const CANCELS = 'agent_task_cancels';
/** PostgreSQL's NOTIFY limit is 8000 bytes; leave room for the envelope. */
const MAX_PAYLOAD_BYTES = 7800;
/** Events sent in one NOTIFY statement at most (its parameter stays under a few MB). */
const MAX_EVENTS_PER_NOTIFY = 256;

const ENDING = new Set<TaskState>([
  TaskState.TASK_STATE_COMPLETED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELED,
  TaskState.TASK_STATE_REJECTED,
  TaskState.TASK_STATE_INPUT_REQUIRED,
]);

interface Envelope {
  from: string;
  owner: string;
  taskId: string;
  event?: AgentExecutionEvent;
}

export interface EventRelayHooks {
  /** Reads a task (for events too large to send). */
  load(owner: string, taskId: string): Promise<Task | undefined>;
  /** Another process canceled a task this process may be running. */
  onCancel(owner: string, taskId: string, bus: ExecutionEventBus | undefined): void;
  /** Another process saved an event of this task, or canceled it (before `onCancel`). */
  changedElsewhere(owner: string, taskId: string): void;
}

export interface EventRelay {
  /** The bus manager the request handler and the resumer use (it tells mirrors from buses of tasks run here). */
  readonly busManager: ExecutionEventBusManager;
  /** Wraps the push sender, which the SDK calls with every event once saved: each is also relayed. */
  sender(inner: PushNotificationSender): PushNotificationSender;
  /** Before SubscribeToTask: a bus fed by the other processes (or by the resumer), unless this process has one for the task. */
  follow(owner: string, taskId: string, task: Task | undefined): void;
  /** Ends every open stream here cleanly (the agent stops; its tasks stay resumable, clients follow them again). */
  finishAll(): void;
  /** After CancelTask here: tells the process running the task. */
  announceCancel(owner: string, taskId: string): Promise<void>;
  start(database: Database, processId: string, hooks: EventRelayHooks): Promise<void>;
  close(): Promise<void>;
}

export function contextOf(owner: string): ServerCallContext {
  return new ServerCallContext({ user: { isAuthenticated: true, userName: owner }, requestedVersion: '1.0' });
}

export function createEventRelay(): EventRelay {
  const inner = new DefaultExecutionEventBusManager();
  /** Buses fed by other processes; every other bus here belongs to a task run here. */
  const mirrors = new WeakSet<ExecutionEventBus>();
  /** Every bus handed out, to end their streams when the agent stops. */
  const open = new Map<ExecutionEventBus, { taskId: string; context: ServerCallContext | undefined }>();
  let send: ((owner: string, taskId: string, event: AgentExecutionEvent) => void) | undefined;
  let stops: (() => Promise<void>)[] = [];
  let database: Database | undefined;
  let me = '';

  const busManager: ExecutionEventBusManager = {
    createOrGetByTaskId(taskId, context) {
      const bus = inner.createOrGetByTaskId(taskId, context);
      // A task followed here that this process now runs (it took the work over): its bus is no mirror any more.
      mirrors.delete(bus);
      open.set(bus, { taskId, context });
      return bus;
    },
    getByTaskId: (taskId, context) => inner.getByTaskId(taskId, context),
    cleanupByTaskId: (taskId, context) => {
      const bus = inner.getByTaskId(taskId, context);
      if (bus) open.delete(bus);
      inner.cleanupByTaskId(taskId, context);
    },
  };

  const receive = async (payload: string) => {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload) as Envelope;
    } catch {
      return;
    }
    if (envelope.from === me) return;
    hooksRef?.changedElsewhere(envelope.owner, envelope.taskId);
    const context = contextOf(envelope.owner);
    const bus = inner.getByTaskId(envelope.taskId, context);
    if (!bus || !mirrors.has(bus)) return;
    let event = envelope.event;
    if (!event) {
      const task = await hooksRef?.load(envelope.owner, envelope.taskId).catch(() => undefined);
      if (!task) return;
      event = AgentEvent.task(task);
    }
    bus.publish(event);
    const state = event.kind === 'statusUpdate' ? event.data.status?.state : event.kind === 'task' ? event.data.status?.state : undefined;
    if (state !== undefined && ENDING.has(state)) {
      bus.finished();
      busManager.cleanupByTaskId(envelope.taskId, context);
    }
  };
  let hooksRef: EventRelayHooks | undefined;

  return {
    busManager,

    sender(inner) {
      return {
        send(response, context, task) {
          const payload = response.payload;
          const owner = context.user?.userName ?? '';
          if (payload?.$case === 'task') send?.(owner, payload.value.id, AgentEvent.task(payload.value));
          else if (payload?.$case === 'statusUpdate') send?.(owner, payload.value.taskId, AgentEvent.statusUpdate(payload.value));
          else if (payload?.$case === 'artifactUpdate') send?.(owner, payload.value.taskId, AgentEvent.artifactUpdate(payload.value));
          return inner.send(response, context, task);
        },
      };
    },

    follow(owner, taskId, task) {
      // Also with one process (PGlite): a task that an earlier start left pending gets its bus here first,
      // and the resumer publishes on it once it takes the task over.
      if (!task) return;
      const state = task.status?.state;
      if (state !== undefined && ENDING.has(state)) return;
      const context = contextOf(owner);
      if (inner.getByTaskId(taskId, context)) return;
      const bus = inner.createOrGetByTaskId(taskId, context);
      mirrors.add(bus);
      open.set(bus, { taskId, context });
    },

    finishAll() {
      for (const [bus, { taskId, context }] of open) {
        bus.finished();
        inner.cleanupByTaskId(taskId, context);
      }
      open.clear();
    },

    async announceCancel(owner, taskId) {
      if (!database) return;
      await database.notify(CANCELS, JSON.stringify({ from: me, owner, taskId }));
    },

    async start(opened, processId, hooks) {
      database = opened;
      me = processId;
      hooksRef = hooks;
      stops.push(await opened.listen(TASK_EVENTS, (payload) => void receive(payload)));
      stops.push(
        await opened.listen(CANCELS, (payload) => {
          try {
            const { from, owner, taskId } = JSON.parse(payload) as Envelope;
            if (from === me) return;
            hooks.changedElsewhere(owner, taskId);
            const bus = inner.getByTaskId(taskId, contextOf(owner));
            hooks.onCancel(owner, taskId, bus && !mirrors.has(bus) ? bus : undefined);
          } catch {
            // Not ours.
          }
        }),
      );
      // One statement at a time, each sending every event saved meanwhile, in order: a pool would
      // otherwise let a task's final status overtake its artifact. At a thousand tasks in flight,
      // a statement per event kept a connection busy with nothing else.
      const pending: string[] = [];
      let sending = false;
      const sendPending = async () => {
        while (pending.length > 0) {
          await opened.notify(TASK_EVENTS, pending.splice(0, MAX_EVENTS_PER_NOTIFY)).catch(() => undefined);
        }
        sending = false;
      };
      send = (owner, taskId, event) => {
        let payload = JSON.stringify({ from: me, owner, taskId, event } satisfies Envelope);
        if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) payload = JSON.stringify({ from: me, owner, taskId } satisfies Envelope);
        pending.push(payload);
        if (sending) return;
        sending = true;
        void sendPending();
      };
    },

    async close() {
      send = undefined;
      database = undefined;
      for (const stop of stops.splice(0)) await stop().catch(() => undefined);
      stops = [];
    },
  };
}

type HandlerArgs = ConstructorParameters<typeof DefaultRequestHandler>;

/**
 * The SDK's request handler, with SubscribeToTask following a task that
 * another process runs (through the relay) and CancelTask reaching the
 * process that runs it.
 */
export class RelayingRequestHandler extends DefaultRequestHandler {
  readonly #relay: EventRelay;
  readonly #tasks: TaskStore;

  constructor(relay: EventRelay, ...args: HandlerArgs) {
    super(...args);
    this.#relay = relay;
    this.#tasks = args[1];
  }

  override async *resubscribe(params: SubscribeToTaskRequest, context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    const owner = context.user?.userName ?? '';
    this.#relay.follow(owner, params.id, await this.#tasks.load(params.id, context).catch(() => undefined));
    yield* super.resubscribe(params, context);
  }

  override async cancelTask(params: CancelTaskRequest, context: ServerCallContext): Promise<Task> {
    const task = await super.cancelTask(params, context);
    await this.#relay.announceCancel(context.user?.userName ?? '', params.id).catch(() => undefined);
    return task;
  }
}
