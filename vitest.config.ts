import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{agent,hr-api,mock-guardian,mock-gemini,sandbox,scenarios,bench}/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['sandbox/test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: process.env.CI ? ['default', 'junit'] : ['default'],
    outputFile: { junit: 'reports/junit.xml' },
  },
});
