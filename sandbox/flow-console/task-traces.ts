import type { ReceivedSpan } from './otlp.ts';
import { hopOfSpan, type HopRecord } from './hop-records.ts';
import { PARTICIPANT_LABELS, PARTICIPANTS } from '../telemetry/hops.ts';

/**
 * Recent hops, grouped by A2A task, in memory and bounded: the console is a
 * window on the last few flows, not a trace store. A hop without a task id
 * joins its trace's task once any hop of that trace names it; until then it
 * waits in a group of its own, keyed by trace.
 */

export interface TaskTracesOptions {
  /** Tasks kept; beyond it, the one updated longest ago is dropped. */
  maxTasks?: number;
  /** Hops kept per task; beyond it, the earliest are dropped (and counted). */
  maxHopsPerTask?: number;
}

export const TASK_TRACES_DEFAULTS = { maxTasks: 100, maxHopsPerTask: 500 } as const;

/** A2A's terminal states (A2A v1.0 §4.1.3): no hop after one of them changes the outcome. */
const TERMINAL_STATES = new Set(['COMPLETED', 'FAILED', 'CANCELED', 'REJECTED']);

export interface TaskSummary {
  id: string;
  /** The task state set by its latest hop that set one. */
  state?: string;
  terminal: boolean;
  employee?: string;
  channel?: string;
  startedAt: string;
  updatedAt: string;
  hopCount: number;
  droppedHops: number;
}

/** A hop as the page gets it: the record, its times as offsets from the task's first hop. */
export type HopView = Omit<HopRecord, 'startNs' | 'endNs' | 'events' | 'taskId'> & {
  startedAt: string;
  /** Milliseconds since the task's first hop started. */
  offsetMs: number;
  durationMs: number;
  events: { name: string; offsetMs: number }[];
};

export interface TaskDetail {
  task: TaskSummary;
  participants: { id: string; label: string }[];
  hops: HopView[];
}

/** What subscribers hear after each batch: a task changed, or one went away (dropped, or merged into the task its trace named). */
export type TaskChange = { type: 'task'; task: TaskSummary } | { type: 'removed'; id: string; mergedInto?: string };

interface TaskGroup {
  id: string;
  hops: Map<string, HopRecord>;
  traceIds: Set<string>;
  droppedHops: number;
  updatedAtMs: number;
}

export interface TaskTraces {
  /** Adds received spans; spans that are not hops are ignored. Returns how many hops were kept. */
  add(spans: readonly ReceivedSpan[]): number;
  list(): TaskSummary[];
  get(id: string): TaskDetail | undefined;
  subscribe(listener: (changes: readonly TaskChange[]) => void): () => void;
}

const TRACE_KEY_PREFIX = 'trace:';

function nsToMs(ns: bigint): number {
  return Number(ns / 1000n) / 1000;
}

