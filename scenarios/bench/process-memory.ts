import { readdirSync, readFileSync } from 'node:fs';

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

/**
 * The fields of /proc/<pid>/stat after the command name (proc(5)): index 0 is field 3 (state). The command
 * name (field 2) may hold spaces, so the fields are counted from its closing parenthesis. Undefined when
 * the process is gone.
 */
function statFields(pid: number | string): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Clock ticks of 10 ms on Linux, as milliseconds; a process whose times cannot be read is an error. */
function ticksToMs(pid: number, ticks: number): number {
  if (!Number.isFinite(ticks)) throw new Error(`/proc/${pid}/stat has no CPU times`);
  return ticks * 10;
}

/**
 * CPU time a process has used so far, user plus system, in milliseconds (proc(5), /proc/<pid>/stat
 * fields 14 and 15).
 */
export function readProcessCpuMs(pid: number): number {
  const fields = statFields(pid) ?? [];
  return ticksToMs(pid, Number(fields[11]) + Number(fields[12]));
}

/**
 * CPU time of a process and its children, in milliseconds: the process's own user and system time, its
 * reaped children's (fields 16 and 17), and that of each child still running (a PostgreSQL server: its
 * postmaster and a backend per connection).
 */
export function readProcessTreeCpuMs(pid: number): number {
  const own = statFields(pid) ?? [];
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const [, fields] of childStats(pid)) ticks += Number(fields[11]) + Number(fields[12]);
  return ticksToMs(pid, ticks);
}

/** The session a process belongs to (proc(5), /proc/<pid>/stat field 6); undefined once it has exited. */
export function readProcessSession(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields === undefined ? undefined : Number(fields[3]);
}

/** The processes whose parent is `pid`, running now (proc(5)). */
export function childProcesses(pid: number): number[] {
  return childStats(pid).map(([child]) => child);
}

/** Each child of `pid` with its stat fields, read once. */
function childStats(pid: number): [number, string[]][] {
  const children: [number, string[]][] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry); // Undefined: exited meanwhile.
    if (fields && Number(fields[1]) === pid) children.push([Number(entry), fields]);
  }
  return children;
}
