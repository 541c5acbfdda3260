import type { Observation, Scenario } from './scenario.ts';

/** The three ways a scenario run is reported: the terminal, JUnit XML for CI, and an HTML page. */

const MARK = { passed: '✔', failed: '✖', skipped: '–' } as const;

export function terminalReport(observations: Observation[], totalMs: number, color = false): string {
  const paint = (code: number, text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const lines: string[] = [''];
  for (const o of observations) {
    const mark = o.status === 'passed' ? paint(32, MARK.passed) : o.status === 'failed' ? paint(31, MARK.failed) : paint(33, MARK.skipped);
    lines.push(`${mark} ${o.scenario}  ${paint(2, `(${(o.durationMs / 1000).toFixed(1)} s)`)}`);
    if (o.status === 'skipped') {
      lines.push(`    skipped: ${o.skipReason}`);
      continue;
    }
    o.observed.forEach((observed, i) => {
      lines.push(`    observed: ${observed}`);
      if (o.status === 'failed' && o.expected[i] !== observed) lines.push(`    expected: ${o.expected[i]}`);
      if (o.answers[i]) lines.push(`    answer:   ${o.answers[i].replace(/\s+/g, ' ').slice(0, 160)}`);
    });
    for (const problem of o.problems) lines.push(paint(31, `    ✖ ${problem}`));
  }
  const count = (s: Observation['status']) => observations.filter((o) => o.status === s).length;
  lines.push('', `${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped (${(totalMs / 1000).toFixed(1)} s)`);
  return lines.join('\n');
}

function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export function junitReport(observations: Observation[], totalMs: number): string {
  const failures = observations.filter((o) => o.status === 'failed').length;
  const skipped = observations.filter((o) => o.status === 'skipped').length;
  const cases = observations.map((o) => {
    const open = `  <testcase classname="scenarios" name="${xml(o.scenario)}" time="${(o.durationMs / 1000).toFixed(3)}">`;
    const body =
      o.status === 'failed'
        ? `\n    <failure message="${xml(o.problems[0] ?? 'failed')}">${xml(
            [...o.problems, ...o.observed.map((v, i) => `observed: ${v}\nexpected: ${o.expected[i]}`)].join('\n'),
          )}</failure>\n  `
        : o.status === 'skipped'
          ? `\n    <skipped message="${xml(o.skipReason ?? '')}"/>\n  `
          : '';
    return `${open}${body}</testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuite name="scenarios" tests="${observations.length}" failures="${failures}" skipped="${skipped}" time="${(totalMs / 1000).toFixed(3)}">`,
    ...cases,
    '</testsuite>',
    '',
  ].join('\n');
}

export function htmlReport(observations: Observation[], scenarios: Scenario[], totalMs: number, when: Date): string {
  const summaryOf = new Map(scenarios.map((s) => [s.name, s]));
  const rows = observations
    .map((o) => {
      const s = summaryOf.get(o.scenario);
      const detail =
        o.status === 'skipped'
          ? `<p>Skipped: ${xml(o.skipReason ?? '')}</p>`
          : o.observed
              .map(
                (observed, i) =>
                  `<p><b>observed</b> ${xml(observed)}</p>${o.status === 'failed' ? `<p><b>expected</b> ${xml(o.expected[i] ?? '')}</p>` : ''}${
                    o.answers[i] ? `<p><b>answer</b> ${xml(o.answers[i].slice(0, 300))}</p>` : ''
                  }`,
              )
              .join('') + o.problems.map((p) => `<p class="problem">✖ ${xml(p)}</p>`).join('');
      return `<tr class="${o.status}"><td>${MARK[o.status]}</td><td><b>${xml(o.scenario)}</b><br><small>${xml(s?.summary ?? '')}</small><br><small>${xml(
        (s?.tags ?? []).join(', '),
      )}</small></td><td>${detail}</td><td>${(o.durationMs / 1000).toFixed(1)} s</td></tr>`;
    })
    .join('\n');
  const count = (st: Observation['status']) => observations.filter((o) => o.status === st).length;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Scenario report</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%}
td{border-top:1px solid #ddd;padding:.5rem;vertical-align:top}td:last-child{white-space:nowrap}tr.passed td:first-child{color:#2a7}
tr.failed td:first-child{color:#c22}tr.skipped{color:#888}.problem{color:#c22}p{margin:.2rem 0}
</style></head><body>
<h1>Scenario report</h1>
<p>${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped in ${(totalMs / 1000).toFixed(1)} s — ${xml(when.toISOString())}</p>
<table>${rows}</table>
</body></html>
`;
}
