import { makeTemplates } from './pglite-thread.ts';

/**
 * `node make-templates.js` (from the build): makes the embedded database's templates if this machine has
 * none yet, then exits. Run by `prepareEmbeddedDatabases` (sandbox/services.ts) before the services start,
 * in a process of its own, so that the memory `initdb` takes is given back when it ends.
 */
await makeTemplates();
