import type { Message, SendMessageRequest, StreamResponse } from '@a2a-js/sdk';
import { stateName, textOf, type TaskStateName } from '../../sandbox/conversation.ts';

/**
 * How the agent's tests call it: typed requests for @a2a-js/sdk (its client
 * or the server's request handler), a stream read event by event, and raw
 * JSON-RPC for what only the HTTP answer shows (status, WWW-Authenticate).
 */

export function sendRequest(message: Message, configuration?: Partial<NonNullable<SendMessageRequest['configuration']>>): SendMessageRequest {
  return {
    tenant: '',
    message,
    configuration: configuration
      ? { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: false, ...configuration }
      : undefined,
    metadata: undefined,
  };
}

export interface StreamRun {
  /** 'task', 'artifact', or the state name of each status update, in order. */
  events: string[];
  taskId: string;
  contextId: string;
  finalState: TaskStateName;
  finalText: string | undefined;
  artifactText: string | undefined;
  /** Status message text of each status update, in order. */
  statusTexts: (string | undefined)[];
  /** When each event arrived (ms since epoch). */
  times: number[];
}

/** Consumes a stream, awaiting `onStatus` for each status update (e.g. to approve at AUTH_REQUIRED). */
export async function collect(
  stream: AsyncIterable<StreamResponse>,
  onStatus?: (state: TaskStateName, run: StreamRun) => Promise<void> | void,
): Promise<StreamRun> {
  const run: StreamRun = {
    events: [],
    taskId: '',
    contextId: '',
    finalState: 'UNKNOWN',
    finalText: undefined,
    artifactText: undefined,
    statusTexts: [],
    times: [],
  };
  for await (const event of stream) {
    const payload = event.payload;
    run.times.push(Date.now());
    if (payload?.$case === 'task') {
      run.events.push('task');
      run.taskId = payload.value.id;
      run.contextId = payload.value.contextId;
      run.finalState = stateName(payload.value.status?.state);
    } else if (payload?.$case === 'artifactUpdate') {
      run.events.push('artifact');
      run.artifactText = textOf(payload.value.artifact?.parts) || undefined;
    } else if (payload?.$case === 'statusUpdate') {
      const state = stateName(payload.value.status?.state);
      run.events.push(state);
      run.finalState = state;
      run.finalText = textOf(payload.value.status?.message?.parts) || undefined;
      run.statusTexts.push(run.finalText);
      await onStatus?.(state, run);
    }
  }
  return run;
}

/** SendMessage params in the A2A 1.0 JSON wire form, for calls that bypass the SDK. */
export const wireSendParams = (text: string) => ({
  message: { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text }] },
});

export function jsonRpc(agentUrl: string, method: string, params: unknown, authorization?: string): Promise<Response> {
  return fetch(`${agentUrl}/a2a/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
}
