import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatTimeLeft, jsonOutput, textOutput, type TextStream } from '../client-output.ts';
import type { TurnEvent } from '../conversation.ts';

/** What `npm run client` shows while a consent is pending, on a terminal and elsewhere. */

function screen(isTTY: boolean): TextStream & { text: string } {
  return {
    isTTY,
    columns: 120,
    text: '',
    write(chunk: string) {
      this.text += chunk;
      return true;
    },
  };
}

const EXPIRES_AT = Date.parse('2026-01-01T12:05:00Z');
const ids = { taskId: 't1', contextId: 'c1', at: 0 };
const working: TurnEvent = { kind: 'state', ...ids, state: 'WORKING', message: undefined };
const authRequired = (channel: string): Extract<TurnEvent, { kind: 'state' }> => ({
  kind: 'state',
  ...ids,
  state: 'AUTH_REQUIRED',
  message: 'Waiting for jdoe@staff0.com to approve "Verify employment" on their phone (Guardian push notification).',
  consent: { employee: 'jdoe@staff0.com', channel, expiresAt: EXPIRES_AT },
});
const completed: TurnEvent = { kind: 'state', ...ids, state: 'COMPLETED', message: 'Yes, John Doe is an active employee of Staff0.' };

describe('the text output', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(Date.parse('2026-01-01T12:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('on a terminal, shows who must approve, on which channel and the time left, and counts down every second', () => {
    const stdout = screen(true);
    const out = textOutput({ stdout, stderr: screen(true) });
    out.event(working);
    out.event(authRequired('guardian-push'));
    expect(stdout.text).toMatch(/⏳ AUTH_REQUIRED {2}Waiting for jdoe@staff0\.com.*\n\r\x1b\[2K {2}⏳ jdoe@staff0\.com must approve by Guardian push · 5:00 left$/);
    vi.advanceTimersByTime(1000);
    expect(stdout.text).toMatch(/\r\x1b\[2K {2}⏳ jdoe@staff0\.com must approve by Guardian push · 4:59 left$/);
    vi.advanceTimersByTime(299_000);
    expect(stdout.text).toMatch(/· expired; waiting for the agent to say so$/);
  });

  it('names the email channel, with hours for a long request', () => {
    const stdout = screen(true);
    const out = textOutput({ stdout, stderr: screen(true) });
    out.event({ ...authRequired('email'), consent: { employee: 'jdoe@staff0.com', channel: 'email', expiresAt: Date.now() + 72 * 3600_000 } });
    expect(stdout.text).toMatch(/jdoe@staff0\.com must approve by email · 72:00:00 left$/);
  });

  it('erases the live line when the state changes, then prints the change on a line of its own and stops counting', () => {
    const stdout = screen(true);
    const out = textOutput({ stdout, stderr: screen(true) });
    out.event(authRequired('guardian-push'));
    out.event(working);
    expect(stdout.text.endsWith('5:00 left\r\x1b[2K• WORKING\n')).toBe(true);
    const before = stdout.text;
    vi.advanceTimersByTime(5000);
    expect(stdout.text).toBe(before);
  });

  it('keeps the live line beneath a notice, and erases it before an error', () => {
    const stdout = screen(true);
    const stderr = screen(true);
    const out = textOutput({ stdout, stderr });
    out.event(authRequired('guardian-push'));
    out.notice('Lost the stream from the HR Agent (terminated); following the task again (attempt 1)…');
    expect(stderr.text).toBe('Lost the stream from the HR Agent (terminated); following the task again (attempt 1)…\n');
    expect(stdout.text.endsWith('\r\x1b[2K\r\x1b[2K  ⏳ jdoe@staff0.com must approve by Guardian push · 5:00 left')).toBe(true);
    out.error('Canceled the pending task.', 'canceled');
    expect(stdout.text.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('fits a terminal that reports no width (0 columns) into 80', () => {
    const stdout = { ...screen(true), columns: 0 };
    textOutput({ stdout, stderr: screen(true) }).event(authRequired('guardian-push'));
    expect(stdout.text).toContain('jdoe@staff0.com must approve by Guardian push · 5:00 left');
  });

  it('cuts the live line to the terminal width, so rewriting it never wraps', () => {
    const stdout = { ...screen(true), columns: 30 };
    const out = textOutput({ stdout, stderr: screen(true) });
    out.event(authRequired('guardian-push'));
    const live = stdout.text.split('\r\x1b[2K').at(-1)!;
    expect([...live]).toHaveLength(28);
    expect(live.endsWith('…')).toBe(true);
  });

  it('when not a terminal, prints the same state lines and nothing else: no live line, carriage return or escape sequence', () => {
    const stdout = screen(false);
    const out = textOutput({ stdout, stderr: screen(false) });
    out.event(working);
    out.event(authRequired('guardian-push'));
    vi.advanceTimersByTime(10_000);
    out.event(working);
    out.event(completed);
    out.result({ taskId: 't1', contextId: 'c1', states: ['WORKING', 'AUTH_REQUIRED', 'WORKING', 'COMPLETED'], finalState: 'COMPLETED', answer: '', events: [] });
    expect(stdout.text).not.toMatch(/[\r\x1b]/);
    expect(stdout.text.split('\n').filter(Boolean)).toEqual([
      '• WORKING',
      '⏳ AUTH_REQUIRED  Waiting for jdoe@staff0.com to approve "Verify employment" on their phone (Guardian push notification).',
      '• WORKING',
      '✔ COMPLETED  Yes, John Doe is an active employee of Staff0.',
    ]);
  });
});

describe('the --json output', () => {
  it('is unchanged by the consent details: one object per event with kind, ids, state and message', () => {
    const stdout = screen(false);
    const out = jsonOutput(stdout, screen(false));
    out.event(authRequired('guardian-push'));
    expect(JSON.parse(stdout.text)).toEqual({
      kind: 'state',
      taskId: 't1',
      contextId: 'c1',
      state: 'AUTH_REQUIRED',
      message: 'Waiting for jdoe@staff0.com to approve "Verify employment" on their phone (Guardian push notification).',
    });
  });
});

describe('the time left', () => {
  it('reads as minutes and seconds, with hours from an hour up, rounded up to the second', () => {
    expect(formatTimeLeft(300_000)).toBe('5:00');
    expect(formatTimeLeft(59_001)).toBe('1:00');
    expect(formatTimeLeft(9_000)).toBe('0:09');
    expect(formatTimeLeft(3 * 3600_000 + 61_000)).toBe('3:01:01');
    expect(formatTimeLeft(-5)).toBe('0:00');
  });
});
