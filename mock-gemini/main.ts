import { loadConfig } from '../sandbox/config.ts';
import { createMockGemini } from './server.ts';

const config = loadConfig();
// The agent always sends its configured key, so a missing one is a bug worth a loud 403.
const mockGemini = createMockGemini({ requireApiKey: true });
const url = await mockGemini.listen(config.ports.mockGemini, config.host);
console.log(`mock-gemini listening on ${url} (POST /v1beta/models/{model}:generateContent)`);

const stop = () => {
  mockGemini.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
