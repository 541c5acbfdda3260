import { ensureLocalTls } from '../sandbox/local-ca.ts';
import { runService } from '../sandbox/service-main.ts';
import { createTenant } from './tenant.ts';

await runService(async (config) => {
  // Over HTTPS the tenant looks like a real Auth0 domain; Node trusts it through NODE_EXTRA_CA_CERTS.
  const tls = config.tenant.https ? await ensureLocalTls(config.tenant.stateDir) : undefined;
  const tenant = createTenant({
    ...(config.tenant.file === undefined ? {} : { tenantFile: config.tenant.file }),
    keysDir: config.tenant.stateDir,
    // The configured issuer names the configured port; with port 0 the tenant derives it once bound.
    ...(config.identity.backend === 'local' && config.ports.tenant !== 0 ? { issuer: config.identity.issuer } : {}),
    vars: { HR_AGENT_URL: config.urls.agent },
    ...(tls ? { https: { key: tls.key, cert: tls.cert } } : {}),
  });
  const issuer = await tenant.listen(config.ports.tenant, config.host);
  const https = tls ? `\nServing HTTPS with a local CA: export NODE_EXTRA_CA_CERTS=${tls.caCertPath} in every process that calls it` : '';
  return { banner: `Local tenant ${issuer} (Guardian page: ${issuer}guardian)${https}`, close: () => tenant.close() };
});
