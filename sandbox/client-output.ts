import type { PendingConsentView, TaskStateName, TurnEvent, TurnResult } from './conversation.ts';

/**
 * What `npm run client` prints. Text on a terminal keeps one live line under
 * a pending consent (who must approve, on which channel, time left), rewritten
 * in place; text elsewhere is plain lines only; `--json` is one object a line.
 */

export interface Output {
  event(event: TurnEvent): void;
  result(result: TurnResult): void;
  error(message: string, code: string): void;
  /** Something the user should know that is neither an event nor the end (a reconnect). */
  notice(message: string): void;
}

/** Where text output goes; `isTTY` and `columns` as on `process.stdout`. */
export interface TextStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface TextOutputOptions {
  stdout: TextStream;
  stderr: TextStream;
  /** The clock for the time left (default `Date.now`). */
  now?: () => number;
  /** How often the live line is redrawn (default 1 s). */
  tickMs?: number;
}

const ICONS: Partial<Record<TaskStateName, string>> = {
  COMPLETED: '✔',
  REJECTED: '✖',
  FAILED: '✖',
  CANCELED: '■',
  AUTH_REQUIRED: '⏳',
  INPUT_REQUIRED: '?',
};

/** Return to the line's start and erase it (ECMA-48 EL 2). */
const CLEAR_LINE = '\r\x1b[2K';

const CHANNELS: Record<string, string> = {
  'guardian-push': 'Guardian push',
  email: 'email',
};

/** `4:59`, or `71:59:59` from an hour up; whole seconds, rounded up so "0:00" means it has lapsed. */
export function formatTimeLeft(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const seconds = String(total % 60).padStart(2, '0');
  const minutes = Math.floor(total / 60) % 60;
  const hours = Math.floor(total / 3600);
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

/** The live line's text for a pending consent at `now`. */
export function pendingLine(consent: PendingConsentView, now: number): string {
  const channel = CHANNELS[consent.channel] ?? consent.channel;
  const left = consent.expiresAt - now;
  const time = left > 0 ? `${formatTimeLeft(left)} left` : 'expired; waiting for the agent to say so';
  return `  ⏳ ${consent.employee} must approve by ${channel} · ${time}`;
}

export function textOutput(options: TextOutputOptions): Output {
  const { stdout, stderr } = options;
  const now = options.now ?? Date.now;
  const live = stdout.isTTY === true;
  let lastLine: string | undefined;
  let answer: string | undefined;
  let pending: { consent: PendingConsentView; timer: ReturnType<typeof setInterval> } | undefined;

  // A line longer than the terminal wraps, and `\r` would then rewrite only its last row.
  // (A terminal that reports no size, as a bare pseudo-terminal does, gets 80; the hourglass takes two cells.)
  const fit = (line: string) => {
    const width = (stdout.columns !== undefined && stdout.columns > 0 ? stdout.columns : 80) - 2;
    const chars = [...line];
    return chars.length > width ? `${chars.slice(0, Math.max(0, width - 1)).join('')}…` : line;
  };
  const draw = () => {
    if (pending) stdout.write(`${CLEAR_LINE}${fit(pendingLine(pending.consent, now()))}`);
  };
  /** Prints whole lines above the live line, which is drawn again beneath them. */
  const print = (stream: TextStream, text: string) => {
    if (pending) stdout.write(CLEAR_LINE);
    stream.write(`${text}\n`);
    draw();
  };
  const stopLive = () => {
    if (!pending) return;
    clearInterval(pending.timer);
    pending = undefined;
    stdout.write(CLEAR_LINE);
  };
  const startLive = (consent: PendingConsentView) => {
    if (!live) return;
    if (pending) clearInterval(pending.timer);
    const timer = setInterval(draw, options.tickMs ?? 1000);
    // The line decorates a wait; it never keeps the process alive by itself.
    timer.unref?.();
    pending = { consent, timer };
    draw();
  };

  return {
    event(event) {
      if (event.kind === 'state') {
        if (event.state !== 'AUTH_REQUIRED') stopLive();
        // The final status usually repeats the answer just printed, and a continued
        // task restates where it stopped: say each thing once.
        const message = event.message === answer ? undefined : event.message;
        const line = `${ICONS[event.state] ?? '•'} ${event.state}${message ? `  ${message}` : ''}`;
        if (line !== lastLine) print(stdout, line);
        lastLine = line;
        if (event.state === 'AUTH_REQUIRED' && event.consent) startLive(event.consent);
      } else {
        if (event.kind === 'artifact') answer = event.text;
        print(stdout, `\n${event.text}\n`);
      }
    },
    result() {
      stopLive();
    },
    error(message) {
      stopLive();
      stderr.write(`${message}\n`);
    },
    notice(message) {
      print(stderr, message);
    },
  };
}

export function jsonOutput(stdout: TextStream, stderr: TextStream): Output {
  const write = (value: unknown) => stdout.write(`${JSON.stringify(value)}\n`);
  return {
    event: (event) => {
      // `at` is this process's clock and `consent` restates the status message: neither is part of the JSON lines.
      const { at: _at, ...rest } = event;
      if ('consent' in rest) delete rest.consent;
      write(rest);
    },
    result: (result) =>
      write({
        kind: 'result',
        taskId: result.taskId,
        contextId: result.contextId,
        states: result.states,
        finalState: result.finalState,
        answer: result.answer,
      }),
    error: (message, code) => write({ kind: 'error', code, message }),
    notice: (message) => stderr.write(`${message}\n`),
  };
}
