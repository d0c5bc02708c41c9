// load.mjs - load generator for the benchmarks (Node, no dependencies).
//
//   node bench/load.mjs e2e --url http://127.0.0.1:8080 --key K --n 50000
//       posts N messages in batches and waits until kaskad reports every one
//       delivered (its /metrics), printing {"accepted_per_s","e2e_per_s"}.
//   node bench/load.mjs latency --url ... --key K --sim http://127.0.0.1:8090 --rate 100 --seconds 20
//       sends single messages at a fixed rate and reads the simulator's
//       record of each submit_sm: accept (created_at) -> submit_sm latency
//       percentiles, printing {"p50_ms","p99_ms","n"}.
//   node bench/load.mjs accept --url ... --key K --conc 64 --seconds 10
//       single POST /v1/messages from conc connections for the time given,
//       printing {"accepted_per_s","refused"} (202s a second; other answers).
import { client } from './client.mjs';

const mode = process.argv[2];
const opt = { url: 'http://127.0.0.1:8080', key: '', n: 50000, batch: 500, conc: 4,
              sim: 'http://127.0.0.1:8090', rate: 100, seconds: 20, timeout: 300 };
for (let i = 3; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option --${k}`);
  opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
const { request, metric } = client(opt);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tag = Math.random().toString(36).slice(2, 8);

async function e2e() {
  const base = await metric('kaskad_messages_delivered_total');
  const t0 = performance.now();
  let next = 0, accepted = 0;
  async function worker() {
    while (next < opt.n) {
      const start = next;
      const count = Math.min(opt.batch, opt.n - start);
      next += count;
      const messages = [];
      for (let i = 0; i < count; i++)
        messages.push({ to: `+7916${String((start + i) % 1e6).padStart(6, '0')}5`, text: `bench ${tag} ${start + i}`, sender: 'KASKAD' });
      const r = await request('POST', `${opt.url}/v1/messages/batch`, { messages });
      if (r.status !== 202) throw new Error(`batch answered ${r.status}: ${r.body.slice(0, 200)}`);
      accepted += JSON.parse(r.body).accepted;
    }
  }
  await Promise.all(Array.from({ length: opt.conc }, worker));
  const tAcc = performance.now();
  const deadline = Date.now() + opt.timeout * 1000;
  let done = 0;
  while ((done = (await metric('kaskad_messages_delivered_total')) - base) < accepted) {
    if (Date.now() > deadline) throw new Error(`only ${done} of ${accepted} delivered in time`);
    await sleep(20);
  }
  const t1 = performance.now();
  console.log(JSON.stringify({ n: accepted, accepted_per_s: Math.round(accepted / ((tAcc - t0) / 1000)),
                               e2e_per_s: Math.round(accepted / ((t1 - t0) / 1000)) }));
}

async function latency() {
  const sent = new Map();
  const interval = 1000 / opt.rate;
  const total = opt.rate * opt.seconds;
  const t0 = performance.now();
  const pending = [];
  for (let i = 0; i < total; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 0) await sleep(wait);
    const text = `lat ${tag} ${i}`;
    pending.push(request('POST', `${opt.url}/v1/messages`, { to: '+79161234567', text, sender: 'KASKAD' })
      .then((r) => { if (r.status === 202) sent.set(text, Date.parse(JSON.parse(r.body).created_at)); }));
  }
  await Promise.all(pending);
  await sleep(1000);
  const r = await request('GET', `${opt.sim}/submits?dest=79161234567&limit=100000`);
  const subs = JSON.parse(r.body);
  const lat = [];
  for (const s of (Array.isArray(subs) ? subs : subs.submits || [])) {
    const c = sent.get(s.text);
    if (c !== undefined) lat.push(s.time - c);
  }
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  console.log(JSON.stringify({ n: lat.length, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: lat[lat.length - 1] }));
}

async function accept() {
  const end = performance.now() + opt.seconds * 1000;
  let ok = 0, refused = 0, i = 0;
  async function worker() {
    while (performance.now() < end) {
      const n = i++;
      const r = await request('POST', `${opt.url}/v1/messages`,
        { to: `+7916${String(n % 1e6).padStart(6, '0')}3`, text: `acc ${tag} ${n}`, sender: 'KASKAD' });
      if (r.status === 202) ok++; else refused++;
    }
  }
  const t0 = performance.now();
  await Promise.all(Array.from({ length: opt.conc }, worker));
  console.log(JSON.stringify({ accepted_per_s: Math.round(ok / ((performance.now() - t0) / 1000)), refused }));
}

const modes = { e2e, latency, accept };
(modes[mode] ? modes[mode]() : Promise.reject(new Error('mode: e2e | latency | accept')))
  .then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });
