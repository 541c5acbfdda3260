import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Role, TaskState, type Message, type Part, type StreamResponse, type Task } from '@a2a-js/sdk';
import type { Client } from '@a2a-js/sdk/client';
import { context as traceContext, SpanKind, trace } from '@opentelemetry/api';
import { failHop } from './telemetry/hop-spans.ts';
import { HOP } from './telemetry/hops.ts';
import { enableAsyncContext, type Telemetry } from './telemetry/setup.ts';

/**
 * A caller's view of one A2A exchange, shared by the command-line client,
 * the scenario runner and the benchmarks: every state the task went through,
 * its status messages and the final answer.
 */

export type TaskStateName =
  | 'SUBMITTED'
  | 'WORKING'
  | 'COMPLETED'
  | 'FAILED'
  | 'CANCELED'
  | 'INPUT_REQUIRED'
  | 'REJECTED'
  | 'AUTH_REQUIRED'
  | 'UNKNOWN';

/** What the agent says of a pending consent in its AUTH_REQUIRED update's `metadata.consent` (agent/executor.ts). */
export interface PendingConsentView {
  /** Who must approve (the agent names the employee by work email). */
  employee: string;
  /** Auth0's notification channel: `guardian-push` or `email`. */
  channel: string;
  /** When the CIBA request expires (epoch ms). */
  expiresAt: number;
}

export type TurnEvent =
  | {
      kind: 'state';
      taskId: string;
      contextId: string;
      state: TaskStateName;
      message: string | undefined;
      at: number;
      /** Present on an AUTH_REQUIRED update that describes its consent request. */
      consent?: PendingConsentView;
    }
  | { kind: 'artifact'; taskId: string; contextId: string; name: string; text: string; at: number }
  | { kind: 'message'; contextId: string; text: string; at: number };

export interface TurnResult {
  taskId: string | undefined;
  contextId: string | undefined;
  /** States in the order they were observed, consecutive repeats folded. */
  states: TaskStateName[];
  finalState: TaskStateName;
  /** The artifact's text (or a direct message's), else the last status message. */
  answer: string;
  events: TurnEvent[];
}

export const TERMINAL_STATES: readonly TaskStateName[] = ['COMPLETED', 'FAILED', 'CANCELED', 'REJECTED'];
/** States where the task waits for the caller or the employee; a stream may end there. */
export const INTERRUPTED_STATES: readonly TaskStateName[] = ['INPUT_REQUIRED', 'AUTH_REQUIRED'];

export function stateName(state: TaskState | undefined): TaskStateName {
  const name = state === undefined ? undefined : TaskState[state];
  if (name === undefined || !name.startsWith('TASK_STATE_')) return 'UNKNOWN';
  const short = name.slice('TASK_STATE_'.length);
  return short === 'UNSPECIFIED' ? 'UNKNOWN' : (short as TaskStateName);
}

export function textOf(parts: Part[] | undefined): string {
  return (parts ?? [])
    .map((p) => (p.content?.$case === 'text' ? p.content.value : ''))
    .filter(Boolean)
    .join('\n');
}

