import { TaskState } from '@a2a-js/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { ServerCallContext } from '@a2a-js/sdk/server';
import { connectToAgent } from '../../sandbox/agent-client.ts';
import { LOCAL_TENANT_DEFAULTS } from '../../sandbox/config.ts';
import { runTurn, userMessage } from '../../sandbox/conversation.ts';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../sandbox/local-stack.ts';
import { createTaskStore } from '../task-store.ts';
import { sendRequest } from './a2a-caller.ts';

/**
 * The agent's own limits: past its admission limit a new message is refused
 * at once with 503 and Retry-After (and the sandbox's client retries it);
 * finished tasks are forgotten after their retention, unfinished ones never.
 */

const LIST_ALL = { tenant: '', contextId: '', status: TaskState.TASK_STATE_UNSPECIFIED, pageToken: '', statusTimestampAfter: undefined };

let stack: LocalStack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function start(agent: LocalStackOptions['agent']): Promise<LocalStack> {
  stack = await startLocalStack({ tenantSettings: { cibaRateLimitPerUserPerMinute: 0, cibaInterval: 1 }, agent });
  return stack;
}

async function tokenFor(stack: LocalStack): Promise<string> {
  return (await stack.connect()).accessToken();
}

function rawSend(stack: LocalStack, token: string, text: string): Promise<Response> {
  return fetch(new URL('a2a/jsonrpc', `${stack.agentUrl}/`), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: sendRequest(userMessage(text)) }),
  });
}

describe('admission limit', () => {
  it('answers 503 with Retry-After to a new message past the limit, while reads still pass', async () => {
    const local = await start({ maxActiveTasks: 1 });
    const { client } = await local.connect();
    const first = runTurn(client, 'Does jdoe@staff0.com work at Staff0?');
    const pending = await local.pendingRequestFor('auth0|jdoe');
    const token = await tokenFor(local);

    const refused = await rawSend(local, token, 'Does jsmith@staff0.com work at Staff0?');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ error: 'overloaded' });

    const tasks = await client.listTasks(LIST_ALL);
    expect(tasks.tasks).toHaveLength(1);

    await local.decide(pending.id, 'approve');
    expect((await first).finalState).toBe('COMPLETED');
  });

  it("lets the sandbox's client retry a refused message until there is room", async () => {
    const local = await start({ maxActiveTasks: 1 });
    let refusals = 0;
    const counting: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (response.status === 503) refusals += 1;
      return response;
    };
    const { client } = await connectToAgent({
      agentUrl: local.agentUrl,
      issuer: local.issuer,
      audience: LOCAL_TENANT_DEFAULTS.agentAudience,
      credentials: LOCAL_TENANT_DEFAULTS.a2aClient,
      fetch: counting,
    });
    const first = runTurn(client, 'Does jdoe@staff0.com work at Staff0?');
    const firstPending = await local.pendingRequestFor('auth0|jdoe');
    const second = runTurn(client, 'Does jsmith@staff0.com work at Staff0?');
    // The second is refused (and retried) while the first holds the only place.
    await until(() => refusals > 0);
    expect(local.tenant.requests.list({ userId: 'auth0|jsmith' })).toHaveLength(0);
    await local.decide(firstPending.id, 'approve');
    expect((await first).finalState).toBe('COMPLETED');
    const secondPending = await local.pendingRequestFor('auth0|jsmith');
    await local.decide(secondPending.id, 'approve');
    expect((await second).finalState).toBe('COMPLETED');
  });
});

async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('task retention', () => {
  it('forgets finished tasks beyond the retention count, oldest first, and keeps pending ones', async () => {
    const local = await start({ retention: { maxAgeMs: 3_600_000, maxFinished: 2 } });
    const { client } = await local.connect();
    const finished: string[] = [];
    for (const email of ['nobody1@staff0.com', 'nobody2@staff0.com', 'nobody3@staff0.com']) {
      const turn = await runTurn(client, `Does ${email} work at Staff0?`);
      expect(turn.finalState).toBe('COMPLETED');
      finished.push(turn.taskId!);
    }
    const open = runTurn(client, 'Does jdoe@staff0.com work at Staff0?');
    const pending = await local.pendingRequestFor('auth0|jdoe');

    const listed = await client.listTasks(LIST_ALL);
    const ids = listed.tasks.map((task) => task.id);
    expect(ids).not.toContain(finished[0]);
    expect(ids).toEqual(expect.arrayContaining([finished[1], finished[2]]));
    expect(ids).toHaveLength(3);
    await expect(client.getTask({ tenant: '', id: finished[0]! })).rejects.toThrow(/not found/i);

    await local.decide(pending.id, 'approve');
    expect((await open).finalState).toBe('COMPLETED');
  });

  it('forgets finished tasks once they are older than the retention period, never unfinished ones', async () => {
    let now = 0;
    const store = createTaskStore({ maxAgeMs: 1000, maxFinished: 100 }, () => now);
    const context = new ServerCallContext({ user: { isAuthenticated: true, userName: 'caller@clients' } });
    const task = (id: string, state: TaskState) => ({
      id,
      contextId: 'c',
      status: { state, message: undefined, timestamp: new Date(now).toISOString() },
      artifacts: [],
      history: [],
      metadata: undefined,
    });
    await store.save(task('done', TaskState.TASK_STATE_COMPLETED), context);
    await store.save(task('waiting', TaskState.TASK_STATE_AUTH_REQUIRED), context);
    now = 999;
    store.sweep();
    expect(await store.load('done', context)).toBeDefined();
    now = 1001;
    store.sweep();
    expect(await store.load('done', context)).toBeUndefined();
    now = 10_000_000;
    store.sweep();
    expect(await store.load('waiting', context)).toBeDefined();
    expect(store.size()).toBe(1);
    store.close();
  });
});
