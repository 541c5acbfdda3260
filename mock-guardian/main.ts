import { loadConfigOrReport } from '../sandbox/config.ts';
import { loadOrCreateSigningKey } from './signing-key.ts';

// A new state folder's signing key takes 0.1–0.4 s of a crypto thread to generate. Asked for before the
// tenant's modules load (about half a second of this thread), it is ready by the time they are.
const startConfig = loadConfigOrReport();
if (!startConfig) process.exit(2);
const signingKey = loadOrCreateSigningKey(startConfig.tenant.stateDir);
// A key that cannot be made or read fails the start below, where it is awaited.
signingKey.catch(() => {});
const [{ createControlSecret, guardianPageUrl }, { runService }, { databaseLocation, openDatabase }, { createTenant }] = await Promise.all([
  import('../sandbox/exposure.ts'),
  import('../sandbox/service-main.ts'),
  import('../sandbox/storage/database.ts'),
  import('./tenant.ts'),
]);

await runService(async (config, telemetry) => {
  // Over HTTPS the tenant looks like a real Auth0 domain; Node trusts it through NODE_EXTRA_CA_CERTS.
  // (local-ca.ts loads an X.509 library, about 0.1 s: only imported when needed.)
  const tls = config.tenant.https ? await (await import('../sandbox/local-ca.ts')).ensureLocalTls(config.tenant.stateDir) : undefined;
  // `npm run sandbox` hands an exposed tenant its secret and shows it; started alone, the tenant makes and shows its own.
  const madeSecret = config.security.exposed && config.security.controlSecret === undefined ? createControlSecret() : undefined;
  const controlSecret = config.security.controlSecret ?? madeSecret;
  // Opened while the tenant starts listening (PGlite's first start takes seconds); requests needing it wait for it.
  const opening = new AbortController();
  const warn = telemetry.logger ? (line: string) => telemetry.logger?.warn(line) : undefined;
  const database = openDatabase(databaseLocation(config, 'tenant'), { signal: opening.signal, ...(warn ? { log: warn } : {}) });
  database.catch((error: unknown) => {
    if (opening.signal.aborted) return;
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
  const tenant = createTenant({
    database,
    telemetry,
    ...(warn ? { log: warn } : {}),
    ...(config.tenant.file === undefined ? {} : { tenantFile: config.tenant.file }),
    keysDir: config.tenant.stateDir,
    signingKey,
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
}, { service: 'tenant', config: startConfig });
