import { randomUUID } from 'node:crypto';
import { Role, TaskState, type Message, type Part, type Task } from '@a2a-js/sdk';
import type { Content } from '@google/genai';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import { context as traceContext, ROOT_CONTEXT, SpanKind, trace, type Context, type Span } from '@opentelemetry/api';
import { endHop, markHop, startHop, taskScopeOf, withTaskScope } from '../sandbox/telemetry/hop-spans.ts';
import { HOP } from '../sandbox/telemetry/hops.ts';
import { noTelemetry, type Telemetry } from '../sandbox/telemetry/setup.ts';
import type { PendingConsent } from './ciba.ts';
import { NO_LEDGER, type ResumeState, type Run, type StoredConsent, type TaskLedger } from './task-ledger.ts';
import { closedExchange, type Conversations } from './conversations.ts';
import { formatSeconds } from './call-policy.ts';
import { callerOf, type CallerUser } from './authorization-details.ts';
import { AgentError, toAgentError } from './errors.ts';
import { outcomeFor } from './outcomes.ts';
import type { PlanCheckpoint, Planner, PlanResult } from './planner.ts';
import type { Tools } from './tools.ts';

/**
 * Runs one A2A task: plan, ask the employee for consent, answer. Publishes
 * the task first, then WORKING, AUTH_REQUIRED while consent is pending,
 * WORKING again, and one final state (A2A §6.3 task lifecycle).
 */

export interface ExecutorOptions {
  planner: Planner;
  tools: Tools;
  conversations: Conversations;
  /** Longest user text passed to the planner. */
  maxInputLength?: number;
  /** Tasks in INPUT_REQUIRED the executor keeps track of. */
  maxWaitingTasks?: number;
  /**
   * The watchdog: how long a task may work before a consent is pending, and
   * how long past a pending consent's expiry; past either it ends FAILED.
   */
  deadlines?: TaskDeadlines;
  /** Where work in flight is written down so another start can finish it (agent/task-ledger.ts); nothing otherwise. */
  ledger?: TaskLedger;
  /** Each execution is a span (the caller's message to the agent), its hops the children (default: not traced). */
  telemetry?: Telemetry;
}

export interface TaskDeadlines {
  beforeConsentMs: number;
  afterConsentExpiryMs: number;
}

export interface HrAgentExecutor extends AgentExecutor {
  /** Stops every running task (polling included), recording nothing as finished; used on shutdown. */
  abortAll(): void;
  /** Tasks whose execution is under way, pending consents included. */
  activeTasks(): number;
  isRunning(taskId: string): boolean;
  /** Stops a task here without a word: another agent process has taken it over (its lease lapsed here). */
  abandon(taskId: string): void;
  /**
   * Finishes a task whose consent was requested by an earlier start of the agent (or another agent
   * process), publishing on `bus` as `execute` would: waits for the answer, reads the HR API, lets the
   * planner go on from its stored checkpoint.
   */
  resume(consent: StoredConsent, bus: ExecutionEventBus): Promise<void>;
  /** Ends FAILED a task whose process stopped while it worked before any consent was pending (see README). */
  endInterrupted(run: Run, bus: ExecutionEventBus): Promise<void>;
}

interface RunningTask {
  contextId: string;
  controller: AbortController;
  /** Another agent process took the task over (this one lost its lease): its records are that process's now. */
  abandoned?: boolean;
  /** Set once a final state was published; nothing is published after it. */
  closed: boolean;
  /** True while `execute()` runs; false while the task waits for input. */
  active: boolean;
  done: Promise<void>;
  watchdog: NodeJS.Timeout | undefined;
  /** The execution's span and the context its hops are made in. */
  trace: TaskTrace;
}

interface TaskTrace {
  span: Span;
  context: Context;
}

