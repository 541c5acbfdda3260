import { ConfigError, loadConfig } from '../sandbox/config.ts';
import { createAgent } from './server.ts';

/** Starts the Staff0 HR Agent from the environment (see sandbox/config.ts). */

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}

const { identity } = config;
const agent = createAgent({
  // Port 0 means "any free port": the card then advertises the bound one.
  ...(config.ports.agent === 0 ? {} : { publicUrl: config.urls.agent }),
  identity: {
    issuer: identity.issuer,
    agentAudience: identity.agentAudience,
    apiAudience: identity.apiAudience,
    managementAudience: identity.managementAudience,
    client: identity.hrAgentClient,
  },
  hrApiUrl: config.urls.hrApi,
  gemini: {
    apiKey: config.gemini.apiKey,
    model: config.gemini.model,
    ...(config.gemini.baseUrl ? { baseUrl: config.gemini.baseUrl } : {}),
  },
  ciba: { deliveryMode: config.ciba.deliveryMode, requestedExpiry: config.ciba.requestedExpiry },
  allowInsecureHttp: identity.issuer.startsWith('http://'),
});

const url = await agent.listen(config.ports.agent, config.host);
console.log(
  `Staff0 HR Agent listening on ${url} (issuer ${identity.issuer}, CIBA ${config.ciba.deliveryMode} delivery, ${config.gemini.mode === 'mock' ? 'mock-gemini' : `Gemini ${config.gemini.model}`})`,
);

const stop = () => {
  agent.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
