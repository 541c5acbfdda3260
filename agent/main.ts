import { agentIdentity } from '../sandbox/config.ts';
import { runService } from '../sandbox/service-main.ts';
import { createAgent } from './server.ts';

/** Starts the Staff0 HR Agent from the environment (see sandbox/config.ts). */

await runService(async (config) => {
  const { identity } = config;
  const agent = createAgent({
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
    webhooks: config.security.webhooks,
    allowedHosts: config.security.allowedHosts,
    clockToleranceSeconds: config.security.clockToleranceSeconds,
  });
  const url = await agent.listen(config.ports.agent, config.host);
  const llm = config.gemini.mode === 'mock' ? 'mock-gemini' : `Gemini ${config.gemini.model}`;
  return {
    banner: `Staff0 HR Agent listening on ${url} (issuer ${identity.issuer}, CIBA ${config.ciba.deliveryMode} delivery, ${llm})`,
    close: () => agent.close(),
  };
});
