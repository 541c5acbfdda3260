import { createControlSecret, flowConsoleUrl } from '../exposure.ts';
import { runService } from '../service-main.ts';
import { createFlowConsole } from './server.ts';

await runService(async (config) => {
  // Like the tenant: `npm run sandbox` hands an exposed console the banner's secret; started alone, it makes and shows its own.
  const madeSecret = config.security.exposed && config.security.controlSecret === undefined ? createControlSecret() : undefined;
  const secret = config.security.controlSecret ?? madeSecret;
  const flowConsole = createFlowConsole({
    publicUrl: config.urls.flowConsole,
    allowedHosts: config.security.allowedHosts,
    ...(secret === undefined ? {} : { secret }),
  });
  const url = await flowConsole.listen(config.ports.flowConsole, config.host);
  const page = flowConsoleUrl(url, madeSecret === undefined ? {} : { secret: madeSecret });
  return {
    banner: `Flow console ${page} (receives OTLP/HTTP JSON at ${url}/v1/traces)`,
    close: () => flowConsole.close(),
  };
});
