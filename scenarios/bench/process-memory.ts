import { readFileSync } from 'node:fs';

/**
 * A process's memory as the kernel accounts it (proc(5), /proc/<pid>/status):
 * VmRSS is the resident set now, VmHWM its high-water mark since start.
 * Read from outside the process, so measuring changes nothing in it.
 */

export interface ProcessMemory {
  rssKiB: number;
  peakRssKiB: number;
}

export function readProcessMemory(pid: number): ProcessMemory {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch (error) {
    throw new Error(`Cannot read /proc/${pid}/status (${(error as NodeJS.ErrnoException).code ?? 'error'}); memory figures need Linux`);
  }
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!match?.[1]) throw new Error(`/proc/${pid}/status has no ${field} line`);
    return Number(match[1]);
  };
  return { rssKiB: kib('VmRSS'), peakRssKiB: kib('VmHWM') };
}
