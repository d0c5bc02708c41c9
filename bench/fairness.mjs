// fairness.mjs - one account's flood does not slow another's accepts: account
// B posts single transactional messages at --rate a second for --seconds,
// first alone, then while account A posts batches of 1,000 (4 in flight) as
// fast as they are taken; prints B's POST -> 202 latency p50/p99 of both
// phases and A's accepted msg/s, from one kaskad (batch.mjs: its SMS route
// leads nowhere, so messages are stored and none is sent; the rate limits
// are off, so nothing but the store and the event loop stands between A and
// B). B's requests go from a thread of their own, so that building A's
// batches does not delay them in this process:
//   node bench/fairness.mjs [--bin bin/kaskad] [--rate 50] [--seconds 10] [--sync full]
//                           [--aclass transactional]
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BATCH, PARALLEL, phone, withNowhere } from './batch.mjs';
import { arg, histQ, histogramsOf } from './lib.mjs';

const RATE = Number(arg('rate', 50));
const SECONDS = Number(arg('seconds', 10));
const SYNC = arg('sync', 'full');
const ACLASS = arg('aclass', 'transactional');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Quantile p of the sorted numbers xs. */
const q = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];

/* B's n single POSTs to url under key at RATE a second, each timed from
   its send to its 202 (sent on schedule, not after the one before
   answers): the sorted latencies in ms. */
async function singles(url, key, first, n) {
  const t0 = performance.now(), pending = [];
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / RATE - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push((async () => {
      const s = performance.now();
      const r = await fetch(`${url}/v1/messages`, { method: 'POST', signal: AbortSignal.timeout(60000),
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: phone('7901', first + i), text: 'Код 4721', class: 'transactional',
          sender: 'KASKAD' }) });
      const text = await r.text();
      if (r.status !== 202) throw new Error(`single: ${r.status} ${text.slice(0, 200)}`);
      return performance.now() - s;
    })());
  }
  return (await Promise.all(pending)).sort((a, b) => a - b);
}

/* The store's commits between two reads of kaskad's histograms (lib.mjs):
   their mean ms, operations per commit, and the stream inserts' wait from
   queued to committed, p50 and p99 (a bucket's upper bound, ms; A's and
   B's together). */
const HISTS = ['kaskad_store_urgent_wait_seconds', 'kaskad_store_commit_seconds', 'kaskad_store_batch_size'];
const histograms = async (k) => histogramsOf((await k.request('GET', '/metrics')).text, HISTS);
function store(h0, h1) {
  const d = (name, f) => h1[name][f] - h0[name][f];
  const uw0 = h0.kaskad_store_urgent_wait_seconds, uw1 = h1.kaskad_store_urgent_wait_seconds;
  return { commit_mean_ms: +((d('kaskad_store_commit_seconds', 'sum') * 1000) /
                             d('kaskad_store_commit_seconds', 'count')).toFixed(1),
           batch_mean: Math.round(d('kaskad_store_batch_size', 'sum') / d('kaskad_store_batch_size', 'count')),
           insert_wait_p50_ms: histQ(uw0, uw1, 0.5) * 1000, insert_wait_p99_ms: histQ(uw0, uw1, 0.99) * 1000 };
}

/* singles() on a thread of its own. */
const inThread = (url, key, first, n) => new Promise((resolve, reject) => {
  const w = new Worker(new URL(import.meta.url), { workerData: { url, key, first, n },
    argv: process.argv.slice(2) });
  w.once('message', resolve);
  w.once('error', reject);
});

/* A's batches (phones from first on), PARALLEL in flight, until stop() is
   true: messages accepted. */
async function flood(k, key, first, stop) {
  let next = first, accepted = 0;
  const worker = async () => {
    while (!stop()) {
      const start = next;
      next += BATCH;
      const messages = [];
      for (let i = start; i < start + BATCH; i++)
        messages.push({ to: phone('7902', i), text: `Заказ ${i} собран`, class: ACLASS, sender: 'KASKAD' });
      const r = await k.request('POST', '/v1/messages/batch', { key, body: { messages }, timeoutMs: 120000 });
      if (r.status !== 200 && r.status !== 202) throw new Error(`batch: ${r.status} ${r.text.slice(0, 200)}`);
      accepted += BATCH - (r.json.rejected ?? 0);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return accepted;
}

async function main() {
  await withNowhere(['--sync', SYNC, '--rate_key', '0', '--rate_account', '0', '--max_conns_per_ip', '0'],
    async (k) => {
      const a = await k.createAccount('flood'), b = await k.createAccount('steady');
      // warm-up: both accounts' keys cached, the first pages of the tables
      // written (B: one second of its singles)
      let warm = false;
      await Promise.all([flood(k, a.key, 0, () => warm), (async () => { await sleep(1000); warm = true; })()]);
      await inThread(k.url, b.key, 2000000, RATE);
      const h0 = await histograms(k);
      const quiet = await inThread(k.url, b.key, 0, RATE * SECONDS);
      const h1 = await histograms(k);
      let done = false;
      const t0 = performance.now();
      const [loaded, n] = await Promise.all([
        inThread(k.url, b.key, 1000000, RATE * SECONDS).then((x) => { done = true; return x; }),
        flood(k, a.key, 5000000, () => done),
      ]);
      const secs = (performance.now() - t0) / 1000;
      const h2 = await histograms(k);
      const ms = (x) => +x.toFixed(1);
      console.log(JSON.stringify({ rate: RATE, seconds: SECONDS, b_n: quiet.length,
        b_quiet_p50_ms: ms(q(quiet, 0.5)), b_quiet_p99_ms: ms(q(quiet, 0.99)),
        b_flood_p50_ms: ms(q(loaded, 0.5)), b_flood_p99_ms: ms(q(loaded, 0.99)),
        a_class: ACLASS, a_msg_per_s: Math.round(n / secs), quiet: store(h0, h1), flood: store(h1, h2) }));
    });
}

if (!isMainThread) {
  const { url, key, first, n } = workerData;
  parentPort.postMessage(await singles(url, key, first, n));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
