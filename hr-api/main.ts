import { loadConfig } from '../sandbox/config.ts';
import { createHrApi } from './server.ts';

const config = loadConfig();
const hrApi = createHrApi({ issuer: config.identity.issuer, audience: config.identity.apiAudience });
const url = await hrApi.listen(config.ports.hrApi, config.host);
console.log(`Staff0 HR API listening on ${url} (issuer ${config.identity.issuer}, audience ${config.identity.apiAudience})`);

const stop = () => {
  hrApi.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
