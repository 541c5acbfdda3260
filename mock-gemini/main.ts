import { runService } from '../sandbox/service-main.ts';
import { createMockGemini } from './server.ts';

await runService(async (config) => {
  // The agent always sends its configured key, so a missing one is a bug worth a loud 403.
  const mockGemini = createMockGemini({
    requireApiKey: true,
    publicUrl: config.urls.mockGemini,
    allowedHosts: config.security.allowedHosts,
  });
  const url = await mockGemini.listen(config.ports.mockGemini, config.host);
  return {
    banner: `mock-gemini listening on ${url} (POST /v1beta/models/{model}:generateContent)`,
    close: () => mockGemini.close(),
  };
});
