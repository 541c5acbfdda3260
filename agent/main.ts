import { agentIdentity } from '../sandbox/config.ts';
import { runService } from '../sandbox/service-main.ts';
import { databaseLocation, openDatabase } from '../sandbox/storage/database.ts';
import { createAgent } from './server.ts';

/** Starts the Staff0 HR Agent from the environment (see sandbox/config.ts). */

await runService(async (config, telemetry) => {
  const { identity } = config;
  // Opened once the agent listens (PGlite's first start takes seconds; a taken port must not leave a half-made
  // folder); requests needing it wait for it.
  // AGENT_STATE=memory keeps everything in this process only, as before the database (and as the load figures compare).
  const durable = config.storage.agentState === 'database';
  const opening = new AbortController();
  const warn = telemetry.logger ? (line: string) => telemetry.logger?.warn(line) : undefined;
  let listening!: () => void;
  const database = durable
    ? new Promise<void>((resolve) => (listening = resolve)).then(() =>
        openDatabase(databaseLocation(config, 'agent'), { signal: opening.signal, ...(warn ? { log: warn } : {}) }),
      )
    : undefined;
  if (!durable) listening = () => undefined;
  database?.catch((error: unknown) => {
    if (opening.signal.aborted) return;
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
  const agent = createAgent({
    telemetry,
    ...(warn ? { log: warn } : {}),
    ...(database ? { database } : {}),
    // Port 0 means "any free port": the card then advertises the bound one.
    ...(config.ports.agent === 0 ? {} : { publicUrl: config.urls.agent }),
    identity: agentIdentity(config),
    hrApiUrl: config.urls.hrApi,
    gemini: {
      apiKey: config.gemini.apiKey,
      model: config.gemini.model,
      ...(config.gemini.baseUrl ? { baseUrl: config.gemini.baseUrl } : {}),
    },
    ciba: { deliveryMode: config.ciba.deliveryMode, requestedExpiry: config.ciba.requestedExpiry },
    allowInsecureHttp: identity.issuer.startsWith('http://'),
    calls: config.agent.calls,
    retention: config.agent.retention,
    maxActiveTasks: config.agent.maxActiveTasks,
    webhooks: { ...config.security.webhooks, ...(warn ? { log: warn } : {}) },
    allowedHosts: config.security.allowedHosts,
    clockToleranceSeconds: config.security.clockToleranceSeconds,
  });
  const url = await agent.listen(config.ports.agent, config.host);
  listening();
  const llm = config.gemini.mode === 'mock' ? 'mock-gemini' : `Gemini ${config.gemini.model}`;
  return {
    banner: `Staff0 HR Agent listening on ${url} (issuer ${identity.issuer}, CIBA ${config.ciba.deliveryMode} delivery, ${llm})`,
    close: async () => {
      // Stopped while the database still opens: no need to wait seconds for PGlite (an open one is unaffected).
      opening.abort();
      await agent.close();
      await database?.then((opened) => opened.close(), () => {});
    },
  };
}, { service: 'hr-agent' });
