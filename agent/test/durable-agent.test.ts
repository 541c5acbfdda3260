import { createServer, type Server } from 'node:http';
import type { Task } from '@a2a-js/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenLocal, closeServer } from '../../sandbox/http-listener.ts';
import { openDatabase, type Database } from '../../sandbox/storage/database.ts';
import { stateName } from '../../sandbox/conversation.ts';
import { createAgent, type AgentHandle } from '../server.ts';
import { sweepTasks } from '../durable-state.ts';
import { createDatabaseTaskLedger } from '../task-ledger.ts';
import { collect, sendRequest } from './a2a-caller.ts';
import { startBackends, untilState, type Backends } from './durable-backends.ts';
import { waitUntil } from '../../sandbox/test/processes.ts';
import { questionAbout } from '../../scenarios/bench/bench-tenant.ts';
import { userMessage } from '../../sandbox/conversation.ts';

/**
 * The agent's work in the database, in-process (the process-level restarts,
 * SIGKILL included, are in sandbox/test/agent-restart.e2e.test.ts): a stopped
 * agent leaves its pending consents resumable, the next agent on the same
 * database finishes them, and a task that was mid-model-call ends FAILED.
 */

let backends: Backends;
let database: Database;
const agents: AgentHandle[] = [];

beforeAll(async () => {
  backends = await startBackends({ interval: 1, people: 5, group: 'inproc' });
  database = await openDatabase({ kind: 'pglite', dataDir: undefined });
}, 60_000);

afterAll(async () => {
  for (const agent of agents) await agent.close().catch(() => undefined);
  await database?.close();
  await backends?.close();
});

async function startAgent(options: Partial<Parameters<typeof createAgent>[0]> = {}): Promise<{ agent: AgentHandle; url: string }> {
  const agent = createAgent({ ...backends.agentOptions('poll'), database, ...options });
  agents.push(agent);
  return { agent, url: await agent.listen(0, '127.0.0.1') };
}