function isoOf(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

function byStart(a: HopRecord, b: HopRecord): number {
  if (a.startNs !== b.startNs) return a.startNs < b.startNs ? -1 : 1;
  // A hop that ends first started inside the other (a child span): it is drawn after its parent.
  if (a.endNs !== b.endNs) return a.endNs > b.endNs ? -1 : 1;
  return a.spanId < b.spanId ? -1 : 1;
}

export function createTaskTraces(options: TaskTracesOptions = {}, clock: () => number = Date.now): TaskTraces {
  const maxTasks = Math.max(1, options.maxTasks ?? TASK_TRACES_DEFAULTS.maxTasks);
  const maxHops = Math.max(1, options.maxHopsPerTask ?? TASK_TRACES_DEFAULTS.maxHopsPerTask);
  const groups = new Map<string, TaskGroup>();
  const taskOfTrace = new Map<string, string>();
  const listeners = new Set<(changes: readonly TaskChange[]) => void>();

  function sortedHops(group: TaskGroup): HopRecord[] {
    return [...group.hops.values()].sort(byStart);
  }

  function summarise(group: TaskGroup): TaskSummary {
    const hops = sortedHops(group);
    const first = hops[0];
    let latestState: HopRecord | undefined;
    for (const hop of hops) {
      if (hop.taskState !== undefined && (latestState === undefined || hop.endNs >= latestState.endNs)) latestState = hop;
    }
    const state = latestState?.taskState;
    const employee = hops.find((h) => h.employee !== undefined)?.employee;
    const channel = hops.find((h) => h.channel !== undefined)?.channel;
    const lastEnd = hops.reduce((max, h) => (h.endNs > max ? h.endNs : max), 0n);
    return {
      id: group.id,
      ...(state === undefined ? {} : { state }),
      terminal: state !== undefined && TERMINAL_STATES.has(state),
      ...(employee === undefined ? {} : { employee }),
      ...(channel === undefined ? {} : { channel }),
      startedAt: first ? isoOf(first.startNs) : new Date(group.updatedAtMs).toISOString(),
      updatedAt: hops.length > 0 ? isoOf(lastEnd) : new Date(group.updatedAtMs).toISOString(),
      hopCount: group.hops.size,
      droppedHops: group.droppedHops,
    };
  }

  function groupFor(id: string): TaskGroup {
    let group = groups.get(id);
    if (!group) {
      group = { id, hops: new Map(), traceIds: new Set(), droppedHops: 0, updatedAtMs: clock() };
      groups.set(id, group);
    }
    return group;
  }

  function remove(group: TaskGroup): void {
    groups.delete(group.id);
    for (const traceId of group.traceIds) if (taskOfTrace.get(traceId) === group.id) taskOfTrace.delete(traceId);
  }

  function insert(group: TaskGroup, hop: HopRecord): void {
    group.hops.set(hop.spanId, hop);
    // Bounded like the hops: a task whose every poll is its own trace cannot grow the map for ever.
    if (group.traceIds.size < maxHops) group.traceIds.add(hop.traceId);
    group.updatedAtMs = clock();
    if (group.hops.size <= maxHops) return;
    const earliest = sortedHops(group).slice(0, group.hops.size - maxHops);
    for (const old of earliest) group.hops.delete(old.spanId);
    group.droppedHops += earliest.length;
  }

  return {
    add(spans) {
      const changed = new Set<string>();
      const removed = new Map<string, string | undefined>();
      let kept = 0;
      for (const span of spans) {
        const hop = hopOfSpan(span);
        if (hop === undefined) continue;
        kept += 1;
        const traceKey = `${TRACE_KEY_PREFIX}${hop.traceId}`;
        if (hop.taskId !== undefined) {
          const group = groupFor(hop.taskId);
          taskOfTrace.set(hop.traceId, hop.taskId);
          const waiting = groups.get(traceKey);
          if (waiting) {
            for (const earlier of waiting.hops.values()) insert(group, earlier);
            group.droppedHops += waiting.droppedHops;
            remove(waiting);
            taskOfTrace.set(hop.traceId, hop.taskId);
            changed.delete(traceKey);
            removed.set(traceKey, hop.taskId);
          }
          insert(group, hop);
          changed.add(group.id);
        } else {
          const group = groupFor(taskOfTrace.get(hop.traceId) ?? traceKey);
          insert(group, hop);
          changed.add(group.id);
        }
      }
      while (groups.size > maxTasks) {
        let oldest: TaskGroup | undefined;
        for (const group of groups.values()) if (!oldest || group.updatedAtMs < oldest.updatedAtMs) oldest = group;
        if (!oldest) break;
        remove(oldest);
        changed.delete(oldest.id);
        removed.set(oldest.id, undefined);
      }
      if (listeners.size > 0 && (changed.size > 0 || removed.size > 0)) {
        const changes: TaskChange[] = [
          ...[...removed].map(([id, mergedInto]): TaskChange => ({ type: 'removed', id, ...(mergedInto === undefined ? {} : { mergedInto }) })),
          ...[...changed].flatMap((id): TaskChange[] => {
            const group = groups.get(id);
            return group ? [{ type: 'task', task: summarise(group) }] : [];
          }),
        ];
        for (const listener of listeners) listener(changes);
      }
      return kept;
    },

    list() {
      return [...groups.values()].map(summarise).sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
    },

    get(id) {
      const group = groups.get(id);
      if (!group) return undefined;
      const hops = sortedHops(group);
      const origin = hops[0]?.startNs ?? 0n;
      return {
        task: summarise(group),
        participants: PARTICIPANTS.map((p) => ({ id: p, label: PARTICIPANT_LABELS[p] })),
        hops: hops.map((hop): HopView => {
          const { startNs, endNs, events, taskId: _taskId, ...rest } = hop;
          return {
            ...rest,
            startedAt: isoOf(startNs),
            offsetMs: nsToMs(startNs - origin),
            durationMs: nsToMs(endNs - startNs),
            events: events.map((e) => ({ name: e.name, offsetMs: nsToMs(e.timeNs - origin) })),
          };
        }),
      };
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
