import concurrently, { Command, type CloseEvent } from 'concurrently';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { repoRoot } from './cache.mjs';
import { loadConfigOrReport, type SandboxConfig } from './config.ts';
import { createControlSecret, exposureWarning, flowConsoleUrl, guardianPageUrl } from './exposure.ts';
import { writeRunFile } from './run-file.ts';
import { assertPortsFree, nodeArgs, PortInUseError, prepareEmbeddedDatabases, serviceEnvironment, servicesFor, waitForHealthy, type ServiceSpec } from './services.ts';

const READY_TIMEOUT_MS = 60_000;

/**
 * The banner's command, runnable as printed: the client finds this sandbox's ports and
 * CA in its run file, and only a state folder other than the default needs saying.
 */
function clientCommand(config: SandboxConfig, question: string): string {
  const command = `npm run client -- "${question}"`;
  const stateDir = config.storage.stateDir;
  if (config.identity.backend !== 'local' || stateDir === resolve(repoRoot, '.sandbox')) return command;
  return `SANDBOX_STATE_DIR=${shellWord(stateDir)} ${command}`;
}

/** `word` as one word for a POSIX shell. */
function shellWord(word: string): string {
  return /^[\w./=-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function banner(config: SandboxConfig, services: ServiceSpec[], startedAt: number, controlSecret: string | undefined): string {
  const { identity, gemini, urls } = config;
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  const lines = [
    '',
    `Headless Agent Auth Sandbox is ready (${services.length} services in ${seconds} s).`,
    '',
    identity.backend === 'local'
      ? `  Identity backend  local tenant        ${identity.issuer}`
      : `  Identity backend  Auth0               ${identity.issuer}`,
  ];
  const secret = controlSecret === undefined ? {} : { secret: controlSecret };
  if (identity.backend === 'local') {
    lines.push(`  Guardian page     (employee's phone)  ${guardianPageUrl(urls.tenant, { userId: 'auth0|jdoe', ...secret })}`);
    // CIBA_REQUESTED_EXPIRY above 300 s sends the request by email: it lands in the user's mailbox.
    lines.push(`  Mailbox           (employee's email)  ${guardianPageUrl(urls.tenant, { userId: 'auth0|jdoe', page: 'mailbox', ...secret })}`);
    if (controlSecret !== undefined) lines.push(`  Control API       exposed: send       X-Control-Secret: ${controlSecret}`);
  } else {
    lines.push('  Guardian          the employee approves in the Auth0 Guardian app');
  }
  lines.push(`  Flow console      (each task's hops)  ${flowConsoleUrl(urls.flowConsole, secret)}`);
  lines.push(
    gemini.mode === 'mock'
      ? `  LLM               mock-gemini         ${urls.mockGemini}  (set GOOGLE_API_KEY for real Gemini)`
      : `  LLM               Gemini              ${gemini.model}`,
    `  HR API                                ${urls.hrApi}`,
    `  HR Agent card                         ${urls.agent}/.well-known/agent-card.json`,
    '',
    'Try, in another terminal:',
    `  ${clientCommand(config, 'Does John Doe with email jdoe@staff0.com work at Staff0?')}`,
    identity.backend === 'local'
      ? '…then approve on the Guardian page above.'
      : "…then approve the push on the employee's phone.",
    '',
    'Press Ctrl-C to stop.',
    '',
  );
  return lines.join('\n');
}

/**
 * `npm run sandbox` (through sandbox/launch.mjs): starts every service from the build in `buildDir`
 * and resolves to the exit code once they have all stopped.
 */
export async function runSandbox(buildDir: string): Promise<number> {
  const startedAt = performance.now();
  const config = loadConfigOrReport();
  if (!config) return 2;
  const services = servicesFor(config);
  const warning = exposureWarning(config);
  if (warning !== undefined) console.warn(`${warning}\n`);
  // Exposed, the control API approves consents and the flow console shows who consented to what,
  // to anyone who can reach them: only the banner's reader gets this.
  const controlSecret = config.security.controlSecret ?? (config.security.exposed ? createControlSecret() : undefined);
  try {
    await assertPortsFree(services, config.host);
  } catch (error) {
    if (error instanceof PortInUseError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }

  // Once per machine: the embedded database's templates, so that no service runs initdb itself.
  const notice = await prepareEmbeddedDatabases(config, buildDir, (line) => console.log(line));
  if (notice !== undefined) console.warn(notice);

  // A local HTTPS tenant: every service that calls it must trust the local CA from its first line. (local-ca.ts
  // loads an X.509 library, about 0.1 s: only imported when needed.)
  const tls = config.identity.backend === 'local' && config.tenant.https ? await (await import('./local-ca.ts')).ensureLocalTls(config.tenant.stateDir) : undefined;
  const ca = tls ? readFileSync(tls.caCertPath, 'utf8') : undefined;

  let stopping = false;
  const run = concurrently(
    services.map((s) => ({
      name: s.name,
      // `exec` drops the shell, so signals and deaths concern the service itself (no orphan holds the logs open).
      command: `${process.platform === 'win32' ? '' : 'exec '}"${process.execPath}" ${nodeArgs(s, buildDir).map(shellWord).join(' ')}`,
      prefixColor: s.color,
      env: {
        ...serviceEnvironment(),
        ...(tls ? { NODE_EXTRA_CA_CERTS: tls.caCertPath } : {}),
        ...(controlSecret === undefined ? {} : { SANDBOX_CONTROL_SECRET: controlSecret }),
        // The services write to concurrently's pipes, not to this terminal: tell them it is one.
        ...(config.logging.colour === 'auto' && process.stdout.isTTY ? { LOG_COLOR: 'true' } : {}),
      },
    })),
    {
      cwd: repoRoot,
      prefix: 'name',
      padPrefix: true,
      killOthersOn: ['failure', 'success'],
      killSignal: 'SIGTERM',
      handleInput: false,
    },
  );
  const firstExit = new Promise<CloseEvent>((resolve) => {
    for (const command of run.commands) command.close.subscribe((event) => resolve(event));
  });
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    console.log(`\nStopping the sandbox (${signal})…`);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const ready = new AbortController();
  const timeout = setTimeout(
    () => ready.abort(new Error(`Services did not become healthy within ${READY_TIMEOUT_MS / 1000} s`)),
    READY_TIMEOUT_MS,
  );
  const outcome = await Promise.race([
    Promise.all(services.map((s) => waitForHealthy(s.healthUrl, ready.signal, ca ? { ca } : {}))).then(() => 'ready' as const),
    firstExit.then((event) => event),
  ]).catch((error: Error) => error);
  clearTimeout(timeout);

  let removeRunFile = () => {};
  if (outcome === 'ready') {
    if (config.identity.backend === 'local') {
      removeRunFile = writeRunFile(config.storage.stateDir, {
        pid: process.pid,
        backend: config.identity.backend,
        agentUrl: config.urls.agent,
        issuer: config.identity.issuer,
        caCertPath: tls?.caCertPath,
      });
      process.once('exit', () => removeRunFile());
    }
    console.log(banner(config, services, startedAt, controlSecret));
    if (warning !== undefined) console.warn(warning.split('\n')[0]);
  } else {
    ready.abort();
    if (!stopping) {
      const reason =
        outcome instanceof Error
          ? outcome.message
          : `The ${services.find((s) => s.name === outcome.command.name)?.label ?? outcome.command.name} exited (code ${outcome.exitCode}) before the sandbox was ready; see its log above.`;
      console.error(`\n${reason}`);
      for (const command of run.commands) if (Command.canKill(command)) command.kill('SIGTERM');
    }
  }

  const exits = await run.result.then(
    (events) => events,
    (events: CloseEvent[]) => events,
  );
  removeRunFile();
  if (stopping) return 0;
  if (outcome === 'ready') {
    const died = exits.find((e) => e.exitCode !== 0) ?? exits[0];
    const label = services.find((s) => s.name === died?.command.name)?.label ?? 'a service';
    console.error(`\nThe ${label} stopped (code ${died?.exitCode}); the sandbox stopped with it.`);
  }
  return 1;
}

