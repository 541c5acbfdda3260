import { TaskState, type AgentCard, type Task } from '@a2a-js/sdk';
import { DefaultRequestHandler, InMemoryTaskStore, ServerCallContext, type User } from '@a2a-js/sdk/server';
import { describe, expect, it } from 'vitest';
import { stateName, textOf, userMessage } from '../../sandbox/conversation.ts';
import { buildAgentCard } from '../agent-card.ts';
import { createConversations } from '../conversations.ts';
import { AgentError, type AgentErrorCode } from '../errors.ts';
import { createExecutor, type TaskDeadlines } from '../executor.ts';
import type { Planner, PlanRequest, PlanResult } from '../planner.ts';
import type { Tools, ToolSessionEvents } from '../tools.ts';
import { collect, sendRequest } from './a2a-caller.ts';

/** Tools whose session only hands the executor's callbacks to the fake planner. */
function fakeTools(): Tools & { events: ToolSessionEvents[] } {
  const events: ToolSessionEvents[] = [];
  return {
    events,
    session(_signal, sessionEvents) {
      events.push(sessionEvents);
      return { run: async () => ({ kind: 'response', response: {} }), resume: async () => ({ kind: 'response', response: {} }) };
    },
  };
}

type FakeResult = { kind: 'answer'; text: string } | { kind: 'input_required'; question: string };

function harness(
  plan: (request: PlanRequest, events: ToolSessionEvents) => Promise<FakeResult>,
  maxWaitingTasks?: number,
  deadlines?: TaskDeadlines,
) {
  const tools = fakeTools();
  const planner: Planner = {
    resume: async () => {
      throw new Error('not resumed in these tests');
    },
    async run(request): Promise<PlanResult> {
      const result = await plan(request, tools.events.at(-1)!);
      const said = result.kind === 'answer' ? result.text : result.question;
      const transcript = [
        ...request.history,
        { role: 'user', parts: [{ text: request.userText }] },
        { role: 'model', parts: [{ text: said }] },
      ];
      return { ...result, transcript };
    },
  };
  const card: AgentCard = buildAgentCard({ url: 'http://127.0.0.1:1', tokenUrl: 'http://127.0.0.1:2/oauth/token' });
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), createExecutor({ planner, tools, conversations: createConversations(), maxWaitingTasks, ...(deadlines ? { deadlines } : {}) }));
  const user: User = { isAuthenticated: true, userName: 'caller@clients' };
  const context = () => new ServerCallContext({ user, requestedVersion: '1.0' });
  /** Streams one user message through the request handler and collects the run. */
  const stream = (text: string, ids: { contextId?: string; taskId?: string } = {}, ctx = context()) =>
    collect(handler.sendMessageStream(sendRequest(userMessage(text, ids)), ctx));
  return { handler, context, stream };
}

const pending = (events: ToolSessionEvents) =>
  events.onConsentPending({
    employee: 'jdoe@staff0.com',
    employeeId: 'auth0|jdoe',
    bindingMessage: 'Approve sharing your employment details with an external party.',
    expiresAt: new Date('2030-01-01T00:00:00.000Z'),
  });

