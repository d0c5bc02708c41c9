// campaign.mjs - the campaign benchmark (Node, no dependencies). One run:
//
//   node bench/campaign.mjs [--n 1000000] [--sync normal] [--report_ms 100]
//                           [--root DIR] [--plan_only 1]
//
// --root: the checkout whose bin/ runs (default this one: another build to
// compare with); --plan_only 1: ends once it is planned; --perf FILE: records
// kaskad with `perf record` into FILE from the start to the end, its call
// graphs by --perf_call (fp: frame pointers, the default; dwarf,8192: through
// libraries built without them, at -F 300).
//
// Starts bin/kaskad-sim (SMSC, fake VK and Viber) and bin/kaskad on an empty
// data folder, points the channels at the simulator, then:
//
//  1. imports N contacts (phone, vk_id; every other one a viber_id) into the
//     list `bench` with POST /v1/contacts/import;
//  2. creates the campaign `bench` over that list: one template, the cascade
//     VK (wait read, 1 s) -> Viber (wait delivered, 1 s) -> SMS, class
//     service, no window and no rate (every recipient due at once), and
//     starts it. The simulator reaches 60% of recipients on VK (all of whom
//     read within 0.1-0.5 s) and 50% on Viber;
//  3. while it plans and runs, reads GET /v1/campaigns/bench/report one
//     request after another (a pause of report_ms between them) and records
//     how long each took (in a worker thread, whose clock this process's
//     garbage collections do not stop), and samples kaskad's RSS;
//  4. ends when every recipient has its message and every cascade has ended.
//
// Prints one JSON line: import_seconds, planning_seconds (start -> running),
// first_message_seconds (start -> the first recipient created: messages go
// out while the rest is planned), creating_seconds and messages_per_s
// (start -> every recipient created), run_seconds and steps_per_s (cascade
// attempts started, start -> every cascade ended), the same two from
// running on (_after_planning), steps_per_s_while_creating, the store's commits and
// operations per commit, kaskad's CPU seconds (its event loop, the busiest other
// thread: the store's writer, the rest) and CPU µs per step, report_ms p50/p99/max (and how
// many reads; report_max_at_s: when the slowest began, s from the start, and
// report_max_while_planning), peak_rss_mib (VmHWM) and rss_after_planning_mib, and the load
// average before and after.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { cpuBetween, metricsOf, parseOpts, requester, simWorld, sumOf, threadCpu, until } from './lib.mjs';

const opt = parseOpts({ n: 1000000, sync: 'normal', report_ms: 100, port: 18680, sim_http: 18690,
              sim_smpp: 12976, sim_smtp: 12977, root: '', plan_only: 0, perf: '', perf_call: 'fp' });
const ROOT = opt.root ? path.resolve(opt.root) : path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const ADMIN = 'bench-admin-key';
const URL_K = `http://127.0.0.1:${opt.port}`;
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const request = requester(agent, ADMIN);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function status(pid, field) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(s)[1]) / 1024;
  } catch { return 0; }
}
const loadavg = () => os.loadavg().map((x) => +x.toFixed(2));

const metrics = () => metricsOf(request, URL_K);
const sum = sumOf;
const started = (m) => ['vk', 'viber', 'sms'].reduce(
  (a, ch) => a + sum(m, `kaskad_cascade_attempts_total{channel="${ch}",outcome="started"}`), 0);


const load0 = loadavg();
const { sim, kk, key, data } = await simWorld(ROOT, request, opt, ADMIN, {
  vk: { reach: 0.6, read: 1, deliver_ms: [10, 50], read_ms: [100, 500] },
  viber: { reach: 0.5, read: 0, deliver_ms: [50, 200] },
});

// ---- 1. the base --------------------------------------------------------------
const phone = (i) => `79${String(100000000 + i)}`;
let csv = 'phone,vk_id,viber_id\n';
const parts = [];
for (let i = 0; i < opt.n; i++) {
  csv += `${phone(i)},${1000000 + i},${i % 2 ? `vb-${i}` : ''}\n`;
  if (csv.length > 1 << 20) { parts.push(csv); csv = ''; }
}
parts.push(csv);
const tImport = Date.now();
const imp = await new Promise((resolve, reject) => {
  const req = http.request(`${URL_K}/v1/contacts/import?list=bench&country=RU`, { method: 'POST', agent,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'text/csv' } }, (res) => {
    let t = '';
    res.on('data', (c) => { t += c; });
    res.on('end', () => (res.statusCode === 202 ? resolve(JSON.parse(t)) : reject(new Error(`import: ${res.statusCode} ${t}`))));
  });
  req.on('error', reject);
  for (const p of parts) req.write(p);
  req.end();
});
parts.length = 0;
let imported;
await until(async () => {
  imported = await request('GET', `${URL_K}/v1/imports/${imp.id}`, undefined, key);
  return imported.status !== 'running';
}, 'the import', 3600000, 200);
const importSeconds = (Date.now() - tImport) / 1000;