export function userMessage(text: string, ids: { contextId?: string; taskId?: string } = {}): Message {
  return {
    messageId: randomUUID(),
    contextId: ids.contextId ?? '',
    taskId: ids.taskId ?? '',
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}

/** The caller's events in one streamed response (a task snapshot, an update or a message). */
export function eventsOf(response: StreamResponse): TurnEvent[] {
  const payload = response.payload;
  const at = performance.now();
  switch (payload?.$case) {
    case 'task':
      return taskEvents(payload.value, at);
    case 'statusUpdate': {
      const update = payload.value;
      const consent = pendingConsentOf(update.metadata);
      return [
        {
          kind: 'state',
          taskId: update.taskId,
          contextId: update.contextId,
          state: stateName(update.status?.state),
          message: textOf(update.status?.message?.parts) || undefined,
          at,
          ...(consent ? { consent } : {}),
        },
      ];
    }
    case 'artifactUpdate': {
      const update = payload.value;
      return [{ kind: 'artifact', taskId: update.taskId, contextId: update.contextId, name: update.artifact?.name ?? '', text: textOf(update.artifact?.parts), at }];
    }
    case 'message':
      return [{ kind: 'message', contextId: payload.value.contextId, text: textOf(payload.value.parts), at }];
    default:
      return [];
  }
}

/** The agent's description of a pending consent, if its (untrusted) metadata holds a well-formed one. */
export function pendingConsentOf(metadata: Record<string, unknown> | undefined): PendingConsentView | undefined {
  const consent: unknown = metadata?.consent;
  if (typeof consent !== 'object' || consent === null) return undefined;
  const { employee, channel, expires_at: expiresAt } = consent as Record<string, unknown>;
  if (typeof employee !== 'string' || typeof channel !== 'string' || typeof expiresAt !== 'string') return undefined;
  const at = Date.parse(expiresAt);
  if (employee === '' || Number.isNaN(at)) return undefined;
  return { employee, channel, expiresAt: at };
}

function taskEvents(task: Task, at: number): TurnEvent[] {
  return [
    { kind: 'state', taskId: task.id, contextId: task.contextId, state: stateName(task.status?.state), message: textOf(task.status?.message?.parts) || undefined, at },
    ...task.artifacts.map((artifact): TurnEvent => ({ kind: 'artifact', taskId: task.id, contextId: task.contextId, name: artifact.name, text: textOf(artifact.parts), at })),
  ];
}

/**
 * Streams one user message and yields each observed event. Follows the task
 * to a terminal or interrupted state (the agent keeps the stream open while
 * consent is pending).
 */
export async function* streamTurn(
  client: Client,
  text: string,
  ids: { contextId?: string; taskId?: string } = {},
  options: { signal?: AbortSignal } = {},
): AsyncGenerator<TurnEvent> {
  const stream = client.sendMessageStream(
    { tenant: '', message: userMessage(text, ids), configuration: undefined, metadata: undefined },
    options.signal ? { signal: options.signal } : undefined,
  );
  for await (const response of stream) yield* eventsOf(response);
}

export interface ReconnectOptions {
  /** How long to keep trying after the stream broke (default 60 s). */
  forMs?: number;
  /** Told before each attempt, with the attempt number and why the last one ended. */
  onReconnect?: (attempt: number, reason: string) => void;
}

export interface TurnOptions {
  signal?: AbortSignal;
  onEvent?: (event: TurnEvent) => void;
  /**
   * When the stream breaks before the task ends, follow it again with
   * SubscribeToTask (A2A §3.1.6), with backoff, for a bounded time. Off when
   * undefined: the break is thrown.
   */
  reconnect?: ReconnectOptions;
  /**
   * Trace the turn: a span the agent's task continues (its requests carry `traceparent`, see
   * agent-client.ts `withTraceContext`), so one trace holds the caller's view and the task's hops.
   */
  telemetry?: Telemetry;
}

const RECONNECT_FIRST_WAIT_MS = 250;
const RECONNECT_MAX_WAIT_MS = 5_000;

/** Collects a whole turn; `onEvent` sees each event as it arrives. */
export async function runTurn(
  client: Client,
  text: string,
  ids: { contextId?: string; taskId?: string } = {},
  options: TurnOptions = {},
): Promise<TurnResult> {
  const { telemetry, ...untraced } = options;
  if (telemetry?.recording) return traceTurn(telemetry, () => runTurn(client, text, ids, untraced));
  const events: TurnEvent[] = [];
  const states: TaskStateName[] = [];
  let taskId: string | undefined;
  let contextId: string | undefined;
  let artifactText = '';
  let lastMessage = '';
  const seen = (event: TurnEvent) => {
    events.push(event);
    options.onEvent?.(event);
    contextId = event.contextId || contextId;
    if (event.kind === 'state') {
      taskId = event.taskId;
      if (states.at(-1) !== event.state) states.push(event.state);
      if (event.message) lastMessage = event.message;
    } else if (event.kind === 'artifact') {
      // A task snapshot after a reconnect repeats artifacts already seen.
      if (!artifactText.split('\n').includes(event.text)) artifactText = artifactText ? `${artifactText}\n${event.text}` : event.text;
    } else {
      lastMessage = event.text;
      if (states.length === 0) states.push('COMPLETED');
    }
  };
  const settled = () => {
    const last = states.at(-1);
    return last !== undefined && (TERMINAL_STATES.includes(last) || last === 'INPUT_REQUIRED');
  };

  let broken: unknown;
  try {
    for await (const event of streamTurn(client, text, ids, options)) seen(event);
  } catch (error) {
    broken = error;
  }
  if (!settled() && options.reconnect && taskId !== undefined && !options.signal?.aborted) {
    await follow(client, taskId, seen, settled, options.reconnect, options.signal, broken);
  } else if (broken !== undefined) {
    throw broken;
  }
  return {
    taskId,
    contextId,
    states,
    finalState: states.at(-1) ?? 'UNKNOWN',
    answer: artifactText || lastMessage,
    events,
  };
}

/** The caller's span of one turn: no arrow (the agent draws the caller's message), the root of the task's trace. */
async function traceTurn(telemetry: Telemetry, run: () => Promise<TurnResult>): Promise<TurnResult> {
  enableAsyncContext();
  const span = telemetry.tracer.startSpan('A2A turn', { kind: SpanKind.CLIENT });
  try {
    const result = await traceContext.with(trace.setSpan(traceContext.active(), span), run);
    span.setAttributes({
      ...(result.taskId === undefined ? {} : { [HOP.taskId]: result.taskId }),
      [HOP.taskState]: result.finalState,
    });
    return result;
  } catch (error) {
    failHop(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Follows a task whose stream broke: its current state (GetTask), then its updates (SubscribeToTask), with backoff. */
async function follow(
  client: Client,
  id: string,
  seen: (event: TurnEvent) => void,
  settled: () => boolean,
  options: ReconnectOptions,
  signal: AbortSignal | undefined,
  broken: unknown,
): Promise<void> {
  const giveUpAt = Date.now() + (options.forMs ?? 60_000);
  let reason = broken instanceof Error ? broken.message : 'the stream ended before the task did';
  for (let attempt = 1; ; attempt += 1) {
    const wait = Math.min(RECONNECT_MAX_WAIT_MS, RECONNECT_FIRST_WAIT_MS * 2 ** (attempt - 1));
    if (Date.now() + wait > giveUpAt) {
      throw new Error(`Lost the task's stream (${reason}) and could not follow it again in time`, { cause: broken });
    }
    await sleep(wait, undefined, signal ? { signal } : {});
    options.onReconnect?.(attempt, reason);
    try {
      const request = signal ? { signal } : undefined;
      const task = await client.getTask({ tenant: '', id, historyLength: 0 }, request);
      for (const event of taskEvents(task, performance.now())) seen(event);
      if (settled()) return;
      for await (const response of client.resubscribeTask({ tenant: '', id }, request)) {
        for (const event of eventsOf(response)) seen(event);
      }
      if (settled()) return;
      reason = 'the stream ended before the task did';
    } catch (error) {
      if (signal?.aborted) throw error;
      if (/not found/i.test(error instanceof Error ? error.message : '')) throw error;
      reason = error instanceof Error ? error.message : String(error);
    }
  }
}
