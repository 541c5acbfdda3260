import { pathToFileURL } from 'node:url';
import { buildSandbox, builtEntry } from './build.mjs';

// `npm run sandbox`: builds the sandbox's modules (sandbox/build.mjs), then runs its main from the
// build; that main starts each service from the same build.
const dir = await buildSandbox();
const { runSandbox } = await import(pathToFileURL(builtEntry(dir, 'sandbox/main.ts')).href);
process.exitCode = await runSandbox(dir);
