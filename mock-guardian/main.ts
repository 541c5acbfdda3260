import { createControlSecret, guardianPageUrl } from '../sandbox/exposure.ts';
import { ensureLocalTls } from '../sandbox/local-ca.ts';
import { runService } from '../sandbox/service-main.ts';
import { databaseLocation, openDatabase } from '../sandbox/storage/database.ts';
import { createTenant } from './tenant.ts';

await runService(async (config, telemetry) => {
  // Over HTTPS the tenant looks like a real Auth0 domain; Node trusts it through NODE_EXTRA_CA_CERTS.
  const tls = config.tenant.https ? await ensureLocalTls(config.tenant.stateDir) : undefined;
  // `npm run sandbox` hands an exposed tenant its secret and shows it; started alone, the tenant makes and shows its own.
  const madeSecret = config.security.exposed && config.security.controlSecret === undefined ? createControlSecret() : undefined;
  const controlSecret = config.security.controlSecret ?? madeSecret;
  // Opened while the tenant starts listening (PGlite's first start takes seconds); requests needing it wait for it.
  const opening = new AbortController();
  const database = openDatabase(databaseLocation(config, 'tenant'), { signal: opening.signal });
  database.catch((error: unknown) => {
    if (opening.signal.aborted) return;
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
  const tenant = createTenant({
    database,
    telemetry,
    ...(telemetry.logger ? { log: (line: string) => telemetry.logger?.warn(line) } : {}),
    ...(config.tenant.file === undefined ? {} : { tenantFile: config.tenant.file }),
    keysDir: config.tenant.stateDir,
    // The configured issuer names the configured port; with port 0 the tenant derives it once bound.
    ...(config.identity.backend === 'local' && config.ports.tenant !== 0 ? { issuer: config.identity.issuer } : {}),
    vars: { HR_AGENT_URL: config.urls.agent },
    allowedHosts: config.security.allowedHosts,
    ...(controlSecret === undefined ? {} : { controlSecret }),
    ...(tls ? { https: { key: tls.key, cert: tls.cert } } : {}),
  });
  const issuer = await tenant.listen(config.ports.tenant, config.host);
  const https = tls ? `\nServing HTTPS with a local CA: export NODE_EXTRA_CA_CERTS=${tls.caCertPath} in every process that calls it` : '';
  const guardian = guardianPageUrl(issuer, madeSecret === undefined ? {} : { secret: madeSecret });
  const secretNote = controlSecret === undefined ? '' : `\nExposed: the control API needs the header X-Control-Secret${madeSecret === undefined ? ' (the secret in the sandbox banner)' : `: ${madeSecret}`}`;
  return {
    banner: `Local tenant ${issuer} (Guardian page: ${guardian})${https}${secretNote}`,
    close: async () => {
      await tenant.close();
      // Stopped during the first start: no need to wait seconds for PGlite; the next start makes its folder again.
      opening.abort();
      await database.then((opened) => opened.close(), () => {});
    },
  };
}, { service: 'tenant' });
