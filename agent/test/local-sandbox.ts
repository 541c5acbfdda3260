import type { StreamResponse } from '@a2a-js/sdk';
import type { AgentConnection } from '../../sandbox/agent-client.ts';
import { userMessage, type TaskStateName } from '../../sandbox/conversation.ts';
import { startLocalStack, type ConsentDecision, type LocalStack, type LocalStackOptions } from '../../sandbox/local-stack.ts';
import { sendRequest } from './a2a-caller.ts';

/**
 * The shared local stack (tenant, HR API, mock-gemini, agent) with the A2A
 * Client already connected, as the agent's end-to-end tests use it.
 */

export interface LocalSandbox extends LocalStack {
  caller: AgentConnection;
}

export async function startLocalSandbox(options: LocalStackOptions = {}): Promise<LocalSandbox> {
  const stack = await startLocalStack({
    ...options,
    // Many checks of the same employees per file: no rate limit, a one-second interval.
    tenantSettings: { cibaRateLimitPerUserPerMinute: 0, cibaInterval: 1, ...options.tenantSettings },
  });
  return { ...stack, caller: await stack.connect() };
}

export const question = (email: string) => `Does the person with email ${email} work at Staff0?`;

/** Streams `text` from the A2A Client, optionally continuing a context or task. */
export function ask(sandbox: LocalSandbox, text: string, ids: { contextId?: string; taskId?: string } = {}): AsyncIterable<StreamResponse> {
  return sandbox.caller.client.sendMessageStream(sendRequest(userMessage(text, ids)));
}

/** An employee who answers as soon as the agent waits for them. */
export const employee =
  (sandbox: LocalSandbox, userId: string, decision: ConsentDecision) =>
  async (state: TaskStateName): Promise<void> => {
    if (state !== 'AUTH_REQUIRED') return;
    const request = await sandbox.pendingRequestFor(userId);
    await sandbox.decide(request.id, decision);
  };