/** States the caller is told of that the diagram shows as an arrow back to the caller (not WORKING). */
const DRAWN_STATES = new Set([
  TaskState.TASK_STATE_AUTH_REQUIRED,
  TaskState.TASK_STATE_INPUT_REQUIRED,
  TaskState.TASK_STATE_COMPLETED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELED,
  TaskState.TASK_STATE_REJECTED,
]);

const TERMINAL = new Set([
  TaskState.TASK_STATE_COMPLETED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELED,
  TaskState.TASK_STATE_REJECTED,
]);

export function createExecutor(options: ExecutorOptions): HrAgentExecutor {
  const maxInputLength = options.maxInputLength ?? 2000;
  const maxWaitingTasks = options.maxWaitingTasks ?? 10_000;
  const deadlines = options.deadlines;
  const ledger = options.ledger ?? NO_LEDGER;
  const telemetry = options.telemetry ?? noTelemetry();
  const tasks = new Map<string, RunningTask>();

  /**
   * The span of one execution: the caller's message reaching the agent (or the agent taking a task over),
   * in the caller's trace when the request carried one. Every hop made while it runs is its child and
   * names the task; the task id also travels on to the other services as W3C Baggage.
   */
  const traceTask = (taskId: string, parent: Context, hop: { from: 'client' | 'agent'; label: string; token?: string }): TaskTrace => {
    const scoped = withTaskScope(parent, { taskId, employee: undefined });
    const span = startHop(
      telemetry,
      {
        from: hop.from,
        to: 'agent',
        label: hop.label,
        kind: hop.from === 'client' ? SpanKind.SERVER : SpanKind.INTERNAL,
        ...(hop.token === undefined ? {} : { attributes: { [`${HOP.tokenPrefix}access_token`]: hop.token } }),
      },
      scoped,
    );
    return { span, context: trace.setSpan(scoped, span) };
  };
  /** Tells the trace what the caller was told: an arrow back to the caller for each state it waits for. */
  const traceState = (traced: TaskTrace, state: TaskState) => {
    if (!DRAWN_STATES.has(state) || !traced.span.isRecording()) return;
    const name = stateLabel(state);
    traced.span.setAttribute(HOP.taskState, name);
    markHop(telemetry, { from: 'agent', to: 'client', label: name, attributes: { [HOP.taskState]: name } }, traced.context);
  };
  /** Set by `abortAll`: a stopping agent records nothing as finished, so its work stays resumable. */
  let stopping = false;
  /** Tasks left waiting for input are remembered (for CancelTask) up to a bound, oldest forgotten first. */
  const forgetOldestWaiting = () => {
    for (const [id, task] of tasks) {
      if (tasks.size <= maxWaitingTasks) break;
      if (!task.active) tasks.delete(id);
    }
  };

  /** One execution of a task in this process: its bookkeeping and the only ways it publishes. */
  const begin = (taskId: string, contextId: string, bus: ExecutionEventBus, traced: TaskTrace) => {
    let finish: () => void = () => undefined;
    const running: RunningTask = {
      contextId,
      controller: new AbortController(),
      closed: false,
      active: true,
      done: new Promise<void>((resolve) => (finish = resolve)),
      watchdog: undefined,
      trace: traced,
    };
    tasks.set(taskId, running);
    const publishStatus = (state: TaskState, text?: string, metadata?: Record<string, unknown>) => {
      if (running.closed) return;
      if (TERMINAL.has(state)) running.closed = true;
      traceState(running.trace, state);
      bus.publish(
        AgentEvent.statusUpdate({
          taskId,
          contextId,
          status: {
            state,
            message: text === undefined ? undefined : agentMessage(taskId, contextId, text),
            timestamp: new Date().toISOString(),
          },
          metadata,
        }),
      );
    };

    /** A completed task always carries its answer as an artifact (A2A §6.7). */
    const finishWith = (state: TaskState, text: string) => {
      if (running.closed) return;
      if (state === TaskState.TASK_STATE_COMPLETED) {
        bus.publish(
          AgentEvent.artifactUpdate({
            taskId,
            contextId,
            artifact: {
              artifactId: randomUUID(),
              name: 'answer',
              description: 'Whether the person is an active employee of Staff0',
              parts: [textPart(text)],
              metadata: undefined,
              extensions: [],
            },
            append: false,
            lastChunk: true,
            metadata: undefined,
          }),
        );
      }
      publishStatus(state, text);
    };

    /** No task stays open without a reason: past its deadline it ends FAILED, saying why. */
    const armWatchdog = (at: number, why: string) => {
      if (!deadlines) return;
      clearTimeout(running.watchdog);
      running.watchdog = setTimeout(() => {
        if (running.closed) return;
        const error = new AgentError('deadline_exceeded', why);
        running.controller.abort(error);
        const outcome = outcomeFor(error);
        finishWith(outcome.state, outcome.text);
      }, Math.max(0, at - Date.now()));
    };
    const armAfterConsent = (expiresAt: Date) => {
      if (!deadlines) return;
      armWatchdog(
        expiresAt.getTime() + deadlines.afterConsentExpiryMs,
        `The request did not finish within ${formatSeconds(deadlines.afterConsentExpiryMs)} of the approval request's expiry, so it was stopped`,
      );
    };

    /** What the tool session reports: a pending consent is recorded (with the plan to resume) before it is announced. */
    const consentEvents = (owner: string, resumeState: () => Omit<ResumeState, 'checkpoint'> & { checkpoint: PlanCheckpoint | undefined }) => {
      let pendingId: string | undefined;
      return {
      onConsentPending: async (pending: PendingConsent & { employee: string }) => {
        armAfterConsent(pending.expiresAt);
        const { checkpoint, ...rest } = resumeState();
        pendingId = pending.resumable?.authReqId;
        if (pending.resumable && checkpoint) {
          await ledger.consentPending({
            ...pending.resumable,
            owner,
            taskId,
            contextId,
            employeeId: pending.employeeId,
            employeeLabel: pending.employee,
            bindingMessage: pending.bindingMessage,
            expiresAt: pending.expiresAt,
            resume: { ...rest, checkpoint },
          });
        }
        publishStatus(TaskState.TASK_STATE_AUTH_REQUIRED, consentText(pending), {
          consent: {
            employee: pending.employee,
            binding_message: pending.bindingMessage,
            expires_at: wholeSeconds(pending.expiresAt),
            channel: pending.channel ?? 'guardian-push',
          },
        });
      },
      onConsentSettled: () => {
        // Answered: nobody may poll it again, and a restart from here on cannot resume the task.
        if (pendingId !== undefined) void ledger.consentSettled(pendingId).catch(() => undefined);
        pendingId = undefined;
        publishStatus(TaskState.TASK_STATE_WORKING);
      },
      };
    };

    /** Records the end: the ledger forgets the task, unless the agent is stopping (then it stays resumable). */
    const end = async (owner: string) => {
      clearTimeout(running.watchdog);
      const employee = taskScopeOf(running.trace.context)?.employee;
      endHop(running.trace.span, employee === undefined ? {} : { attributes: { [HOP.employee]: employee } });
      running.active = false;
      if (running.closed) tasks.delete(taskId);
      forgetOldestWaiting();
      if (!stopping && !running.abandoned) await ledger.finished({ owner, taskId }).catch(() => undefined);
      finish();
    };

    /**
     * Publishes where a planning step ended: the answer, a question for the caller, or its failure, keeping the
     * exchange in the conversation either way.
     */
    const conclude = async (owner: string, exchange: { history: Content[]; userText: string }, plan: () => Promise<PlanResult>) => {
      let result: PlanResult;
      try {
        result = await plan();
      } catch (error) {
        if (running.closed) return;
        const outcome = outcomeFor(toAgentError(error, 'The request'));
        await options.conversations.set(owner, contextId, closedExchange(exchange.history, exchange.userText, outcome.text));
        finishWith(outcome.state, outcome.text);
        return;
      }
      if (running.closed) return;
      await options.conversations.set(owner, contextId, result.transcript);
      if (result.kind === 'input_required') {
        publishStatus(TaskState.TASK_STATE_INPUT_REQUIRED, result.question);
        return;
      }
      finishWith(TaskState.TASK_STATE_COMPLETED, result.text);
    };

    /** Ends the task with what `error` means for the caller, unless it has ended already. */
    const failWith = (error: unknown) => {
      if (running.closed) return;
      const outcome = outcomeFor(toAgentError(error, 'The request'));
      finishWith(outcome.state, outcome.text);
    };

    return { running, publishStatus, finishWith, failWith, armWatchdog, armAfterConsent, consentEvents, conclude, end };
  };

  return {
    async execute(context: RequestContext, bus: ExecutionEventBus) {
      const { taskId, contextId } = context;
      const owner = context.context.user?.userName ?? '';
      const userMessage = context.userMessage;
      const existing = tasks.get(taskId);

      // A2A requires a task (or message) as the first event of every execution.
      bus.publish(AgentEvent.task(context.task ?? newTask(taskId, contextId, userMessage)));
      if (existing?.active) {
        // A second message while consent is pending joins the running execution.
        await existing.done;
        return;
      }

      const caller = context.context.user as CallerUser | undefined;
      const traced = traceTask(taskId, caller?.trace ?? traceContext.active(), {
        from: 'client',
        label: 'SendMessage',
        ...(caller?.tokenDescription === undefined ? {} : { token: caller.tokenDescription }),
      });
      const { running, publishStatus, failWith, armWatchdog, consentEvents, conclude, end } = begin(taskId, contextId, bus, traced);
      if (deadlines) {
        armWatchdog(
          Date.now() + deadlines.beforeConsentMs,
          `The request did not reach the employee's approval within ${formatSeconds(deadlines.beforeConsentMs)}, so it was stopped`,
        );
      }

      // Every hop of the execution (model calls, the identity backend, the HR API) is made in its trace.
      return traceContext.with(traced.context, async () => {
        try {
          publishStatus(TaskState.TASK_STATE_WORKING);
          const userText = textOf(userMessage).slice(0, maxInputLength);
          if (userText === '') {
            publishStatus(TaskState.TASK_STATE_INPUT_REQUIRED, 'Please ask in text, giving the work email address or employee id of the person to check.');
            return;
          }
          await ledger.started({ owner, taskId, contextId });
          const signal = running.controller.signal;
          const history = await options.conversations.get(owner, contextId);
          let checkpoint: PlanCheckpoint | undefined;
          const session = options.tools.session(
            signal,
            consentEvents(owner, () => ({ checkpoint, userText, historyLength: history.length })),
            callerOf(context.context.user),
          );
          await conclude(owner, { history, userText }, () =>
            options.planner.run({ history, userText, tools: session, signal, onCall: (at) => (checkpoint = at) }),
          );
        } catch (error) {
          // The conversation store failed: the task still ends, saying so.
          failWith(error);
        } finally {
          await end(owner);
        }
      });
    },

    async resume(consent, bus) {
      if (tasks.has(consent.taskId)) return;
      const { owner, taskId, contextId } = consent;
      // The caller's trace stayed with the process that started the task: a taken-over task starts its own.
      const traced = traceTask(taskId, ROOT_CONTEXT, { from: 'agent', label: 'resume task' });
      const { running, failWith, armAfterConsent, consentEvents, conclude, end } = begin(taskId, contextId, bus, traced);
      armAfterConsent(consent.expiresAt);
      const { userText, historyLength } = consent.resume;
      const history = consent.resume.checkpoint.contents.slice(0, historyLength);
      return traceContext.with(traced.context, async () => {
        try {
          const signal = running.controller.signal;
          let checkpoint: PlanCheckpoint | undefined;
          const session = options.tools.session(signal, consentEvents(owner, () => ({ checkpoint, userText, historyLength })));
          await conclude(owner, { history, userText }, async () => {
            const answer = await session.resume({ ...consent, employeeId: consent.employeeId, expiresAt: consent.expiresAt });
            return options.planner.resume({
              checkpoint: consent.resume.checkpoint,
              result: answer,
              tools: session,
              signal,
              onCall: (at) => (checkpoint = at),
            });
          });
        } catch (error) {
          failWith(error);
        } finally {
          await end(owner);
        }
      });
    },

    async endInterrupted(run, bus) {
      if (tasks.has(run.taskId)) return;
      const traced = traceTask(run.taskId, ROOT_CONTEXT, { from: 'agent', label: 'end interrupted task' });
      const { finishWith, end } = begin(run.taskId, run.contextId, bus, traced);
      try {
        const outcome = outcomeFor(
          new AgentError(
            'interrupted',
            'The agent restarted while working on this request, before the employee was asked to approve it; please ask again',
          ),
        );
        finishWith(outcome.state, outcome.text);
      } finally {
        await end(run.owner);
      }
    },

    async cancelTask(taskId: string, bus: ExecutionEventBus) {
      const running = tasks.get(taskId);
      tasks.delete(taskId);
      if (running) {
        running.closed = true;
        clearTimeout(running.watchdog);
        running.controller.abort();
        traceState(running.trace, TaskState.TASK_STATE_CANCELED);
      }
      // The request handler waits for this final event (A2A §3.1.5 CancelTask).
      bus.publish(
        AgentEvent.statusUpdate({
          taskId,
          contextId: running?.contextId ?? '',
          status: {
            state: TaskState.TASK_STATE_CANCELED,
            message: agentMessage(taskId, running?.contextId ?? '', 'The request was canceled.'),
            timestamp: new Date().toISOString(),
          },
          metadata: undefined,
        }),
      );
    },

    activeTasks() {
      let active = 0;
      for (const running of tasks.values()) if (running.active) active += 1;
      return active;
    },

    isRunning(taskId) {
      return tasks.get(taskId)?.active === true;
    },

    abandon(taskId) {
      const running = tasks.get(taskId);
      if (!running) return;
      tasks.delete(taskId);
      running.abandoned = true;
      running.closed = true;
      clearTimeout(running.watchdog);
      running.controller.abort();
    },

    abortAll() {
      stopping = true;
      for (const running of tasks.values()) {
        running.closed = true;
        clearTimeout(running.watchdog);
        running.controller.abort();
      }
      tasks.clear();
    },
  };
}

