// Lanes under load: a bulk (advertising) campaign of --n messages is
// accepted as fast as batches go and drains at full speed, while
// transactional messages go at --rate a second; prints accept -> submit_sm
// latency percentiles of both lanes (read from the simulator's record of
// each submit) and how long the bulk took:
//   node bench/lanes.mjs --url URL --key K --sim http://127.0.0.1:18490 --n 200000 --rate 50
// One bulk message per batch goes to a sample number, so the bulk lane's
// latency is measured on a sample (one in --batch).
// With --admin KEY --route '{"name":…, settings}', the whole campaign is
// accepted first (its route pointing nowhere), then the route is put right
// and the transactional messages go while the campaign drains; without, they
// go while it is being accepted and drains. Every bulk phone gets a consent
// first (POST /v1/consents/import), before anything is measured.
import { client } from './client.mjs';
import { consentAll, histogramsOf, histQ } from './lib.mjs';

const opt = { url: 'http://127.0.0.1:8080', key: '', sim: 'http://127.0.0.1:8090', n: 200000,
              batch: 200, conc: 4, rate: 50, timeout: 600, admin: '', route: '' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option --${k}`);
  opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
const { request, metric } = client(opt);
const TX = '79161234567';
const SAMPLE = '79269999995';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* kaskad's histograms of the store (lib.mjs histogramsOf), to see where a
   stream message waits: its insert behind the writer's batches
   (kaskad_store_urgent_wait_seconds), the commits and their sizes. */
const HISTS = ['kaskad_store_urgent_wait_seconds', 'kaskad_store_commit_seconds', 'kaskad_store_batch_size'];
const histograms = async () => histogramsOf((await request('GET', `${opt.url}/metrics`)).body, HISTS);
const tag = Math.random().toString(36).slice(2, 8);
const created = new Map();       // text -> created_at (ms)
const submitted = new Map();     // text -> submit time at the simulator (ms)
const answered = [];             // transactional: POST -> 202 (committed), ms

/* The simulator keeps its last 100,000 submits: read the two numbers' often. */
let since = 0;
async function collect() {
  for (const dest of [TX, SAMPLE]) {
    const r = await request('GET', `${opt.sim}/submits?dest=${dest}&since=${since}&limit=100000`);
    const subs = JSON.parse(r.body);
    for (const s of (Array.isArray(subs) ? subs : subs.submits || [])) submitted.set(s.text, s.time);
  }
}

async function bulk() {
  let next = 0;
  async function worker() {
    while (next < opt.n) {
      const start = next;
      const count = Math.min(opt.batch, opt.n - start);
      next += count;
      const messages = [];
      for (let i = 0; i < count; i++) {
        const sample = i === 0;
        messages.push({ to: sample ? `+${SAMPLE}` : `+7926${String((start + i) % 1e6).padStart(6, '0')}5`,
                        text: `bulk ${tag} ${start + i}`, sender: 'KASKAD', class: 'advertising' });
      }
      const r = await request('POST', `${opt.url}/v1/messages/batch`, { messages });
      if (r.status !== 202 && r.status !== 200) throw new Error(`batch answered ${r.status}: ${r.body.slice(0, 200)}`);
      const res = JSON.parse(r.body).results || [];
      if (res[0] && res[0].created_at) created.set(messages[0].text, Date.parse(res[0].created_at));
    }
  }
  await Promise.all(Array.from({ length: opt.conc }, worker));
}

/* The bulk's phones (advertising needs a consent: recorded in bulk first). */
function* bulkPhones() {
  yield SAMPLE;
  for (let i = 0; i < Math.min(opt.n, 1e6); i++) yield `7926${String(i).padStart(6, '0')}5`;
}

async function main() {
  await consentAll(opt.url, opt.key, bulkPhones());
  const base = await metric('kaskad_sms_parts_submitted_total');
  let bulkDone = false, drained = false;
  let accepting;
  if (opt.route) {
    await bulk();
    bulkDone = true;
    accepting = Promise.resolve();
    const cfg = JSON.parse(opt.route);
    const key = opt.key;
    opt.key = opt.admin;
    const r = await request('PUT', `${opt.url}/v1/routes/${cfg.name}`, cfg);
    opt.key = key;
    if (r.status !== 200) throw new Error(`route answered ${r.status}: ${r.body.slice(0, 200)}`);
  } else {
    accepting = bulk().then(() => { bulkDone = true; });
  }
  const h0 = await histograms();
  const t0 = performance.now();
  const tAccepted = accepting.then(() => performance.now());
  // transactional at a fixed rate until the bulk has drained
  const pending = [];
  const interval = 1000 / opt.rate;
  let i = 0;
  const poller = (async () => {
    while (!drained) {
      await sleep(1000);
      await collect();
      const subs = await metric('kaskad_sms_parts_submitted_total');
      if (bulkDone && subs - base >= opt.n + i) drained = true;
      if (performance.now() - t0 > opt.timeout * 1000) throw new Error('timed out');
    }
  })();
  while (!drained) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 0) await sleep(wait);
    const text = `tx${bulkDone ? 'd' : 'a'} ${tag} ${i++}`;
    const sentAt = Date.now();
    pending.push(request('POST', `${opt.url}/v1/messages`, { to: `+${TX}`, text, sender: 'KASKAD', class: 'transactional' })
      .then((r) => {
        if (r.status !== 202) return;
        created.set(text, Date.parse(JSON.parse(r.body).created_at));
        answered.push(Date.now() - sentAt);
      }));
  }
  const tDrained = performance.now();
  const h1 = await histograms();
  await poller;
  await Promise.all(pending);
  await accepting;
  await sleep(1000);
  await collect();
  // txa: sent while the bulk was being accepted; txd: while it drained
  const lat = { txa: [], txd: [], bulk: [] };
  for (const [text, c] of created) {
    const s = submitted.get(text);
    if (s !== undefined) lat[text.split(' ')[0]].push(s - c);
  }
  lat.tx = [...lat.txa, ...lat.txd];
  const q = (a, p) => { a.sort((x, y) => x - y); return a[Math.min(a.length - 1, Math.floor(p * a.length))]; };
  const [uw0, uw1] = [h0.kaskad_store_urgent_wait_seconds, h1.kaskad_store_urgent_wait_seconds];
  const [cm0, cm1] = [h0.kaskad_store_commit_seconds, h1.kaskad_store_commit_seconds];
  const [bs0, bs1] = [h0.kaskad_store_batch_size, h1.kaskad_store_batch_size];
  const ms = (x) => (x === null ? null : x === Infinity ? 'inf' : +(x * 1000).toFixed(2));
  console.log(JSON.stringify({
    // the stream insert's wait in the writer (bucket upper bounds)
    insert_wait_p50_ms: ms(histQ(uw0, uw1, 0.5)), insert_wait_p99_ms: ms(histQ(uw0, uw1, 0.99)),
    commit_mean_ms: +(((cm1.sum - cm0.sum) / Math.max(1, cm1.count - cm0.count)) * 1000).toFixed(2),
    commit_p99_ms: ms(histQ(cm0, cm1, 0.99)),
    batch_mean: Math.round((bs1.sum - bs0.sum) / Math.max(1, bs1.count - bs0.count)),
    tx_accept_p50_ms: q(answered, 0.5), tx_accept_p99_ms: q(answered, 0.99),
    tx_n: lat.tx.length, tx_p50_ms: q(lat.tx, 0.5), tx_p99_ms: q(lat.tx, 0.99), tx_max_ms: q(lat.tx, 1),
    txd_n: lat.txd.length, txd_p50_ms: q(lat.txd, 0.5), txd_p99_ms: q(lat.txd, 0.99),
    txa_n: lat.txa.length, txa_p50_ms: q(lat.txa, 0.5), txa_p99_ms: q(lat.txa, 0.99),
    bulk_n: lat.bulk.length, bulk_p50_ms: q(lat.bulk, 0.5), bulk_p99_ms: q(lat.bulk, 0.99),
    bulk_accept_s: opt.route ? null : +(((await tAccepted) - t0) / 1000).toFixed(1),
    drain_s: +((tDrained - t0) / 1000).toFixed(1),
    bulk_per_s: Math.round(opt.n / ((tDrained - t0) / 1000)),
  }));
}

main().then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });
