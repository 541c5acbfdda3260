import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createRandom } from './random.ts';
import { describeMachine, renderMarkdown, renderTable, writeReport, type BenchmarkResult } from './report.ts';
import { BENCHMARKS } from './suite.ts';

/**
 * `npm run bench [-- --quick] [--only id,id] [--seed n] [--out file] [--markdown]`:
 * runs the benchmarks, prints a table and writes the same figures as JSON
 * (default `reports/bench.json`, git-ignored). Exits 1 when a run did not
 * complete or lost work; a missed floor is reported, not fatal.
 */

const USAGE = `Usage: npm run bench -- [--quick] [--only ${BENCHMARKS.map((b) => b.id).join(',')}] [--seed <n>] [--out <file>] [--markdown]`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string', default: 'reports/bench.json' },
        markdown: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const only = args.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = only?.filter((id) => !BENCHMARKS.some((b) => b.id === id)) ?? [];
  if (unknown.length > 0) {
    console.error(`Unknown benchmark ${unknown.join(', ')}.\n${USAGE}`);
    return 2;
  }
  const seed = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(args.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    console.error(`--seed must be a whole number (got "${args.seed}")`);
    return 2;
  }
  const size = args.quick ? 'quick' : 'full';
  const machine = describeMachine();
  console.log(
    `Benchmarks (${size}, seed ${seed}) on ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}`,
  );
  const random = createRandom(seed);
  const results: BenchmarkResult[] = [];
  for (const benchmark of BENCHMARKS.filter((b) => !only || only.includes(b.id))) {
    console.log(`\n— ${benchmark.id}`);
    results.push(await benchmark.run({ size, random, log: (line) => console.log(`  ${line}`) }));
  }

  console.log(`\n${renderTable(results)}\n`);
  if (args.markdown) console.log(`${renderMarkdown(results)}\n`);
  for (const result of results) console.log(`${result.title}: ${result.method}\n`);
  const failed = results.flatMap((r) => r.checks.filter((c) => !c.ok).map((c) => `${r.title}: ${c.what} (${c.detail})`));
  const missed = results.flatMap((r) => r.figures.filter((f) => f.floor && !f.floor.met).map((f) => `${r.title}: ${f.label}`));
  for (const line of failed) console.log(`FAILED  ${line}`);
  for (const line of missed) console.log(`FLOOR MISSED  ${line}`);

  const out = resolve(args.out);
  writeReport(out, {
    date: new Date().toISOString(),
    command: `npm run bench${args.quick || only ? ' --' : ''}${args.quick ? ' --quick' : ''}${only ? ` --only ${only.join(',')}` : ''}`,
    quick: args.quick,
    seed,
    machine,
    benchmarks: results,
  });
  console.log(`Figures written to ${out}`);
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = await main();
