import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * A background thread (background-thread.ts) keeps its own small young generation even in a process started with
 * a bigger one for its main thread (`--max-semi-space-size`, as `npm run sandbox` starts the embedded agent).
 */

const MODULE = fileURLToPath(new URL('../background-thread.ts', import.meta.url));

/** Fills a heap's young generation with short-lived objects, then reports how big it grew (MiB). */
const CHURN = `
  const { getHeapSpaceStatistics } = await import('node:v8');
  let kept = [];
  for (let i = 0; i < 3e6; i++) {
    kept.push({ i, text: 'x' + i });
    if (kept.length > 20000) kept = [];
  }
  const youngMiB = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size / 2 ** 20;
`;

const SCRIPT = `
  import { Worker } from 'node:worker_threads';
  import { once } from 'node:events';
  const { backgroundThreadLimits } = await import(${JSON.stringify(MODULE)});
  ${CHURN}
  const thread = new Worker(${JSON.stringify(`(async () => { ${CHURN} (await import('node:worker_threads')).parentPort.postMessage(youngMiB); })()`)}, {
    eval: true,
    resourceLimits: backgroundThreadLimits(),
  });
  const [threadMiB] = await once(thread, 'message');
  console.log(JSON.stringify({ main: youngMiB, thread: threadMiB }));
`;

async function youngGenerations(flags: string[]): Promise<{ main: number; thread: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
    timeout: 60_000,
  });
  return JSON.parse(stdout) as { main: number; thread: number };
}

describe('a background thread', { timeout: 90_000 }, () => {
  it("keeps its 2 MiB semi-spaces when the process's main thread was given 8 MiB ones", async () => {
    const sizes = await youngGenerations(['--max-semi-space-size=8']);
    // A young generation is two semi-spaces.
    expect(sizes.main).toBe(16);
    expect(sizes.thread).toBeLessThanOrEqual(4);
  });

  it('keeps them in a process with V8 defaults, whose main thread grows to 16 MiB', async () => {
    const sizes = await youngGenerations([]);
    expect(sizes.main).toBe(32);
    expect(sizes.thread).toBeLessThanOrEqual(4);
  });
});
