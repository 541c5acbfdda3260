import { existsSync, readFileSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import * as oidc from 'openid-client';
import { AgentCardError, connectToAgent, IdentityUnreachableError, type AgentConnection } from './agent-client.ts';
import { loadConfigOrReport, namesServiceLocations, type SandboxConfig } from './config.ts';
import { readRunFile } from './run-file.ts';
import { jsonOutput, textOutput, type Output } from './client-output.ts';
import { runTurn, type TaskStateName, type TurnResult } from './conversation.ts';

/**
 * `npm run client`: the A2A caller of the original sample, as a command.
 * Exit codes are part of its interface (see README, "Client exit codes").
 */
export const EXIT = {
  completed: 0,
  error: 1,
  usage: 2,
  inputRequired: 3,
  rejected: 4,
  failed: 5,
  canceled: 6,
  unauthorized: 7,
} as const;

const EXIT_BY_STATE: Partial<Record<TaskStateName, number>> = {
  COMPLETED: EXIT.completed,
  INPUT_REQUIRED: EXIT.inputRequired,
  REJECTED: EXIT.rejected,
  FAILED: EXIT.failed,
  CANCELED: EXIT.canceled,
};

const USAGE = `Usage: npm run client -- [--json] ["question"]

Asks the Staff0 HR Agent over A2A with the A2A Client's credentials.
With a question it answers once; without one it opens a prompt.

  --json   print one JSON object per event (and a final "result") instead of text
  --help   show this help`;

/** Turns what can go wrong before or around a turn into a message and an exit code. */
function classify(error: unknown, agentUrl: string): { message: string; code: string; exit: number } {
  if (error instanceof AgentCardError) return { message: error.message, code: error.code, exit: EXIT.unauthorized };
  const unreachableBackend = causeOf(error, IdentityUnreachableError);
  if (unreachableBackend) {
    return {
      message: `${unreachableBackend.message}: the HR Agent answered, but the A2A Client could not get its token. Is the identity backend (the local tenant of \`npm run sandbox\`, or your Auth0 tenant) up?`,
      code: unreachableBackend.code,
      exit: EXIT.error,
    };
  }
  if (error instanceof oidc.ResponseBodyError) {
    return {
      message: `The identity backend refused the A2A Client's token request: ${error.error}${error.error_description ? ` (${error.error_description})` : ''}`,
      code: error.error,
      exit: EXIT.unauthorized,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/\b(401|403)\b/.test(message)) {
    return { message: `The HR Agent refused the call: ${message}`, code: 'unauthorized', exit: EXIT.unauthorized };
  }
  const cause = error instanceof Error ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  if (cause?.code === 'ECONNREFUSED' || /ECONNREFUSED|fetch failed/.test(message)) {
    return {
      message: `Could not reach the HR Agent at ${agentUrl}. Is \`npm run sandbox\` running?`,
      code: 'unreachable',
      exit: EXIT.error,
    };
  }
  return { message, code: 'error', exit: EXIT.error };
}

/** The first error of `type` in `error`'s cause chain (the A2A client wraps what the fetch layer throws). */
function causeOf<T extends Error>(error: unknown, type: new (...args: never[]) => T): T | undefined {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth += 1) {
    if (current instanceof type) return current;
  }
  return undefined;
}

/**
 * Where to call: where the environment says, or, when it names neither the agent nor the
 * identity backend, where the running `npm run sandbox` says it serves (its run file), so
 * the banner's command works as printed whatever ports or HTTPS the sandbox was started with.
 */
async function whereToCall(config: SandboxConfig): Promise<{ agentUrl: string; issuer: string; ca: string | undefined }> {
  const local = config.identity.backend === 'local';
  const running = local && !namesServiceLocations() ? readRunFile(config.storage.stateDir) : undefined;
  // An HTTPS local tenant's certificate comes from the state folder's CA, which this process may not trust yet.
  // (local-ca.ts loads an X.509 library: only imported when needed.)
  const caPath =
    running?.backend === 'local'
      ? running.caCertPath
      : local && config.tenant.https
        ? (await import('./local-ca.ts')).localCaCertPath(config.storage.stateDir)
        : undefined;
  const ca = caPath !== undefined && existsSync(caPath) ? readFileSync(caPath, 'utf8') : undefined;
  if (running?.backend === 'local') return { agentUrl: running.agentUrl, issuer: running.issuer, ca };
  return { agentUrl: config.urls.agent, issuer: config.identity.issuer, ca };
}

/** A broken stream while the task is pending is followed again for this long before the client gives up. */
const RECONNECT_FOR_MS = 120_000;

/** Asks for the next line at the prompt; resolves to '' once input ends. */
type LineReader = (query: string) => Promise<string>;

/**
 * Lines typed while a turn runs are kept for the next prompt, as a shell keeps
 * type-ahead; `question()` alone would drop a line that arrives between two prompts.
 */
function typeAhead(prompt: Interface): LineReader {
  const queued: string[] = [];
  let waiting: ((line: string) => void) | undefined;
  let closed = false;
  prompt.on('line', (line) => {
    if (waiting) {
      const deliver = waiting;
      waiting = undefined;
      deliver(line);
    } else {
      queued.push(line);
    }
  });
  prompt.on('close', () => {
    closed = true;
    waiting?.('');
    waiting = undefined;
  });
  return (query) => {
    const next = queued.shift();
    if (next !== undefined) return Promise.resolve(next);
    if (closed) return Promise.resolve('');
    prompt.setPrompt(query);
    prompt.prompt();
    return new Promise((resolve) => (waiting = resolve));
  };
}

async function converse(
  connection: AgentConnection,
  question: string,
  out: Output,
  prompt: LineReader | undefined,
  signal: AbortSignal,
  ids: { contextId?: string } = {},
): Promise<TurnResult> {
  const reconnect = {
    forMs: RECONNECT_FOR_MS,
    onReconnect: (attempt: number, reason: string) =>
      out.notice(`Lost the stream from the HR Agent (${reason}); following the task again (attempt ${attempt})…`),
  };
  let result = await runTurn(connection.client, question, ids, { signal, onEvent: (e) => out.event(e), reconnect });
  // INPUT_REQUIRED keeps the same task and context going with the caller's reply (A2A §6.3).
  while (result.finalState === 'INPUT_REQUIRED' && prompt) {
    const reply = (await prompt('> ')).trim();
    if (reply === '') break;
    result = await runTurn(
      connection.client,
      reply,
      { contextId: result.contextId, taskId: result.taskId },
      { signal, onEvent: (e) => out.event(e), reconnect },
    );
  }
  out.result(result);
  return result;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
      allowPositionals: true,
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return EXIT.completed;
  }
  const out = parsed.values.json
    ? jsonOutput(process.stdout, process.stderr)
    : textOutput({ stdout: process.stdout, stderr: process.stderr });
  const config = loadConfigOrReport((message) => out.error(message, 'invalid_config'));
  if (!config) return EXIT.usage;

  const { agentUrl, issuer, ca } = await whereToCall(config);
  const question = parsed.positionals.join(' ').trim();
  const interactive = process.stdin.isTTY === true && !parsed.values.json;
  const prompt = question === '' || interactive ? createInterface({ input: process.stdin, output: process.stdout, terminal: interactive }) : undefined;

  // Ctrl-C while a task is pending cancels it at the agent rather than leaving it waiting for consent.
  const abort = new AbortController();
  let current: { taskId?: string } = {};
  let connection: AgentConnection | undefined;
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(EXIT.canceled);
    abort.abort();
    const taskId = current.taskId;
    if (connection && taskId) {
      connection.client
        .cancelTask({ tenant: '', id: taskId, metadata: undefined })
        .then(
          () => out.error('Canceled the pending task.', 'canceled'),
          () => undefined,
        )
        .finally(() => process.exit(EXIT.canceled));
    } else {
      process.exit(EXIT.canceled);
    }
  };
  process.on('SIGINT', onSigint);
  prompt?.on('SIGINT', onSigint);
  const nextLine = prompt ? typeAhead(prompt) : undefined;

  const track: Output = {
    ...out,
    event(event) {
      if (event.kind === 'state') current = { taskId: event.taskId };
      out.event(event);
    },
  };

  try {
    connection = await connectToAgent({
      agentUrl,
      issuer,
      audience: config.identity.agentAudience,
      credentials: config.identity.a2aClient,
      ...(ca === undefined ? {} : { ca }),
    });
    if (question !== '') {
      const result = await converse(connection, question, track, interactive ? nextLine : undefined, abort.signal);
      if (result.finalState !== 'COMPLETED') {
        out.error(
          result.finalState === 'INPUT_REQUIRED'
            ? `The agent needs more input: ${result.answer}`
            : `The task ended ${result.finalState}: ${result.answer}`,
          result.finalState.toLowerCase(),
        );
      }
      return EXIT_BY_STATE[result.finalState] ?? EXIT.error;
    }
    if (!parsed.values.json) console.log(`Connected to ${connection.card.name}. Ask a question (empty line to quit).`);
    let contextId: string | undefined;
    for (;;) {
      const line = (await nextLine!('> ')).trim();
      if (line === '' || line === 'exit' || line === 'quit') return EXIT.completed;
      const result = await converse(connection, line, track, nextLine, abort.signal, contextId ? { contextId } : {});
      contextId = result.contextId;
    }
  } catch (error) {
    if (abort.signal.aborted) return EXIT.canceled;
    const { message, code, exit } = classify(error, agentUrl);
    out.error(message, code);
    return exit;
  } finally {
    prompt?.close();
    process.off('SIGINT', onSigint);
  }
}

process.exitCode = await main(process.argv.slice(2));
