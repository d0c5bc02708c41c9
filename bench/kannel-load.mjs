// kannel-load.mjs - load for bench/kannel.sh (Node, no dependencies).
//
//   node bench/kannel-load.mjs MODE --sim http://127.0.0.1:19490 --n 20000 [options]
//
// Sends N messages and measures end-to-end messages/s the same way for every
// system: from the first request until kaskad-sim's /stats shows a receipt
// acknowledged (receipts_acked) for every one of them.
//
// MODE
//   kannel          GET /cgi-bin/sendsms on Kannel's smsbox, one message a
//                   request, --conc at once; dlr-mask=3 and a dlr-url that
//                   points at a small counting HTTP server this loader runs
//                   on --sink
//   kaskad-single   POST /v1/messages, one message a request, --conc at once
//   kaskad-batch    POST /v1/messages/batch, --batch messages a request,
//                   --bconc at once (the shape of bench/load.mjs e2e)
//
// Prints one JSON line: n, acked, seconds, accepted_per_s, e2e_per_s,
// complete (false when --timeout ended the run first: e2e_per_s is then the
// receipts acknowledged within the limit per second of it) and, for Kannel,
// dlr_callbacks (the dlr-url requests smsbox made by the end).
import http from 'node:http';

const mode = process.argv[2];
const opt = { url: '', key: '', sim: 'http://127.0.0.1:19490', n: 20000, conc: 64, batch: 500, bconc: 4,
              timeout: 300, sink: 19495, user: 'bench', pass: 'bench' };
for (let i = 3; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option --${k}`);
  opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
const agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(opt.conc, opt.bconc) });
const simAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, url, body, headers = {}, ag = agent) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ method, host: u.hostname, port: u.port, path: u.pathname + u.search, agent: ag,
      headers: { ...headers, ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}) } },
    (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function acked() {
  const r = await request('GET', `${opt.sim}/stats`, undefined, {}, simAgent);
  return JSON.parse(r.body).receipts_acked;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tag = Math.random().toString(36).slice(2, 8);
// Numbers end in 5: the simulator forces outcomes for ...0000 and ...0001.
const to = (i) => `+7916${String(i % 1e6).padStart(6, '0')}5`;
const text = (i) => `bench ${tag} ${i}`;

// The DLR sink for Kannel: counts the dlr-url requests by type (%d).
let dlrCalls = 0;
function startSink() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      dlrCalls++;
      res.end('ok');
    });
    srv.keepAliveTimeout = 30000;
    srv.listen(opt.sink, '127.0.0.1', () => resolve(srv));
  });
}

// One message (or batch) per call; resolves to the number accepted.
function sender() {
  const auth = { Authorization: `Bearer ${opt.key}` };
  if (mode === 'kannel') {
    const dlr = encodeURIComponent(`http://127.0.0.1:${opt.sink}/dlr?type=%d`);
    return { size: 1, send: async (i) => {
      const q = `username=${opt.user}&password=${opt.pass}&from=KASKAD&to=${encodeURIComponent(to(i))}` +
                `&text=${encodeURIComponent(text(i))}&dlr-mask=3&dlr-url=${dlr}`;
      const r = await request('GET', `${opt.url}/cgi-bin/sendsms?${q}`);
      if (r.status !== 202) throw new Error(`sendsms answered ${r.status}: ${r.body.slice(0, 200)}`);
      return 1;
    } };
  }
  if (mode === 'kaskad-single') {
    return { size: 1, send: async (i) => {
      const r = await request('POST', `${opt.url}/v1/messages`, { to: to(i), text: text(i), sender: 'KASKAD' }, auth);
      if (r.status !== 202) throw new Error(`POST /v1/messages answered ${r.status}: ${r.body.slice(0, 200)}`);
      return 1;
    } };
  }
  if (mode === 'kaskad-batch') {
    return { size: opt.batch, send: async (i, count) => {
      const messages = [];
      for (let j = 0; j < count; j++) messages.push({ to: to(i + j), text: text(i + j), sender: 'KASKAD' });
      const r = await request('POST', `${opt.url}/v1/messages/batch`, { messages }, auth);
      if (r.status !== 202) throw new Error(`batch answered ${r.status}: ${r.body.slice(0, 200)}`);
      return JSON.parse(r.body).accepted;
    } };
  }
  throw new Error('mode: kannel | kaskad-single | kaskad-batch');
}

async function main() {
  const s = sender();
  const sink = mode === 'kannel' ? await startSink() : null;
  const base = await acked();
  const t0 = performance.now();
  const deadline = t0 + opt.timeout * 1000;
  let next = 0, accepted = 0;
  async function worker() {
    while (next < opt.n && performance.now() < deadline) {
      const start = next;
      const count = Math.min(s.size, opt.n - start);
      next += count;
      const got = await s.send(start, count);
      accepted += got;
    }
  }
  await Promise.all(Array.from({ length: mode === 'kaskad-batch' ? opt.bconc : opt.conc }, worker));
  const tAcc = performance.now();
  let done = 0;
  while ((done = (await acked()) - base) < opt.n && performance.now() < deadline) await sleep(20);
  const t1 = Math.min(performance.now(), deadline);
  const complete = done >= opt.n;
  const secs = (t1 - t0) / 1000;
  const out = { mode, n: opt.n, accepted, acked: done, seconds: Number(secs.toFixed(2)),
                accepted_per_s: Math.round(accepted / ((tAcc - t0) / 1000)),
                e2e_per_s: Math.round(Math.min(done, opt.n) / secs), complete };
  if (sink) {
    out.dlr_callbacks_at_end = dlrCalls;
    for (let i = 0; i < 100 && dlrCalls < done; i++) await sleep(50);   // not timed
    out.dlr_callbacks = dlrCalls;
    sink.close();
  }
  console.log(JSON.stringify(out));
}

main().then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });
