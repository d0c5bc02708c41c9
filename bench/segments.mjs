// The segments benchmark: a generated base (bench/import.mjs's CSV, --rows
// rows) imported into a fresh kaskad (release build; on PostgreSQL when
// KASKAD_E2E_STORE names a server), then: a segment's count (GET
// /v1/segments/{name}, the best and the worst of --runs), the export of the
// whole base and of the segment (GET /v1/contacts.csv, rows/s), and kaskad's
// peak RSS. Prints one JSON line.
//   node bench/segments.mjs --rows 1000000 [--runs 5] [--bin bin/kaskad]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kaskad, ROOT, sleep } from '../tests/e2e/lib/harness.mjs';
import { generate } from './import.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const ROWS = Number(arg('rows', 1000000));
const RUNS = Number(arg('runs', 5));
const BIN = arg('bin', path.join(ROOT, 'bin/kaskad'));
const FILTER = "city = 'Kazan' and orders >= 10 and list = 'vip'";

function peakRss(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : 0;
  } catch { return 0; }
}

/* Streams an export and counts its lines; seconds and rows. */
async function exportRows(k, key, query) {
  const t0 = Date.now();
  const r = await fetch(`${k.url}/v1/contacts.csv${query}`, { headers: { authorization: `Bearer ${key}` } });
  if (r.status !== 200) throw new Error(`export: ${r.status}`);
  let lines = 0;
  for await (const chunk of r.body) for (const b of chunk) if (b === 10) lines++;
  return { seconds: (Date.now() - t0) / 1000, rows: lines - 1 };
}

async function main() {
  const file = path.join(os.tmpdir(), `kaskad-segments-${process.pid}.csv`);
  generate(file, ROWS);
  const k = new Kaskad({ bin: BIN, args: ['--sync', 'normal'] });
  await k.start();
  try {
    const acct = await k.createAccount();
    const key = acct.key;
    const r = await fetch(`${k.url}/v1/contacts/import?list=bench&country=RU`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' },
      body: fs.createReadStream(file), duplex: 'half',
    });
    const started = await r.json();
    if (r.status !== 202) throw new Error(`import refused: ${r.status}`);
    let imp;
    for (;;) {
      imp = await k.call('GET', `/v1/imports/${started.id}`, { key });
      if (imp.status !== 'running') break;
      await sleep(200);
    }
    await k.call('PUT', '/v1/segments/bench', { key, body: { filter: FILTER } }, 200);
    const times = [];
    let count = 0;
    for (let i = 0; i < RUNS; i++) {
      const t0 = process.hrtime.bigint();
      const s = await k.call('GET', '/v1/segments/bench', { key }, 200);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      count = s.count;
    }
    const all = await exportRows(k, key, '');
    const seg = await exportRows(k, key, '?segment=bench');
    console.log(JSON.stringify({
      store: process.env.KASKAD_E2E_STORE ? 'postgresql' : 'sqlite',
      contacts: imp.created, filter: FILTER, count,
      count_ms_best: +Math.min(...times).toFixed(1), count_ms_worst: +Math.max(...times).toFixed(1),
      export_rows: all.rows, export_s: +all.seconds.toFixed(2),
      export_rows_per_s: Math.round(all.rows / all.seconds),
      segment_export_rows: seg.rows, segment_export_s: +seg.seconds.toFixed(2),
      peak_rss_mib: +peakRss(k.proc.pid).toFixed(1),
    }));
  } finally {
    await k.stopClean();
    await k.cleanup();
    fs.rmSync(file, { force: true });
  }
}

await main();
