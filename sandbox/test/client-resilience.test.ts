import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectToAgent } from '../agent-client.ts';
import { LOCAL_TENANT_DEFAULTS } from '../config.ts';
import { runTurn } from '../conversation.ts';
import { startLocalStack, type LocalStack } from '../local-stack.ts';
import { runCommand } from './processes.ts';

/**
 * The caller's side of failures: a stream that breaks while consent is
 * pending is followed again to the task's end, and `npm run client` says
 * which service it could not reach.
 */

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({ tenantSettings: { cibaRateLimitPerUserPerMinute: 0, cibaInterval: 1 } });
});

afterAll(async () => {
  await stack?.close();
});

/** A fetch whose first streamed SendStreamingMessage breaks right after AUTH_REQUIRED, as a dropped connection does. */
function fetchThatBreaksTheStream(): { fetch: typeof fetch; broken: () => boolean } {
  let broken = false;
  const breaking: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (broken || typeof init?.body !== 'string' || !init.body.includes('"SendStreamingMessage"') || !response.body) return response;
    broken = true;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const cut = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        controller.enqueue(value);
        if (decoder.decode(value).includes('TASK_STATE_AUTH_REQUIRED')) {
          await reader.cancel();
          controller.error(new TypeError('terminated'));
        }
      },
    });
    return new Response(cut, { status: response.status, headers: response.headers });
  };
  return { fetch: breaking, broken: () => broken };
}

/** The A2A Client's connection to the stack's agent, over `fetchImpl`. */
function connectThrough(fetchImpl: typeof fetch) {
  return connectToAgent({
    agentUrl: stack.agentUrl,
    issuer: stack.issuer,
    audience: LOCAL_TENANT_DEFAULTS.agentAudience,
    credentials: LOCAL_TENANT_DEFAULTS.a2aClient,
    fetch: fetchImpl,
  });
}

describe('a broken stream while consent is pending', () => {
  it('is followed again with SubscribeToTask, and the final state arrives', async () => {
    const { fetch: breaking, broken } = fetchThatBreaksTheStream();
    const { client } = await connectThrough(breaking);
    const reasons: string[] = [];
    let approving: Promise<unknown> | undefined;
    const result = await runTurn(client, 'Does jdoe@staff0.com work at Staff0?', {}, {
      reconnect: {
        forMs: 20_000,
        onReconnect: (_attempt, reason) => {
          reasons.push(reason);
          // The employee answers only once the caller has lost the stream, so the answer must come through the new one.
          approving ??= stack.pendingRequestFor('auth0|jdoe').then((request) => stack.decide(request.id, 'approve'));
        },
      },
    });
    await approving;
    expect(broken()).toBe(true);
    expect(reasons[0]).toMatch(/terminated/);
    expect(result.finalState).toBe('COMPLETED');
    expect(result.answer).toBe('Yes, John Doe is an active employee of Staff0.');
    expect(result.states).toEqual(['SUBMITTED', 'WORKING', 'AUTH_REQUIRED', 'WORKING', 'COMPLETED']);
  });

  it('is thrown as it is when no reconnecting was asked for', async () => {
    const { fetch: breaking } = fetchThatBreaksTheStream();
    const { client } = await connectThrough(breaking);
    await expect(runTurn(client, 'Does jsmith@staff0.com work at Staff0?')).rejects.toThrow(/terminated/);
    const request = await stack.pendingRequestFor('auth0|jsmith');
    await stack.decide(request.id, 'deny');
  });
});

describe('npm run client when the identity backend is down', () => {
  it('says it could not reach the identity backend (not the agent), and exits 1', async () => {
    const agentPort = new URL(stack.agentUrl).port;
    const tenantPort = new URL(stack.issuer).port;
    await stack.tenant.close();
    const run = runCommand(process.execPath, ['--import', 'tsx', 'sandbox/client.ts', 'Does jdoe@staff0.com work at Staff0?'], {
      HR_AGENT_PORT: agentPort,
      TENANT_PORT: tenantPort,
    });
    const { code } = await run.exited;
    expect(code).toBe(1);
    expect(run.stderr()).toContain(`Could not reach the identity backend at http://127.0.0.1:${tenantPort} for a token`);
    expect(run.stderr()).not.toMatch(/Could not reach the HR Agent/);
  });
});