describe('executor outcomes', () => {
  it('streams task, WORKING, AUTH_REQUIRED, WORKING, artifact, COMPLETED for an approved check', async () => {
    const { stream } = harness(async (_request, events) => {
      pending(events);
      events.onConsentSettled();
      return { kind: 'answer', text: 'Yes, John Doe is an active employee of Staff0.' };
    });
    const run = await stream('Does jdoe@staff0.com work at Staff0?');
    expect(run.events).toEqual(['task', 'WORKING', 'AUTH_REQUIRED', 'WORKING', 'artifact', 'COMPLETED']);
    expect(run.artifactText).toBe('Yes, John Doe is an active employee of Staff0.');
  });

  it('names the binding message, the employee and the expiry in the AUTH_REQUIRED status', async () => {
    let release: () => void = () => undefined;
    const { handler, context } = harness(async (_request, events) => {
      pending(events);
      await new Promise<void>((resolve) => (release = resolve));
      return { kind: 'answer', text: 'Yes.' };
    });
    const task = (await handler.sendMessage(sendRequest(userMessage('Does jdoe@staff0.com work here?')), context())) as Task;
    expect(task.status?.state).toBe(TaskState.TASK_STATE_AUTH_REQUIRED);
    expect(textOf(task.status?.message?.parts)).toBe(
      'Waiting for jdoe@staff0.com to approve "Approve sharing your employment details with an external party." on their phone (Guardian push notification). ' +
        'The request expires at 2030-01-01T00:00:00Z.',
    );
    release();
  });

  const cases: [AgentErrorCode, TaskState, string][] = [
    ['access_denied', TaskState.TASK_STATE_REJECTED, 'The employee denied the request.'],
    ['expired_token', TaskState.TASK_STATE_FAILED, 'The approval request timed out before the employee answered.'],
    [
      'not_enrolled',
      TaskState.TASK_STATE_FAILED,
      'The employee is not enrolled for push notifications, so their approval cannot be requested.',
    ],
    ['backend_error', TaskState.TASK_STATE_FAILED, 'The HR API could not be reached.'],
  ];
  for (const [code, state, text] of cases) {
    it(`ends in ${TaskState[state]} for ${code}`, async () => {
      const { stream } = harness(async (_request, events) => {
        pending(events);
        const message =
          code === 'backend_error'
            ? 'The HR API could not be reached'
            : code === 'expired_token'
              ? 'The approval request timed out before the employee answered'
              : 'ignored';
        throw new AgentError(code, message);
      });
      const run = await stream('Does jdoe@staff0.com work at Staff0?');
      expect(run.events).toEqual(['task', 'WORKING', 'AUTH_REQUIRED', stateName(state)]);
      expect({ state: run.finalState, text: run.finalText }).toEqual({ state: stateName(state), text });
    });
  }

  it('ends FAILED by its watchdog, saying why, when work before consent outlives its deadline', async () => {
    let aborted: AbortSignal | undefined;
    const { stream } = harness(
      (request) => {
        aborted = request.signal;
        return new Promise(() => undefined); // a step that ignores every deadline of its own
      },
      undefined,
      { beforeConsentMs: 200, afterConsentExpiryMs: 60_000 },
    );
    const run = await stream('Does jdoe@staff0.com work at Staff0?');
    expect(run.events).toEqual(['task', 'WORKING', 'FAILED']);
    expect(run.finalText).toBe("The request did not reach the employee's approval within 0.2 s, so it was stopped.");
    expect(aborted?.aborted).toBe(true);
  });

  it('ends FAILED by its watchdog when a pending consent is not settled past its expiry', async () => {
    const { stream } = harness(
      (_request, events) => {
        events.onConsentPending({
          employee: 'jdoe@staff0.com',
          employeeId: 'auth0|jdoe',
          bindingMessage: 'Approve sharing your employment details with an external party.',
          expiresAt: new Date(Date.now() + 100),
        });
        return new Promise(() => undefined);
      },
      undefined,
      { beforeConsentMs: 60_000, afterConsentExpiryMs: 100 },
    );
    const run = await stream('Does jdoe@staff0.com work at Staff0?');
    expect(run.events).toEqual(['task', 'WORKING', 'AUTH_REQUIRED', 'FAILED']);
    expect(run.finalText).toBe("The request did not finish within 0.1 s of the approval request's expiry, so it was stopped.");
  });

  it('fails with a safe message, not the raw error, when something unexpected throws', async () => {
    const { stream } = harness(async () => {
      throw new Error('secret=hunter2 at /internal/path');
    });
    const run = await stream('Does jdoe@staff0.com work at Staff0?');
    expect({ state: run.finalState, text: run.finalText }).toEqual({ state: 'FAILED', text: 'The request failed.' });
  });

  it('asks for input, then continues the same context with the earlier turns', async () => {
    const seen: PlanRequest[] = [];
    const { stream } = harness(async (planRequest): Promise<FakeResult> => {
      seen.push(planRequest);
      return seen.length === 1
        ? { kind: 'input_required', question: 'Which employee? Please give a work email or employee id.' }
        : { kind: 'answer', text: 'Yes, John Doe is an active employee of Staff0.' };
    });
    const first = await stream('Does John work at Staff0?');
    expect(first.events).toEqual(['task', 'WORKING', 'INPUT_REQUIRED']);
    const second = await stream('jdoe@staff0.com', { contextId: first.contextId, taskId: first.taskId });
    expect(second.events).toEqual(['task', 'WORKING', 'artifact', 'COMPLETED']);
    expect(second.taskId).toBe(first.taskId);
    expect(seen[1]?.history).toEqual([
      { role: 'user', parts: [{ text: 'Does John work at Staff0?' }] },
      { role: 'model', parts: [{ text: 'Which employee? Please give a work email or employee id.' }] },
    ]);
    expect(seen[1]?.userText).toBe('jdoe@staff0.com');
  });

  it('does not share one caller context with another caller', async () => {
    const seen: PlanRequest[] = [];
    const { stream } = harness(async (planRequest) => {
      seen.push(planRequest);
      return { kind: 'input_required', question: 'Which employee?' };
    });
    const as = (userName: string) => new ServerCallContext({ user: { isAuthenticated: true, userName }, requestedVersion: '1.0' });
    const first = await stream('Does John work here?', { contextId: 'shared-context' }, as('alice@clients'));
    expect(first.contextId).toBe('shared-context');
    await stream('jdoe@staff0.com', { contextId: 'shared-context' }, as('mallory@clients'));
    expect(seen[1]?.history).toEqual([]);
  });

  it('cancels a pending check: CANCELED at once, the planner signal aborted, nothing published after', async () => {
    let signal: AbortSignal | undefined;
    const { handler, context } = harness(async (planRequest, events) => {
      signal = planRequest.signal;
      pending(events);
      await new Promise((_resolve, reject) => planRequest.signal.addEventListener('abort', () => reject(new AgentError('canceled', 'x'))));
      return { kind: 'answer', text: 'never' };
    });
    const ctx = context();
    const task = (await handler.sendMessage(sendRequest(userMessage('Does jdoe@staff0.com work at Staff0?')), ctx)) as Task;
    expect(task.status?.state).toBe(TaskState.TASK_STATE_AUTH_REQUIRED);
    const canceled = await handler.cancelTask({ id: task.id, tenant: '', metadata: undefined }, ctx);
    expect(canceled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    expect(signal?.aborted).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await handler.getTask({ id: task.id, tenant: '' }, ctx)).status?.state).toBe(TaskState.TASK_STATE_CANCELED);
  });

  it('cancels a task waiting for input, even one the executor no longer tracks', async () => {
    const { handler, context, stream } = harness(async () => ({ kind: 'input_required', question: 'Which employee?' }), 0);
    const ctx = context();
    const waiting = await stream('Does John work here?', {}, ctx);
    expect(waiting.finalState).toBe('INPUT_REQUIRED');
    const canceled = await handler.cancelTask({ id: waiting.taskId, tenant: '', metadata: undefined }, ctx);
    expect(canceled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    expect(canceled.contextId).toBe(waiting.contextId);
  });
});