// ---- 2. the campaign ------------------------------------------------------------
await request('PUT', `${URL_K}/v1/templates/bench`, { text: 'Заказ готов к выдаче: скидка 10% на следующий' }, key);
await request('PUT', `${URL_K}/v1/campaigns/bench`, {
  audience: { list: 'bench' }, template: 'bench', class: 'service',
  cascade: [{ channel: 'vk', wait: 'read', timeout: '1s' }, { channel: 'viber', wait: 'delivered', timeout: '1s' },
    { channel: 'sms' }],
}, key);

// ---- 3. reports and memory while it goes ------------------------------------------
// The reads run in a worker thread: an isolate of its own, whose small heap
// is all its collector pauses, so that this process's collections (a
// mark-compact of the base's 100 MB here takes 30-50 ms) are not counted in
// a read's time. Each read: [when it began (ms since the epoch), ms].
const READER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const reads = [];
let stop = false;
parentPort.on('message', () => { stop = true; });
const get = () => new Promise((resolve, reject) => {
  const req = http.get(workerData.url, { agent, headers: { Authorization: 'Bearer ' + workerData.key } },
    (res) => { res.on('data', () => {}); res.on('end', () => res.statusCode < 300 ? resolve()
      : reject(new Error('report: ' + res.statusCode))); });
  req.on('error', reject);
});
(async () => {
  while (!stop) {
    const at = Date.now(), t = process.hrtime.bigint();
    await get();
    reads.push([at, Number(process.hrtime.bigint() - t) / 1e6]);
    await new Promise((r) => setTimeout(r, workerData.pause));
  }
  parentPort.postMessage(reads);
})();
`;
let peakSampled = 0, t0 = 0, tRunning = 0;
const readerWorker = new Worker(READER, { eval: true,
  workerData: { url: `${URL_K}/v1/campaigns/bench/report`, key, pause: opt.report_ms } });
const readerDone = new Promise((resolve, reject) => {
  readerWorker.once('message', resolve);
  readerWorker.once('error', reject);
});
let lat = [], slowest = { ms: -1, at: 0, planning: false };   // the slowest read, when it began (s from the start)
/* Stops the reads; their times into lat and slowest. */
async function readsEnd() {
  readerWorker.postMessage('stop');
  const reads = await readerDone;
  await readerWorker.terminate();
  lat = reads.map((r) => r[1]);
  for (const [at, ms] of reads)
    if (ms > slowest.ms)
      slowest = { ms, at: t0 && at >= t0 ? (at - t0) / 1000 : null,
                  planning: !!t0 && at >= t0 && (!tRunning || at < tRunning) };
}
const sampler = setInterval(() => { peakSampled = Math.max(peakSampled, status(kk.pid, 'VmRSS')); }, 100);

const camp = () => request('GET', `${URL_K}/v1/campaigns/bench`, undefined, key);
const mStart = await metrics();
let perf = null;
if (opt.perf) {
  const freq = opt.perf_call === 'fp' ? [] : ['-F', '300'];
  perf = spawn('perf', ['record', ...freq, '--call-graph', opt.perf_call, '-o', opt.perf, '-p', String(kk.pid)],
    { stdio: 'ignore' });
  await sleep(500);
}
const cpu0 = threadCpu(kk.pid);
t0 = Date.now();
await request('POST', `${URL_K}/v1/campaigns/bench/start`, undefined, key);
let c, tFirst = 0;
await until(async () => {
  c = await camp();
  if (!tFirst && (c.by_recipient_status?.created ?? 0) > 0) tFirst = Date.now();
  return c.status !== 'planning' && c.status !== 'draft';
}, 'the plan', 3600000, 20);
tRunning = Date.now();
const m0Created = c.by_recipient_status?.created ?? 0;
const rssPlanned = status(kk.pid, 'VmRSS');
const m0 = await metrics();
if (opt.plan_only) {
  await readsEnd();
  clearInterval(sampler);
  console.log(JSON.stringify({ n: opt.n, import_seconds: importSeconds, planning_seconds: (tRunning - t0) / 1000,
    first_message_seconds: tFirst ? (tFirst - t0) / 1000 : null, report_reads: lat.length,
    report_ms_max: Math.max(...lat).toFixed(1), rss_after_planning_mib: Math.round(rssPlanned),
    peak_rss_mib: Math.round(Math.max(status(kk.pid, 'VmHWM'), peakSampled)), load_before: load0, load_after: loadavg() }));
  for (const p of [kk, sim]) {
    p.kill('SIGKILL');
    await new Promise((r) => (p.exitCode !== null ? r() : p.on('exit', r)));
  }
  fs.rmSync(data, { recursive: true, force: true });
  process.exit(0);
}
await until(async () => {
  c = await camp();
  if (!tFirst && (c.by_recipient_status?.created ?? 0) > 0) tFirst = Date.now();
  return c.status === 'done';
}, 'every recipient created', 3600000, 100);
const tCreated = Date.now();
const mCreated = await metrics();
const created = c.by_recipient_status?.created ?? 0;
await until(async () => sum(await metrics(), 'kaskad_cascades_finished_total') >= created,
  'every cascade to end', 3600000, 200);
const tEnd = Date.now();
const cpu1 = threadCpu(kk.pid);
if (perf) {
  perf.kill('SIGINT');
  await new Promise((r) => (perf.exitCode !== null ? r() : perf.on('exit', r)));
}
const m1 = await metrics();
await readsEnd();
clearInterval(sampler);
const peak = Math.max(status(kk.pid, 'VmHWM'), peakSampled);

const pct = (v, p) => { const s = [...v].sort((a, b) => a - b); return +s[Math.min(s.length - 1, Math.floor(s.length * p))].toFixed(1); };
const res = {
  n: opt.n,
  sync: opt.sync,
  imported: imported.created ?? imported.rows_ok ?? imported.rows_total,
  import_seconds: importSeconds,
  recipients: c.recipients,
  created,
  by_recipient_status: c.by_recipient_status,
  planning_seconds: (tRunning - t0) / 1000,
  first_message_seconds: tFirst ? (tFirst - t0) / 1000 : null,
  creating_seconds: (tCreated - t0) / 1000,
  messages_per_s: Math.round(created / ((tCreated - t0) / 1000)),
  run_seconds: (tEnd - t0) / 1000,
  steps: started(m1) - started(mStart),
  steps_per_s: Math.round((started(m1) - started(mStart)) / ((tEnd - t0) / 1000)),
  messages_per_s_after_planning: Math.round((created - m0Created) / ((tCreated - tRunning) / 1000)),
  steps_per_s_after_planning: Math.round((started(m1) - started(m0)) / ((tEnd - tRunning) / 1000)),
  steps_per_s_while_creating: Math.round((started(mCreated) - started(m0)) / ((tCreated - tRunning) / 1000)),
  commits: sum(m1, 'kaskad_store_batch_size_count') - sum(mStart, 'kaskad_store_batch_size_count'),
  ops_per_commit: +((sum(m1, 'kaskad_store_batch_size_sum') - sum(mStart, 'kaskad_store_batch_size_sum')) /
    (sum(m1, 'kaskad_store_batch_size_count') - sum(mStart, 'kaskad_store_batch_size_count'))).toFixed(1),
  cpu_seconds: cpuBetween(kk.pid, cpu0, cpu1),
  cpu_us_per_step: Math.round(cpuBetween(kk.pid, cpu0, cpu1).total * 1e6 / (started(m1) - started(mStart))),
  report_reads: lat.length,
  report_ms_p50: pct(lat, 0.5),
  report_ms_p99: pct(lat, 0.99),
  report_ms_max: pct(lat, 1),
  report_max_at_s: slowest.at === null ? null : +slowest.at.toFixed(1),
  report_max_while_planning: slowest.planning,
  peak_rss_mib: Math.round(peak),
  rss_after_planning_mib: Math.round(rssPlanned),
  load_before: load0,
  load_after: loadavg(),
};
console.log(JSON.stringify(res));
for (const p of [kk, sim]) {
  p.kill('SIGTERM');
  await new Promise((r) => (p.exitCode !== null ? r() : p.on('exit', r)));
}
fs.rmSync(data, { recursive: true, force: true });
process.exit(0);
