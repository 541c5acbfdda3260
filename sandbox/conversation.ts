import { randomUUID } from 'node:crypto';
import { Role, TaskState, type Message, type Part } from '@a2a-js/sdk';
import type { Client } from '@a2a-js/sdk/client';

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

export type TurnEvent =
  | { kind: 'state'; taskId: string; contextId: string; state: TaskStateName; message: string | undefined; at: number }
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

/**
 * Streams one user message and yields each observed event. Follows the task
 * to a terminal or interrupted state; pass `untilTerminal` to keep listening
 * through AUTH_REQUIRED (the agent keeps the stream open while consent is pending).
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
  for await (const response of stream) {
    const payload = response.payload;
    const at = performance.now();
    switch (payload?.$case) {
      case 'task': {
        const task = payload.value;
        yield { kind: 'state', taskId: task.id, contextId: task.contextId, state: stateName(task.status?.state), message: textOf(task.status?.message?.parts) || undefined, at };
        for (const artifact of task.artifacts) {
          yield { kind: 'artifact', taskId: task.id, contextId: task.contextId, name: artifact.name, text: textOf(artifact.parts), at };
        }
        break;
      }
      case 'statusUpdate': {
        const update = payload.value;
        yield { kind: 'state', taskId: update.taskId, contextId: update.contextId, state: stateName(update.status?.state), message: textOf(update.status?.message?.parts) || undefined, at };
        break;
      }
      case 'artifactUpdate': {
        const update = payload.value;
        yield { kind: 'artifact', taskId: update.taskId, contextId: update.contextId, name: update.artifact?.name ?? '', text: textOf(update.artifact?.parts), at };
        break;
      }
      case 'message':
        yield { kind: 'message', contextId: payload.value.contextId, text: textOf(payload.value.parts), at };
        break;
      default:
        break;
    }
  }
}

/** Collects a whole turn; `onEvent` sees each event as it arrives. */
export async function runTurn(
  client: Client,
  text: string,
  ids: { contextId?: string; taskId?: string } = {},
  options: { signal?: AbortSignal; onEvent?: (event: TurnEvent) => void } = {},
): Promise<TurnResult> {
  const events: TurnEvent[] = [];
  const states: TaskStateName[] = [];
  let taskId: string | undefined;
  let contextId: string | undefined;
  let artifactText = '';
  let lastMessage = '';
  for await (const event of streamTurn(client, text, ids, options)) {
    events.push(event);
    options.onEvent?.(event);
    contextId = event.contextId || contextId;
    if (event.kind === 'state') {
      taskId = event.taskId;
      if (states.at(-1) !== event.state) states.push(event.state);
      if (event.message) lastMessage = event.message;
    } else if (event.kind === 'artifact') {
      artifactText = artifactText ? `${artifactText}\n${event.text}` : event.text;
    } else {
      lastMessage = event.text;
      if (states.length === 0) states.push('COMPLETED');
    }
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
