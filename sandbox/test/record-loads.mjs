import { register } from 'node:module';

// `node --import ./record-loads.mjs …` with RECORD_LOADS=<file>: every module the process loads through the
// ES module loader (its own, the bundle's chunks, installed packages it imports) is appended to the file, a URL a
// line, as it loads. Tests read it to know what a service loaded before it served.
const file = process.env.RECORD_LOADS;
if (file) {
  const hooks = `
    import { appendFileSync } from 'node:fs';
    let file;
    export function initialize(data) { file = data.file; }
    export async function load(url, context, nextLoad) {
      appendFileSync(file, url + '\\n');
      return nextLoad(url, context);
    }
  `;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { file } });
}
