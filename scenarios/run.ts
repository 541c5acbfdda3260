import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigOrReport } from '../sandbox/config.ts';
import { catalogue } from './catalogue.ts';
import { htmlReport, junitReport, terminalReport } from './report.ts';
import { selectScenarios, runSuite } from './suite.ts';

/** `npm run scenarios [-- <name part | tag:tag> ...]`: the catalogue, with a terminal, JUnit and HTML report. */

const USAGE = `Usage: npm run scenarios -- [--list] [--concurrency N] [--report-dir DIR] [filter ...]

A filter is part of a scenario's name ("denies") or a tag ("tag:browser").
With IDENTITY_BACKEND=auth0 the catalogue runs against your tenant, one scenario
at a time, and tells you on this terminal what to do on the employee's phone.`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        list: { type: 'boolean', default: false },
        concurrency: { type: 'string', default: '6' },
        'report-dir': { type: 'string', default: 'reports/scenarios' },
        help: { type: 'boolean', default: false },
      },
      allowPositionals: true,
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    console.log(USAGE);
    return 0;
  }
  const config = loadConfigOrReport();
  if (!config) return 2;
  const selected = selectScenarios(catalogue, args.positionals);
  if (args.values.list) {
    for (const s of selected) console.log(`${s.name}  [${s.tags.join(', ')}]\n    ${s.summary}`);
    return 0;
  }
  if (selected.length === 0) {
    console.error(`No scenario matches ${args.positionals.join(' ')}. Try --list.`);
    return 2;
  }
  const concurrency = Number(args.values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    console.error('--concurrency must be a whole number of at least 1');
    return 2;
  }

  const mode = config.identity.backend === 'local' ? 'the local tenant' : `Auth0 (${config.identity.issuer})`;
  console.log(`Running ${selected.length} scenario(s) against ${mode}…`);
  const started = performance.now();
  const observations = await runSuite(selected, {
    config,
    concurrency,
    onResult: (o) => console.log(`  ${o.status === 'passed' ? '✔' : o.status === 'failed' ? '✖' : '–'} ${o.scenario}`),
    prompt: (line) => console.log(`\n${line}\n`),
  });
  const totalMs = performance.now() - started;
  console.log(terminalReport(observations, totalMs, process.stdout.isTTY === true));

  const dir = resolve(args.values['report-dir']);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'junit.xml'), junitReport(observations, totalMs));
  writeFileSync(join(dir, 'report.html'), htmlReport(observations, selected, totalMs, new Date()));
  console.log(`Reports: ${join(dir, 'junit.xml')}, ${join(dir, 'report.html')}`);
  return observations.some((o) => o.status === 'failed') ? 1 : 0;
}

process.exitCode = await main();
