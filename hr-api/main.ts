import { runService } from '../sandbox/service-main.ts';
import { createHrApi } from './server.ts';

await runService(async (config, telemetry) => {
  const hrApi = createHrApi({
    telemetry,
    issuer: config.identity.issuer,
    audience: config.identity.apiAudience,
    publicUrl: config.urls.hrApi,
    allowedHosts: config.security.allowedHosts,
    clockToleranceSeconds: config.security.clockToleranceSeconds,
    ...(config.hrApi.employeesFile === undefined ? {} : { employeesFile: config.hrApi.employeesFile }),
  });
  const url = await hrApi.listen(config.ports.hrApi, config.host);
  return {
    banner: `Staff0 HR API listening on ${url} (issuer ${config.identity.issuer}, audience ${config.identity.apiAudience})`,
    close: () => hrApi.close(),
  };
}, { service: 'hr-api' });
