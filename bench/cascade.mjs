// cascade.mjs - the cascade benchmark (Node, no dependencies). One run:
//
//   node bench/cascade.mjs [--n 100000] [--pending 100000] [--rate 10000] [--timeout 1s] [--sync full]
//
// Starts bin/kaskad-sim (SMSC, fake VK and Viber) and bin/kaskad on an empty
// data folder, points the channels at the simulator, then:
//
//  1. throughput: N messages with the cascade VK (wait read, `timeout`) ->
//     Viber (wait delivered, `timeout`) -> SMS, posted in batches of 500 at
//     `rate` messages per second; the simulator reaches 60% of recipients on
//     VK (all of whom read within 0.1-0.5 s) and 50% on Viber. Runs until every
//     cascade has ended; reports cascade steps (attempts started) per second
//     from the first POST to the last end, where the cascades ended (VK read,
//     Viber delivered, SMS), kaskad's peak RSS and the CPU seconds of each
//     thread (kaskad's loop and store writer, the simulator).
//  2. memory: a fresh kaskad; cascades whose VK step waits an hour for a read
//     that never comes. RSS is read with 10,000 and with `pending` cascades
//     waiting; the difference per extra cascade is what a waiting cascade
//     costs.
//
// Prints one JSON line with the figures. DEBUG=1 adds latency samples.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { metricsOf, parseOpts, requester, simWorld, sumOf, until as waitFor } from './lib.mjs';

const opt = parseOpts({ n: 100000, pending: 100000, sync: 'full', rate: 10000, timeout: '1s', port: 18580,
              sim_http: 18590, sim_smpp: 12876, sim_smtp: 12877 });
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const ADMIN = 'bench-admin-key';
const URL_K = `http://127.0.0.1:${opt.port}`;
const URL_S = `http://127.0.0.1:${opt.sim_http}`;
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const request = requester(agent, ADMIN);
const until = waitFor;

function rssKiB(pid, field = 'VmRSS') {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(s)[1]);
}

const metrics = () => metricsOf(request, URL_K);
const sum = sumOf;

async function stop(p) {
  if (p.exitCode !== null) return;
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
}

/* A fresh simulator and kaskad with the route, account and channels of the
   benchmarks (lib.mjs). */
const world = (channels) => simWorld(ROOT, request, opt, ADMIN, channels);

/* Posts count messages in batches of 500, at most `rate` messages per second
   (0: as fast as kaskad takes them). */