describe('the HR Agent on a database', () => {
  it('finishes after a restart a check whose consent was pending when the agent stopped', async () => {
    const person = backends.people[0]!;
    const first = await startAgent();
    const client = await backends.connect(first.url);
    const task = (await client.sendMessage(sendRequest(userMessage(questionAbout(person))))) as Task;
    expect(stateName(task.status?.state)).toBe('AUTH_REQUIRED');
    const request = await backends.pendingFor(person.userId);
    await first.agent.close();

    const second = await startAgent();
    const again = await backends.connect(second.url);
    expect(stateName((await again.getTask({ tenant: '', id: task.id })).status?.state)).toBe('AUTH_REQUIRED');
    const stream = collect(again.resubscribeTask({ tenant: '', id: task.id }));
    await backends.decide(request.id, 'approve');
    const run = await stream;
    expect(run.finalState).toBe('COMPLETED');
    expect(run.artifactText).toBe(`Yes, ${person.name} is an active employee of Staff0.`);
    const done = await untilState(again, task.id, 'COMPLETED');
    expect(done.artifacts.length).toBe(1);
    const { rows } = await database.db.selectFrom('consents').selectAll().execute().then((r) => ({ rows: r }));
    expect(rows).toEqual([]);
    await second.agent.close();
  });

  it('ends FAILED "timed out" a consent that expired while no agent was running', async () => {
    const person = backends.people[3]!;
    const options = backends.agentOptions('poll');
    const first = await startAgent({ ciba: { ...options.ciba, requestedExpiry: 2 } });
    const client = await backends.connect(first.url);
    const task = (await client.sendMessage(sendRequest(userMessage(questionAbout(person))))) as Task;
    expect(stateName(task.status?.state)).toBe('AUTH_REQUIRED');
    const request = await backends.pendingFor(person.userId);
    await first.agent.close();
    await waitUntil(async () => {
      const response = await fetch(new URL(`control/requests/${encodeURIComponent(request.id)}`, backends.issuer));
      const view = (await response.json()) as { status?: string };
      return view.status === 'expired' ? true : undefined;
    }, 30_000);

    const second = await startAgent();
    const again = await backends.connect(second.url);
    const failed = await untilState(again, task.id, 'FAILED');
    expect(failed.status?.message?.parts[0]?.content).toMatchObject({
      value: expect.stringMatching(/^The approval request timed out before the employee answered/),
    });
    await second.agent.close();
  });

  it('keeps a conversation in INPUT_REQUIRED across a restart: the reply on the same task is understood', async () => {
    const person = backends.people[2]!;
    const first = await startAgent();
    const client = await backends.connect(first.url);
    const asked = (await client.sendMessage(sendRequest(userMessage('Does my colleague work at Staff0?')))) as Task;
    expect(stateName(asked.status?.state)).toBe('INPUT_REQUIRED');
    await first.agent.close();

    const second = await startAgent();
    const again = await backends.connect(second.url);
    const reply = (await again.sendMessage(
      sendRequest(userMessage(person.email, { taskId: asked.id, contextId: asked.contextId })),
    )) as Task;
    expect(stateName(reply.status?.state)).toBe('AUTH_REQUIRED');
    await backends.decide((await backends.pendingFor(person.userId)).id, 'approve');
    const done = await untilState(again, asked.id, 'COMPLETED');
    expect(done.artifacts[0]?.parts[0]?.content).toMatchObject({ value: `Yes, ${person.name} is an active employee of Staff0.` });
    await second.agent.close();
  });

  it('ends FAILED, saying so, a task that was waiting for the model when the agent stopped', async () => {
    // A model that never answers: the task is mid-model-call when the agent stops.
    const silent: Server = createServer(() => undefined);
    const silentUrl = await listenLocal(silent);
    try {
      const first = await startAgent({ gemini: { apiKey: 'mock-gemini-key', model: 'gemini-2.5-flash', baseUrl: silentUrl } });
      const client = await backends.connect(first.url);
      const task = (await client.sendMessage(
        sendRequest(userMessage(questionAbout(backends.people[1]!)), { returnImmediately: true }),
      )) as Task;
      await untilState(client, task.id, 'WORKING');
      await first.agent.close();

      const second = await startAgent();
      const again = await backends.connect(second.url);
      const failed = await untilState(again, task.id, 'FAILED');
      expect(failed.status?.message?.parts[0]?.content).toMatchObject({ value: expect.stringMatching(/agent restarted while working on this request/) });
      await second.agent.close();
    } finally {
      silent.closeAllConnections();
      await closeServer(silent);
    }
  });

  it('leases a pending consent to one process at a time; a process whose lease was taken over hears of it', async () => {
    const a = createDatabaseTaskLedger(database.db, { ttlMs: 60_000 });
    const b = createDatabaseTaskLedger(database.db, { ttlMs: 60_000 });
    const consent = {
      owner: 'lease-test',
      taskId: 'lease-task',
      contextId: 'lease-context',
      authReqId: 'lease-auth-req',
      deliveryMode: 'poll' as const,
      interval: 5,
      notificationTokenDigest: undefined,
      employeeId: 'auth0|someone',
      employeeLabel: 'someone@staff0.com',
      bindingMessage: 'Approve',
      expiresAt: new Date(Date.now() + 60_000),
      resume: { checkpoint: { contents: [], responses: [], callIndex: 0, round: 0 }, userText: 'q', historyLength: 0 },
    };
    await a.started(consent);
    await a.consentPending(consent);
    expect(await a.renew()).toEqual([]);
    // A's lease is live: B takes nothing.
    expect(await b.claimConsents(10)).toEqual([]);
    // A stalls past its lease: B takes the consent over, and A's next renewal names the task it must drop.
    await database.db.updateTable('consents').set({ lease_expires_at: new Date(Date.now() - 1000) }).where('auth_req_id', '=', 'lease-auth-req').execute();
    const claimed = await b.claimConsents(10);
    expect(claimed.map((c) => c.authReqId)).toEqual(['lease-auth-req']);
    expect(claimed[0]?.resume.userText).toBe('q');
    expect(await b.claimConsents(10)).toEqual([]);
    expect(await a.renew()).toEqual([{ owner: 'lease-test', taskId: 'lease-task' }]);
    expect(await b.renew()).toEqual([]);
    await b.finished(consent);
    expect(await database.db.selectFrom('consents').select('auth_req_id').where('owner', '=', 'lease-test').execute()).toEqual([]);
  });

  it('deletes finished tasks past their retention, oldest first, never unfinished ones', async () => {
    const row = (id: string, state: string, at: number) => ({
      tenant: '',
      owner: 'retention-test',
      id,
      context_id: 'c',
      status_last_updated: at,
      status_state: state,
      status: null,
      artifacts: null,
      history: null,
      metadata: null,
      protocol_version: null,
    });
    const now = Date.now();
    await database.db
      .insertInto('tasks')
      .values([
        row('old-done', 'TASK_STATE_COMPLETED', now - 10_000),
        row('older-done', 'TASK_STATE_FAILED', now - 20_000),
        row('new-done', 'TASK_STATE_COMPLETED', now + 60_000),
        row('old-pending', 'TASK_STATE_AUTH_REQUIRED', now - 50_000),
      ])
      .execute();
    await sweepTasks(database, { maxAgeMs: 15_000, maxFinished: 1_000 }, now);
    const left = async () =>
      (await database.db.selectFrom('tasks').select('id').where('owner', '=', 'retention-test').orderBy('id').execute()).map((r) => r.id);
    expect(await left()).toEqual(['new-done', 'old-done', 'old-pending']);
    await sweepTasks(database, { maxAgeMs: 15_000, maxFinished: 1 }, now);
    expect(await left()).toEqual(['new-done', 'old-pending']);
  });
});
