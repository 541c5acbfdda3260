import type { Page } from 'playwright';

/**
 * Reading the flow console as a user sees it, for browser tests: with
 * synthetic spans here, and with the spans of a real flow in scenarios.
 * Every wait is on the page's state (Playwright's auto-waiting), never a sleep.
 */

export interface RenderedArrow {
  /** Lane ids: client, agent, identity, employee, hr-api. */
  from: string;
  to: string;
  label: string;
  /** `+1.204 s · 32 ms · 200` */
  timing: string;
  /** The task state this hop set, as its badge shows it. */
  state?: string;
  outcome: 'ok' | 'error';
  /** Horizontal centre of the lane heads the arrow's line starts and ends under, and the line's own ends (CSS pixels). */
  geometry: { fromLaneX: number; toLaneX: number; lineLeft: number; lineRight: number };
}

export interface HopDetailsView {
  title: string;
  /** `data-field` → text: method, path, status, offset, duration, auth-req-id, poll-count, error, … */
  fields: Record<string, string>;
  /** Token name → its decoded header (`alg`, `kid`, `typ`) and claims, as shown. */
  tokens: Record<string, { header: Record<string, string>; claims: Record<string, string> }>;
}

export const FLOW_CONSOLE_WAIT = { timeout: 15_000 };

/** The console's page for a task (`?task=`), or the live list when `taskId` is left out; resolves once its event stream is open. */
export async function openFlowConsole(page: Page, consoleUrl: string, taskId?: string): Promise<void> {
  const url = new URL(consoleUrl.endsWith('/') ? consoleUrl : `${consoleUrl}/`);
  if (taskId !== undefined) url.searchParams.set('task', taskId);
  await page.goto(url.href);
  await page.locator('[data-testid="connection"][data-state="open"]').waitFor(FLOW_CONSOLE_WAIT);
}

/**
 * The arrows the console draws for `taskId`, in diagram order, once at least
 * `atLeast` are drawn (default 1). Opens the task's page unless it is the one shown.
 */
export async function renderedArrows(page: Page, consoleUrl: string, taskId: string, options: { atLeast?: number } = {}): Promise<RenderedArrow[]> {
  const title = page.locator(`[data-testid="task-title"][data-task-id="${taskId.replace(/["\\]/g, '\\$&')}"]`);
  if ((await title.count()) === 0) await openFlowConsole(page, consoleUrl, taskId);
  await title.waitFor(FLOW_CONSOLE_WAIT);
  await page.locator('[data-testid="diagram"] [data-testid="hop"]').nth((options.atLeast ?? 1) - 1).waitFor(FLOW_CONSOLE_WAIT);
  return page.evaluate(() => {
    const lanes = new Map(
      Array.from(document.querySelectorAll<HTMLElement>('[data-testid="lane"]')).map((head) => {
        const box = head.getBoundingClientRect();
        return [head.dataset.lane ?? '', box.left + box.width / 2] as const;
      }),
    );
    return Array.from(document.querySelectorAll<HTMLElement>('[data-testid="diagram"] [data-testid="hop"]')).map((arrow) => {
      const line = arrow.querySelector('.hop-line')!.getBoundingClientRect();
      const state = arrow.querySelector('[data-testid="hop-state"]')?.textContent ?? undefined;
      return {
        from: arrow.dataset.from ?? '',
        to: arrow.dataset.to ?? '',
        label: arrow.querySelector('[data-testid="hop-label"]')?.textContent ?? '',
        timing: arrow.querySelector('[data-testid="hop-timing"]')?.textContent ?? '',
        ...(state === undefined ? {} : { state }),
        outcome: arrow.dataset.outcome === 'error' ? ('error' as const) : ('ok' as const),
        geometry: {
          fromLaneX: lanes.get(arrow.dataset.from ?? '') ?? Number.NaN,
          toLaneX: lanes.get(arrow.dataset.to ?? '') ?? Number.NaN,
          lineLeft: line.left,
          lineRight: line.right,
        },
      };
    });
  });
}

/** Clicks the arrow at `index` (diagram order) and reads the details it opens. */
export async function openHopDetails(page: Page, index: number): Promise<HopDetailsView> {
  const arrow = page.locator('[data-testid="diagram"] [data-testid="hop"]').nth(index);
  const spanId = await arrow.getAttribute('data-span-id');
  await arrow.click();
  await page.locator(`[data-testid="hop-details"][data-span-id="${spanId}"]:not([hidden])`).waitFor(FLOW_CONSOLE_WAIT);
  return page.evaluate(() => {
    const details = document.querySelector<HTMLElement>('[data-testid="hop-details"]')!;
    const fields: Record<string, string> = {};
    for (const dd of Array.from(details.querySelectorAll<HTMLElement>('dd[data-field]'))) fields[dd.dataset.field!] = dd.textContent ?? '';
    const tokens: HopDetailsView['tokens'] = {};
    for (const section of Array.from(details.querySelectorAll<HTMLElement>('[data-testid="token"]'))) {
      const header: Record<string, string> = {};
      const claims: Record<string, string> = {};
      for (const dd of Array.from(section.querySelectorAll<HTMLElement>('dd[data-header]'))) header[dd.dataset.header!] = dd.textContent ?? '';
      for (const dd of Array.from(section.querySelectorAll<HTMLElement>('dd[data-claim]'))) claims[dd.dataset.claim!] = dd.textContent ?? '';
      tokens[section.dataset.tokenName ?? ''] = { header, claims };
    }
    return { title: details.querySelector('[data-testid="details-title"]')?.textContent ?? '', fields, tokens };
  });
}

/** The recent-task list as shown: id, state badge and employee, newest first. */
export async function listedTasks(page: Page): Promise<{ id: string; state: string; employee: string }[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>('[data-testid="task"]')).map((task) => ({
      id: task.dataset.taskId ?? '',
      state: task.querySelector('[data-testid="task-state-badge"]')?.textContent ?? '',
      employee: task.querySelector('.task-employee')?.textContent ?? '',
    })),
  );
}

/** Whatever in the page's whole DOM looks like a raw JWT, a bearer or basic credential, or a named secret. */
export async function credentialsInDom(page: Page, alsoLookFor: readonly string[] = []): Promise<string[]> {
  const html = await page.evaluate(() => document.documentElement.outerHTML);
  const patterns = [
    /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g,
    /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
    /\b(?:Bearer|Basic)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{6,}/gi,
    /client_secret=(?!\[redacted\])[^&\s"<]+/gi,
  ];
  const found = patterns.flatMap((pattern) => html.match(pattern) ?? []);
  for (const secret of alsoLookFor) if (html.includes(secret)) found.push(secret);
  return found;
}
