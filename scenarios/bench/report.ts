import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { summarize, type Summary } from './stats.ts';

/**
 * What every benchmark hands back: figures (each a summary of several runs)
 * with the floor they must meet, and checks that the work itself was done —
 * every run completed, nothing lost. The CI smoke asserts the checks only.
 */

export type Unit = 'ms' | 's' | 'req/s' | 'MiB' | 'KiB' | 'x' | 'cores' | 'count';

export interface Floor {
  /** The statistic the floor is judged on. */
  on: 'median';
  op: '<=' | '>=';
  value: number;
  met: boolean;
}

export interface Figure extends Summary {
  label: string;
  unit: Unit;
  floor?: Floor;
  /** The raw samples, for anyone who wants a different statistic. */
  samples: number[];
}

export interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

export interface BenchmarkResult {
  id: string;
  title: string;
  /** How it was measured, in a sentence or two; printed under the table and kept in the JSON. */
  method: string;
  figures: Figure[];
  /** Supporting figures (a profile of where time went), in the JSON only. */
  extra?: Figure[];
  notes?: Record<string, unknown>;
  checks: Check[];
}

export function figure(label: string, unit: Unit, samples: readonly number[], floor?: { op: Floor['op']; value: number }): Figure {
  const summary = summarize(samples);
  return {
    label,
    unit,
    ...summary,
    samples: [...samples],
    ...(floor
      ? { floor: { on: 'median', ...floor, met: floor.op === '<=' ? summary.median <= floor.value : summary.median >= floor.value } }
      : {}),
  };
}

export function check(what: string, ok: boolean, detail: string): Check {
  return { what, ok, detail };
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
}

export function describeMachine(): Machine {
  const cores = cpus();
  let model = cores[0]?.model.trim() ?? 'unknown';
  try {
    // The first "model name" in /proc/cpuinfo, as `nproc`'s companion on Linux.
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? model;
  } catch {
    // not Linux: os.cpus() already named it
  }
  return {
    cpus: cores.length,
    cpuModel: model,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

export function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return '—';
  switch (unit) {
    case 'ms':
      return value < 10 ? `${value.toFixed(2)} ms` : value < 100 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
    case 's':
      return `${value.toFixed(2)} s`;
    case 'req/s':
      return `${Math.round(value)} req/s`;
    case 'MiB':
      return `${value.toFixed(1)} MiB`;
    case 'KiB':
      return `${value.toFixed(1)} KiB`;
    case 'x':
      return value < 0.1 ? `${value.toFixed(4)}×` : value < 10 ? `${value.toFixed(2)}×` : `${Math.round(value)}×`;
    case 'cores':
      return `${value.toFixed(2)} cores`;
    case 'count':
      return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }
}

function formatFloor(f: Figure): string {
  if (!f.floor) return '';
  return `${f.floor.op === '<=' ? '≤' : '≥'} ${formatValue(f.floor.value, f.unit)} ${f.floor.met ? 'met' : 'MISSED'}`;
}

/** A plain-text table, one row per figure, grouped by benchmark. */
export function renderTable(results: readonly BenchmarkResult[]): string {
  const header = ['benchmark', 'figure', 'median', 'min', 'max', 'runs', 'floor'];
  const rows: string[][] = [];
  for (const result of results) {
    result.figures.forEach((f, i) => {
      rows.push([
        i === 0 ? result.title : '',
        f.label,
        formatValue(f.median, f.unit),
        formatValue(f.min, f.unit),
        formatValue(f.max, f.unit),
        String(f.runs),
        formatFloor(f),
      ]);
    });
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The same figures as a Markdown table, for the README. */
export function renderMarkdown(results: readonly BenchmarkResult[]): string {
  const lines = ['| benchmark | figure | median | min | max | runs | floor |', '|---|---|---|---|---|---|---|'];
  for (const result of results) {
    result.figures.forEach((f, i) => {
      lines.push(
        `| ${i === 0 ? result.title : ''} | ${f.label} | ${formatValue(f.median, f.unit)} | ${formatValue(f.min, f.unit)} | ${formatValue(f.max, f.unit)} | ${f.runs} | ${formatFloor(f)} |`,
      );
    });
  }
  return lines.join('\n');
}

export interface BenchReport {
  date: string;
  command: string;
  quick: boolean;
  seed: number;
  machine: Machine;
  benchmarks: BenchmarkResult[];
}

export function writeReport(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}
