import { loadConfigOrReport, type SandboxConfig } from './config.ts';
import { createTelemetry, noTelemetry, telemetryOptions, type Telemetry } from './telemetry/setup.ts';

/**
 * The `main` of every service: read the one config, start, say where it
 * listens, and stop cleanly on SIGINT/SIGTERM. A bad variable or a taken port
 * ends the process with a message instead of a stack trace. A service that
 * names itself gets its telemetry (spans to the flow console and any
 * collector, one log line per hop), flushed when it stops.
 */

export interface StartedService {
  /** One line saying where the service listens and what it talks to. */
  banner: string;
  close(): Promise<void>;
}

const CLOSE_DEADLINE_MS = 15_000;

export interface ServiceMainOptions {
  /** The service's name in spans and log lines (`service.name`); without one it is not traced. */
  service?: string;
  /** The config, when the service read it before it loaded its modules; read here otherwise. */
  config?: SandboxConfig;
}

export async function runService(
  start: (config: SandboxConfig, telemetry: Telemetry) => Promise<StartedService>,
  options: ServiceMainOptions = {},
): Promise<void> {
  const config = options.config ?? loadConfigOrReport();
  if (!config) process.exit(2);
  const telemetry = options.service === undefined ? noTelemetry() : createTelemetry(telemetryOptions(config, options.service));
  let service: StartedService;
  try {
    service = await start(config, telemetry);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      const { address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
      console.error(`Cannot listen on ${address ?? config.host}:${port ?? '?'}: ${code === 'EADDRINUSE' ? 'the port is already in use' : 'permission denied'}.`);
      process.exit(1);
    }
    throw error;
  }
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // A close that hangs (a peer that never lets go of a connection) must not keep the process alive.
    setTimeout(() => {
      console.error(`Did not stop within ${CLOSE_DEADLINE_MS / 1000} s; exiting anyway.`);
      process.exit(1);
    }, CLOSE_DEADLINE_MS).unref();
    // The last spans and lines go out after the service stopped making them (bounded, well within the deadline).
    service.close().then(
      () => telemetry.shutdown().then(() => process.exit(0)),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  // Listen for signals before saying we are up: whoever reads the banner may stop us at once. Every signal, not
  // only the first: Ctrl-C reaches the whole terminal group and `npm run sandbox` passes it on again, and a second
  // SIGINT with no listener would kill a service still closing (its deadline above still bounds the stop).
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  console.log(service.banner);
}
