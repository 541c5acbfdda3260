import { describe, expect, it } from 'vitest';
import { runCommand } from './processes.ts';

describe('runCommand keeping only the end of a long output', () => {
  it('gives at most keepChars of each stream, ending with the last line, however the output arrived', async () => {
    // 3000 numbered lines on each stream, about 8 times the kept amount, one line per turn of the child's
    // event loop, so that they arrive in many small chunks as a service's log lines do.
    const script =
      'let i = 0; const line = () => { process.stdout.write(`out ${i}\\n`); process.stderr.write(`err ${i}\\n`); if (++i < 3000) setImmediate(line); }; line();';
    const run = runCommand(process.execPath, ['-e', script], {}, { keepChars: 4096 });
    const { code } = await run.exited;
    expect(code).toBe(0);
    for (const [text, name] of [
      [run.stdout(), 'out'],
      [run.stderr(), 'err'],
    ] as const) {
      expect(text.length).toBe(4096);
      expect(text.endsWith(`${name} 2999\n`)).toBe(true);
      // What is kept is the stream's own end, in order, with nothing left out.
      const lines = text.split('\n').slice(1, -1);
      const numbers = lines.map((line) => Number(line.slice(name.length + 1)));
      expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    }
    expect(run.output()).toBe(run.stdout() + run.stderr());
  });
});
