import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { AgentCard, TaskState, type Task } from '@a2a-js/sdk';
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore, type AgentExecutor } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, UserBuilder } from '@a2a-js/sdk/server/express';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, type Client } from '@a2a-js/sdk/client';
import express from 'express';
import { stateName, textOf, userMessage } from '../../sandbox/conversation.ts';
import { baseUrl, closeServer, listenOn } from '../../sandbox/http-listener.ts';
import { startLocalStack, type LocalStack } from '../../sandbox/local-stack.ts';
import { check, figure, type BenchmarkResult, type Check } from './report.ts';
import { median, ratios } from './stats.ts';

/**
 * Agent overhead: the round-trip of a blocking JSON-RPC `SendMessage` to the
 * HR Agent (bearer token, Gemini planner on mock-gemini, a Management API
 * lookup) for a question that needs no consent, against a bare
 * `@a2a-js/sdk` agent whose executor answers at once, behind the same
 * JSON-RPC handler with no auth. One client type, one process, sequential
 * calls, the two agents alternating by rounds.
 */

export interface AgentOverheadOptions {
  rounds: number;
  /** Calls per agent per round. */
  calls: number;
  warmupCalls: number;
  log?: (line: string) => void;
}

export const UNKNOWN_EMAIL_QUESTION = 'Is nobody@staff0.com an active employee of Staff0?';
const UNKNOWN_ANSWER = /^No\b/;
const BARE_ANSWER = 'Answered at once.';

/** Publishes the task, its answer artifact and COMPLETED, as the HR Agent's final events do, and nothing else. */
const answerAtOnce: AgentExecutor = {
  async execute(context, bus) {
    const { taskId, contextId } = context;
    const task: Task = {
      id: taskId,
      contextId,
      status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: new Date().toISOString() },
      artifacts: [],
      history: [context.userMessage],
      metadata: undefined,
    };
    bus.publish(AgentEvent.task(task));
    bus.publish(
      AgentEvent.artifactUpdate({
        taskId,
        contextId,
        artifact: {
          artifactId: randomUUID(),
          name: 'answer',
          description: '',
          parts: [{ content: { $case: 'text', value: BARE_ANSWER }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
          metadata: undefined,
          extensions: [],
        },
        append: false,
        lastChunk: true,
        metadata: undefined,
      }),
    );
    bus.publish(
      AgentEvent.statusUpdate({
        taskId,
        contextId,
        status: { state: TaskState.TASK_STATE_COMPLETED, message: undefined, timestamp: new Date().toISOString() },
        metadata: undefined,
      }),
    );
  },
  async cancelTask() {
    // Nothing runs long enough to cancel.
  },
};

async function startBareAgent(): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  const server = createServer(app);
  const url = baseUrl('http', '127.0.0.1', await listenOn(server, 0, '127.0.0.1'));
  const card: AgentCard = {
    name: 'Bare agent',
    description: 'Answers at once.',
    supportedInterfaces: [{ url: `${url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' }],
    provider: undefined,
    version: '1.0.0',
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain'],
    skills: [],
    signatures: [],
  };
  const requestHandler = new DefaultRequestHandler(card, new InMemoryTaskStore(), answerAtOnce);
  app.use('/.well-known/agent-card.json', agentCardHandler({ agentCardProvider: async () => AgentCard.toJSON(card) as AgentCard }));
  app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler, userBuilder: UserBuilder.noAuthentication }));
  return { url, close: () => closeServer(server) };
}

interface Call {
  ms: number;
  state: string;
  answer: string;
}

async function send(client: Client, text: string): Promise<Call> {
  const startedAt = performance.now();
  const request = {
    tenant: '',
    message: userMessage(text),
    configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: false },
    metadata: undefined,
  };
  const result = await client.sendMessage(request, { signal: AbortSignal.timeout(30_000) });
  const ms = performance.now() - startedAt;
  if (!('status' in result)) return { ms, state: 'MESSAGE', answer: textOf(result.parts) };
  return { ms, state: stateName(result.status?.state), answer: result.artifacts.map((a) => textOf(a.parts)).join('\n') };
}

export async function benchAgentOverhead(options: AgentOverheadOptions): Promise<BenchmarkResult> {
  const log = options.log ?? (() => undefined);
  let stack: LocalStack | undefined;
  let bare: Awaited<ReturnType<typeof startBareAgent>> | undefined;
  const agentRounds: number[] = [];
  const bareRounds: number[] = [];
  let agentRight = 0;
  let bareRight = 0;
  let calls = 0;
  try {
    stack = await startLocalStack();
    const agentClient = (await stack.connect()).client;
    bare = await startBareAgent();
    const factory = new ClientFactory(
      ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { transports: [new JsonRpcTransportFactory()], preferredTransports: ['JSONRPC'] }),
    );
    const bareClient = await factory.createFromUrl(bare.url);
    const clients = { agent: agentClient, bare: bareClient };

    const batch = async (who: keyof typeof clients, count: number) => {
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const call = await send(clients[who], UNKNOWN_EMAIL_QUESTION);
        calls++;
        if (who === 'agent' && call.state === 'COMPLETED' && UNKNOWN_ANSWER.test(call.answer)) agentRight++;
        if (who === 'bare' && call.state === 'COMPLETED' && call.answer === BARE_ANSWER) bareRight++;
        times.push(call.ms);
      }
      return times;
    };
    await batch('agent', options.warmupCalls);
    await batch('bare', options.warmupCalls);
    for (let round = 0; round < options.rounds; round++) {
      const order: (keyof typeof clients)[] = round % 2 === 0 ? ['bare', 'agent'] : ['agent', 'bare'];
      const got: Partial<Record<keyof typeof clients, number>> = {};
      for (const who of order) got[who] = median(await batch(who, options.calls));
      agentRounds.push(got.agent ?? Number.NaN);
      bareRounds.push(got.bare ?? Number.NaN);
      log(`agent round ${round + 1}/${options.rounds}: HR Agent ${got.agent?.toFixed(2)} ms, bare agent ${got.bare?.toFixed(2)} ms (medians)`);
    }
  } finally {
    await bare?.close();
    await stack?.close();
  }
  const perSide = options.warmupCalls + options.rounds * options.calls;
  const checks: Check[] = [
    check('every HR Agent call COMPLETED with a "No"', agentRight === perSide, `${agentRight} of ${perSide}`),
    check('every bare agent call COMPLETED with its answer', bareRight === perSide, `${bareRight} of ${perSide}`),
    check('every call returned', calls === 2 * perSide, `${calls} of ${2 * perSide}`),
  ];
  return {
    id: 'agent-overhead',
    title: 'Agent overhead',
    method:
      `Blocking JSON-RPC SendMessage round-trips, one at a time from the @a2a-js/sdk client: the HR Agent (with its bearer token) asked about ` +
      `an unknown email (two mock-gemini calls and a Management API lookup, no consent) vs a bare SDK agent that publishes its answer at ` +
      `once (same jsonRpcHandler, no auth). ${options.calls} calls per agent per round, median per round; ratio per round.`,
    figures: [
      figure('HR Agent, unknown email, round-trip', 'ms', agentRounds),
      figure('bare @a2a-js/sdk agent, round-trip', 'ms', bareRounds),
      figure('HR Agent ÷ bare', 'x', ratios(agentRounds, bareRounds)),
    ],
    checks,
  };
}
