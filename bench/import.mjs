// The import benchmark: a generated CSV of --rows rows (8 columns: phone in
// a mix of forms, name, email, city, orders, lists, consent, timezone; 1 %
// bad rows), posted to a fresh kaskad (release build) with
// POST /v1/contacts/import; the import is followed at GET /v1/imports/{id}
// until done. Prints one JSON line: rows, seconds (upload + import; the
// upload's alone in upload_seconds),
// rows_per_s, peak_rss_mib of kaskad (VmHWM), kaskad's CPU per row (all of
// it, its writer thread's, its CSV reader thread's, the reader's as last seen
// before it ended), the load average at the end, and the import's counts.
//   node bench/import.mjs --rows 1000000 [--bin bin/kaskad] [--keep file.csv]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kaskad, ROOT, sleep } from '../tests/e2e/lib/harness.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const ROWS = Number(arg('rows', 1000000));
const BIN = arg('bin', path.join(ROOT, 'bin/kaskad'));
const REGISTER = path.resolve(ROOT, '../shared/data/numbering-ru');

/* Writes the CSV in pieces; returns its path. */
export function generate(file, rows, seed = 1) {
  const fd = fs.openSync(file, 'w');
  let x = seed;
  const rnd = (n) => { x = (x * 1103515245 + 12345) % 2147483648; return x % n; };
  const forms = [
    (d) => `+7 (${d.slice(0, 3)}) ${d.slice(3, 6)}-${d.slice(6, 8)}-${d.slice(8)}`,
    (d) => `8${d}`,
    (d) => d,
    (d) => `7${d}`,
    (d) => `8 ${d.slice(0, 3)} ${d.slice(3, 6)} ${d.slice(6)}`,
  ];
  const cities = ['Moscow', 'Kazan', 'Omsk', '"Rostov, on Don"', 'Perm'];
  let out = 'phone,name,email,city,orders,lists,consent,timezone\n';
  for (let i = 0; i < rows; i++) {
    const d = `9${String(100000000 + i).slice(1)}${rnd(10)}`.slice(0, 10);
    let phone = forms[i % forms.length](d);
    let tz = i % 10 === 0 ? 'Asia/Yekaterinburg' : '';
    if (i % 100 === 50) phone = 'n/a';              // 1 % bad rows
    out += `${phone},Name ${i},u${i}@example.com,${cities[i % cities.length]},${rnd(20)},` +
      `${i % 3 ? 'base' : 'base|vip'},${i % 2 ? 'yes' : 'no'},${tz}\n`;
    if (out.length > 1 << 20) { fs.writeSync(fd, out); out = ''; }
  }
  fs.writeSync(fd, out);
  fs.closeSync(fd);
  return file;
}

/* CPU seconds (user + system) pid has used so far: the figure that holds
   on a shared machine, where rows/s depends on who else runs. */
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch { return 0; }
}

/* CPU seconds of pid's threads by name (kk-writer: the store's writer,
   kk-import: the CSV reader, which is gone once the import ends). */
function threadCpu(pid) {
  const out = {};
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const st = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(') ') + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
    }
  } catch { /* the process or a thread ended meanwhile */ }
  return out;
}

function peakRss(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : 0;
  } catch { return 0; }
}

async function main() {
  const file = arg('keep', path.join(os.tmpdir(), `kaskad-import-${process.pid}.csv`));
  if (!fs.existsSync(file)) generate(file, ROWS);
  const size = fs.statSync(file).size;
  const args = fs.existsSync(path.join(REGISTER, 'DEF-9xx.csv')) ? ['--numbering', REGISTER] : [];
  const k = new Kaskad({ bin: BIN, args: [...args, '--sync', 'normal'] });
  await k.start();
  try {
    const acct = await k.createAccount();
    const t0 = Date.now();
    const cpu0 = cpuSeconds(k.proc.pid);
    const writer0 = threadCpu(k.proc.pid)['kk-writer'] ?? 0;
    let parser = 0;
    const r = await fetch(`${k.url}/v1/contacts/import?list=bench&country=RU`, {
      method: 'POST', headers: { authorization: `Bearer ${acct.key}`, 'content-type': 'text/csv' },
      body: fs.createReadStream(file), duplex: 'half',
    });
    const started = await r.json();
    const uploaded = (Date.now() - t0) / 1000;
    if (r.status !== 202) throw new Error(`import refused: ${r.status} ${JSON.stringify(started)}`);
    let imp;
    for (;;) {
      imp = await k.call('GET', `/v1/imports/${started.id}`, { key: acct.key });
      parser = Math.max(parser, threadCpu(k.proc.pid)['kk-import'] ?? 0);
      if (imp.status !== 'running') break;
      await sleep(100);
    }
    const seconds = (Date.now() - t0) / 1000;
    const cpu = cpuSeconds(k.proc.pid) - cpu0;
    const writer = (threadCpu(k.proc.pid)['kk-writer'] ?? 0) - writer0;
    console.log(JSON.stringify({
      rows: imp.rows_total, bytes: size, seconds: +seconds.toFixed(2),
      upload_seconds: +uploaded.toFixed(2),
      rows_per_s: Math.round(imp.rows_total / seconds), peak_rss_mib: +peakRss(k.proc.pid).toFixed(1),
      cpu_us_per_row: +(cpu * 1e6 / imp.rows_total).toFixed(1),
      writer_us_per_row: +(writer * 1e6 / imp.rows_total).toFixed(1),
      parser_us_per_row: +(parser * 1e6 / imp.rows_total).toFixed(1),
      load: +os.loadavg()[0].toFixed(1),
      status: imp.status, created: imp.created, rejected: imp.rejected, duplicates: imp.duplicates,
    }));
  } finally {
    await k.stopClean();
    await k.cleanup();
    if (!process.argv.includes('--keep')) fs.rmSync(file, { force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