async function post(key, count, make, base = 0, rate = 0) {
  const B = 500;
  const t0 = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const from = next;
      next += B;
      if (rate > 0) {
        const due = t0 + (from / rate) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      const messages = [];
      for (let i = from; i < Math.min(from + B, count); i++) messages.push(make(base + i));
      await request('POST', `${URL_K}/v1/messages/batch`, { messages }, key);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

const phone = (i) => `79${String(100000000 + i)}`;

// ---- 1. throughput -----------------------------------------------------------
const w1 = await world({
  vk: { reach: 0.6, read: 1, deliver_ms: [10, 50], read_ms: [100, 500] },
  viber: { reach: 0.5, read: 0, deliver_ms: [50, 200] },
});
const cascade = [{ channel: 'vk', wait: 'read', timeout: opt.timeout },
  { channel: 'viber', wait: 'delivered', timeout: opt.timeout }, { channel: 'sms' }];
let peak = 0;
const sampler = setInterval(() => { try { peak = Math.max(peak, rssKiB(w1.kk.pid)); } catch { /* gone */ } }, 100);
const t0 = Date.now();
await post(w1.key, opt.n, (i) => ({ to: phone(i), vk_id: String(1000000 + i), text: `Заказ ${i} готов к выдаче`, cascade }),
  0, opt.rate);
const tAccepted = Date.now();
const mPosted = await metrics();
await until(async () => sum(await metrics(), 'kaskad_cascades_finished_total') >= opt.n, 'every cascade to end', 600000);
const t1 = Date.now();
clearInterval(sampler);
const m1 = await metrics();
const threads = {};
for (const pid of [w1.kk.pid, w1.sim.pid]) {
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const st = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    const name = `${pid === w1.kk.pid ? 'kaskad' : 'sim'}:${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))}:${tid}`;
    threads[name] = (Number(f[11]) + Number(f[12])) / 100;
  }
}

if (process.env.DEBUG) {
  const list = await request('GET', `${URL_K}/v1/messages?limit=1000`, undefined, w1.key);
  const d = { vk_send: [], vk_read: [], vk_late: 0, vk_timeout_unsent: 0, n: 0 };
  for (const x of list.messages.filter((_, i) => i % 5 === 0)) {
    const m = await request('GET', `${URL_K}/v1/messages/${x.id}`, undefined, w1.key);
    const a = m.attempts[0];
    d.n++;
    if (a.sent_at) d.vk_send.push(Date.parse(a.sent_at) - Date.parse(a.created_at));
    if (a.read_at) d.vk_read.push(Date.parse(a.read_at) - Date.parse(a.sent_at));
    if (a.read_at && m.attempts.length > 1) d.vk_late++;
    if (!a.sent_at && a.status === 'timeout') d.vk_timeout_unsent++;
  }
  console.error(JSON.stringify(await request('GET', `${URL_S}/channels/stats`)));
  const pct = (v, p) => v.sort((x, y) => x - y)[Math.floor(v.length * p)];
  console.error(JSON.stringify({ n: d.n, send_p50: pct(d.vk_send, 0.5), send_p99: pct(d.vk_send, 0.99),
    read_p50: pct(d.vk_read, 0.5), read_p99: pct(d.vk_read, 0.99), late: d.vk_late, unsent_timeouts: d.vk_timeout_unsent }));
  console.error([...m1].filter(([k]) => /channel|cascade/.test(k)).map((x) => x.join(' ')).join('\n'));
}
const started = sum(m1, 'kaskad_cascade_attempts_total{channel="vk",outcome="started"}') +
  sum(m1, 'kaskad_cascade_attempts_total{channel="viber",outcome="started"}') +
  sum(m1, 'kaskad_cascade_attempts_total{channel="sms",outcome="started"}');
const by = (ch, o, m = m1) => sum(m, `kaskad_cascade_attempts_total{channel="${ch}",outcome="${o}"}`);
const startedAt = (m) => by('vk', 'started', m) + by('viber', 'started', m) + by('sms', 'started', m);
const endedAt = (m) => ['vk', 'viber', 'sms'].reduce((a, ch) => a + by(ch, 'read', m) + by(ch, 'delivered', m)
  + by(ch, 'failed', m) + by(ch, 'timeout', m), 0);
const res = {
  n: opt.n,
  rate: opt.rate,
  timeout: opt.timeout,
  post_seconds: (tAccepted - t0) / 1000,
  steps_ended_while_posting_per_s: Math.round(endedAt(mPosted) / ((tAccepted - t0) / 1000)),
  seconds: (t1 - t0) / 1000,
  steps: started,
  steps_ended: endedAt(m1),
  steps_per_s: Math.round(started / ((t1 - t0) / 1000)),
  vk_read: by('vk', 'read'), viber_delivered: by('viber', 'delivered'), sms_started: by('sms', 'started'),
  peak_rss_mib: Math.round(peak / 1024),
  cpu_seconds: threads,
};
await stop(w1.kk);
await stop(w1.sim);
fs.rmSync(w1.data, { recursive: true, force: true });

// ---- 2. memory per waiting cascade -------------------------------------------
const w2 = await world({ vk: { reach: 1, read: 0, deliver_ms: [10, 10] } });
const waiting = [{ channel: 'vk', wait: 'read', timeout: '1h' }, { channel: 'sms' }];
const mk = (i) => ({ to: phone(i), vk_id: String(2000000 + i), text: `Ждём прочтения ${i}`, cascade: waiting });
const sentVk = async (n) => by2(await metrics()) >= n;
const by2 = (m) => sum(m, 'kaskad_cascade_attempts_total{channel="vk",outcome="sent"}');
const tp = Date.now();
await post(w2.key, 10000, mk);
const tpa = Date.now();
await until(() => sentVk(10000), '10k VK sends', 120000);
res.vk_sends_per_s = Math.round(10000 / ((Date.now() - tp) / 1000));
res.vk_accept_ms = tpa - tp;
await sleep(2000);
const rss10 = rssKiB(w2.kk.pid);
await post(w2.key, opt.pending - 10000, mk, 10000);
await until(() => sentVk(opt.pending), `${opt.pending} VK sends`, 600000);
await sleep(2000);
const rss100 = rssKiB(w2.kk.pid);
res.pending = opt.pending;
res.rss_10k_mib = Math.round(rss10 / 1024);
res.rss_pending_mib = Math.round(rss100 / 1024);
res.bytes_per_waiting_cascade = Math.round(((rss100 - rss10) * 1024) / (opt.pending - 10000));
await stop(w2.kk);
await stop(w2.sim);
fs.rmSync(w2.data, { recursive: true, force: true });
console.log(JSON.stringify(res));
process.exit(0);
