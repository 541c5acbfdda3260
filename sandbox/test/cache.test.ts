import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeFolderAtomically, writeFileAtomically } from '../cache.mjs';

/** The cache's writers leave nothing behind: a writer killed half-way leaves a partial that the next writer deletes. */

let root: string | undefined;
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  expect(child.status).toBe(0);
  return child.pid as number;
}

describe('the cache writers', () => {
  it("delete the partial folder of a writer that was killed, keep a running writer's, and make the folder", () => {
    root = mkdtempSync(join(tmpdir(), 'cache-'));
    const target = join(root, 'pglite-template');
    const killed = `${target}.partial-${deadPid()}-0`;
    const running = `${target}.partial-${process.pid}-99`;
    for (const partial of [killed, running]) {
      mkdirSync(join(partial, 'base'), { recursive: true });
      writeFileSync(join(partial, 'base', 'half-copied'), 'x'.repeat(1024));
    }

    makeFolderAtomically(target, (partial) => {
      mkdirSync(partial);
      writeFileSync(join(partial, 'PG_VERSION'), '17');
    });

    expect(readFileSync(join(target, 'PG_VERSION'), 'utf8')).toBe('17');
    expect(existsSync(killed)).toBe(false);
    expect(existsSync(running)).toBe(true);
    expect(readdirSync(root).sort()).toEqual(['pglite-template', `pglite-template.partial-${process.pid}-99`]);
  });

  it('delete the partial file of a writer that was killed when the file is written again', () => {
    root = mkdtempSync(join(tmpdir(), 'cache-'));
    const target = join(root, 'template.tar');
    writeFileSync(`${target}.partial-${deadPid()}-0`, 'cut short');
    writeFileSync(join(root, 'template.tar.partial-note'), 'not a partial of a writer');

    writeFileAtomically(target, 'whole');

    expect(readFileSync(target, 'utf8')).toBe('whole');
    expect(readdirSync(root).sort()).toEqual(['template.tar', 'template.tar.partial-note']);
  });
});
