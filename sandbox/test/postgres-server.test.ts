import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { childProcesses } from '../../scenarios/bench/process-memory.ts';
import { isRunning } from '../cache.mjs';
import { startPostgresServer, STOP_ESCALATE_MS } from './postgres-server.ts';

/** The test PostgreSQL server's own stop: it ends, and takes its files with it, even when its fast shutdown cannot finish. */

/** The server's checkpointer: the child whose command line names it. */
function checkpointerOf(postmaster: number): number | undefined {
  return childProcesses(postmaster).find((child) => {
    try {
      return readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('checkpointer');
    } catch {
      return false; // Gone meanwhile.
    }
  });
}

describe('the test PostgreSQL server', () => {
  it('stops, files and all, when its checkpointer cannot write the shutdown checkpoint', { timeout: STOP_ESCALATE_MS + 60_000 }, async () => {
    const server = await startPostgresServer();
    const dataDir = readFileSync(`/proc/${server.pid}/cmdline`, 'utf8').split('\0').find((arg, i, all) => all[i - 1] === '-D');
    expect(dataDir && existsSync(dataDir)).toBe(true);
    const checkpointer = checkpointerOf(server.pid);
    expect(checkpointer).toBeDefined();
    // Whatever the outcome, even a timed-out test: no server is left behind.
    onTestFinished(() => {
      for (const pid of [checkpointer!, server.pid]) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
    });
    // A stopped checkpointer never writes the checkpoint a fast shutdown (SIGINT) waits for.
    process.kill(checkpointer!, 'SIGSTOP');
    await server.stop();
    expect(isRunning(server.pid)).toBe(false);
    expect(existsSync(dataDir!)).toBe(false);
  });
});