/** `TASK_STATE_AUTH_REQUIRED` → `AUTH_REQUIRED`, as the caller's client names states. */
function stateLabel(state: TaskState): string {
  return (TaskState[state] ?? 'UNKNOWN').replace(/^TASK_STATE_/, '');
}

function consentText(pending: PendingConsent & { employee: string }): string {
  const where =
    pending.channel === 'email'
      ? 'in the email sent to them (open its link, sign in and approve)'
      : 'on their phone (Guardian push notification)';
  return (
    `Waiting for ${pending.employee} to approve "${pending.bindingMessage}" ${where}. ` +
    `The request expires at ${wholeSeconds(pending.expiresAt)}.`
  );
}

/** `expires_in` is whole seconds (CIBA §7.3), so more precision would only be noise. */
function wholeSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function newTask(taskId: string, contextId: string, userMessage: Message): Task {
  return {
    id: taskId,
    contextId,
    status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: new Date().toISOString() },
    artifacts: [],
    history: [userMessage],
    metadata: undefined,
  };
}

function textOf(message: Message): string {
  return message.parts
    .flatMap((part) => (part.content?.$case === 'text' ? [part.content.value] : []))
    .join('\n')
    .trim();
}

function textPart(text: string): Part {
  return { content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' };
}

function agentMessage(taskId: string, contextId: string, text: string): Message {
  return {
    messageId: randomUUID(),
    contextId,
    taskId,
    role: Role.ROLE_AGENT,
    parts: [textPart(text)],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}
