// lib.mjs - what the benchmark scripts share (Node, no dependencies).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* The value after --name on the command line, or dflt. */
export const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

/* A JSON request through agent with a bearer key (defaultKey unless given):
   resolves with the parsed body (or its text), rejects on a status >= 300. */
export function requester(agent, defaultKey) {
  return (method, url, body, key = defaultKey) => new Promise((resolve, reject) => {
    const u = new URL(url);
    // a string body goes as it is (a load generator's, built ahead)
    const data = body === undefined ? undefined
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request({ method, host: u.hostname, port: u.port, path: u.pathname + u.search, agent,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json',
                 ...(data ? { 'Content-Length': data.length } : {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode >= 300) reject(new Error(`${method} ${url} -> ${res.statusCode} ${text.slice(0, 300)}`));
        else resolve(text && text[0] === '{' ? JSON.parse(text) : text);
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/* Waits until fn() is truthy (every pause ms), at most ms. */
export async function until(fn, what, ms = 60000, pause = 50) {
  const end = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(pause);
  }
}

/* Records a consent to advertising for every phone of phones (an iterable of
   E.164 digits) under key, through POST /v1/consents/import in files of
   `rows` phones (the endpoint takes up to 50,000 a request, within the
   server's max_body). Resolves with the number recorded. */
export async function consentAll(url, key, phones, rows = 40000) {
  let recorded = 0, lines = [];
  const flush = async () => {
    if (!lines.length) return;
    const body = Buffer.from(`phone,source\n${lines.join('\n')}\n`);
    lines = [];
    const r = await fetch(`${url}/v1/consents/import`, { method: 'POST', body,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' },
      signal: AbortSignal.timeout(300000) });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`consents/import -> ${r.status} ${text.slice(0, 300)}`);
    const j = JSON.parse(text);
    if (j.rejected) throw new Error(`consents/import: ${j.rejected} rejected: ${JSON.stringify(j.errors[0])}`);
    recorded += j.recorded;
  };
  for (const p of phones) {
    lines.push(`${p},bench`);
    if (lines.length === rows) await flush();
  }
  await flush();
  return recorded;
}

/* kaskad's /metrics at url through request (a requester): a Map of each
   sample's name with its labels to its value. */
export async function metricsOf(request, url) {
  const text = await request('GET', `${url}/metrics`);
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/* The histograms named in names (cumulative buckets, sum, count) of a
   /metrics text: an object of name to { le, n, sum, count }. */
export function histogramsOf(text, names) {
  const out = {};
  for (const name of names) out[name] = { le: [], n: [], sum: 0, count: 0 };
  for (const line of text.split('\n')) {
    for (const name of names) {
      const h = out[name];
      const m = line.match(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`));
      if (m) { h.le.push(m[1] === '+Inf' ? Infinity : Number(m[1])); h.n.push(Number(m[2])); }
      else if (line.startsWith(`${name}_sum `)) h.sum = Number(line.split(' ')[1]);
      else if (line.startsWith(`${name}_count `)) h.count = Number(line.split(' ')[1]);
    }
  }
  return out;
}

/* The upper bound of the bucket that holds quantile p of what was added
   between histograms a and b (histogramsOf), or null when nothing was. */
export function histQ(a, b, p) {
  const total = b.count - a.count;
  if (total <= 0) return null;
  for (let i = 0; i < b.le.length; i++)
    if (b.n[i] - (a.n[i] ?? 0) >= p * total) return b.le[i];
  return Infinity;
}

/* The sum of the samples of m whose name begins with prefix. */
export const sumOf = (m, prefix) => [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

/* Starts root/bin/<bin> with args (its stderr read and dropped); every
   process started so is killed when Node exits. */
const started = [];
export function startBin(root, bin, args, env = {}) {
  const p = spawn(path.join(root, 'bin', bin), args, { stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env } });
  p.stderr.on('data', () => {});
  if (started.length === 0) process.on('exit', () => { for (const x of started) try { x.kill('SIGKILL'); } catch { /* gone */ } });
  started.push(p);
  return p;
}

/* A fresh kaskad-sim (ports opt.sim_smpp, opt.sim_http, opt.sim_smtp;
   channels its --channels) and kaskad (opt.port, opt.sync, an empty data
   folder, quiet hours off so that a cascade's later steps do not wait for
   the morning when a run falls at night, args added) of root/bin; the
   route `sim` (2 sessions, window
   200), an account `bench` with its key, VK and Viber pointed at the
   simulator, prices. request is a requester with the admin key.
   Resolves with { sim, kk, key, data }. */
export async function simWorld(root, request, opt, admin, channels, args = []) {
  const urlK = `http://127.0.0.1:${opt.port}`, urlS = `http://127.0.0.1:${opt.sim_http}`;
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'kaskad-bench-'));
  const sim = startBin(root, 'kaskad-sim', ['--smpp', `127.0.0.1:${opt.sim_smpp}`, '--http', `127.0.0.1:${opt.sim_http}`,
    '--smtp', `127.0.0.1:${opt.sim_smtp}`, '--seed', '1', '--channels', JSON.stringify(channels),
    '--log-level', 'warn']);
  const kk = startBin(root, 'kaskad', ['--http', `127.0.0.1:${opt.port}`, '--data', data, '--sync', opt.sync,
    '--outbound_allow', '127.0.0.1/32', '--log-level', 'warn', '--rate_key', '0', '--rate_account', '0', '--max_conns_per_ip', '0',
    '--hook_rate', '1000000', '--quiet_hours', 'off', ...args],
  { KASKAD_ADMIN_KEY: admin });
  await until(() => request('GET', `${urlK}/healthz`), 'kaskad');
  await until(() => request('GET', `${urlS}/healthz`), 'kaskad-sim');
  await request('PUT', `${urlK}/v1/routes/sim`, { host: '127.0.0.1', port: opt.sim_smpp, system_id: 'bench',
    sessions: 2, window: 200 });
  const acc = await request('POST', `${urlK}/v1/accounts`, { name: 'bench', senders: ['KASKAD'] });
  const key = (await request('POST', `${urlK}/v1/accounts/${acc.id}/keys`, {})).key;
  const vk = { base_url: urlS, token: 'bench-vk-token', secret: 'bench-vk-secret', group_id: 1, confirmation: 'ok1' };
  await request('PUT', `${urlK}/v1/channels/vk`, vk);
  await request('PUT', `${urlK}/v1/channels/viber`, { base_url: urlS, token: 'bench-viber-token' });
  await request('PUT', `${urlK}/v1/prices`, { prices: { sms: 2.5, vk: 0.1, viber: 0.5 } });
  await request('POST', `${urlS}/apps`, { channel: 'vk', ...vk, callback_url: `${urlK}/v1/hooks/vk/default` });
  await until(async () => (await request('GET', `${urlK}/v1/routes/sim`)).state?.bound >= 1 ||
    JSON.stringify(await request('GET', `${urlK}/v1/routes/sim`)).includes('"bound_ok":true'), 'route bound');
  return { sim, kk, key, data };
}

/* The options of a benchmark: defaults (an object) with `--name value` of
   the command line over them (numbers where the default is a number); an
   unknown name throws. */
export function parseOpts(defaults) {
  const opt = { ...defaults };
  for (let i = 2; i < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, '');
    if (!(k in opt)) throw new Error(`unknown option --${k}`);
    opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
  }
  return opt;
}

/* The CPU seconds (user + system) of each thread of process pid so far: a
   Map of thread id to seconds (the first, pid itself, is its event loop);
   empty once the process is gone. */
export function threadCpu(pid) {
  const out = new Map();
  let tids = [];
  try { tids = fs.readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const tid of tids) {
    let st;
    try { st = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'); } catch { continue; }
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), (Number(f[11]) + Number(f[12])) / 100);
  }
  return out;
}

/* The CPU seconds kaskad's threads spent between two threadCpu readings a
   and b of process pid: { total, loop (the event loop), busiest (the other
   thread that spent most: the store's writer), others }. */
export function cpuBetween(pid, a, b) {
  const d = [...b].map(([tid, s]) => [tid, s - (a.get(tid) ?? 0)]);
  const loop = d.find(([tid]) => tid === pid)?.[1] ?? 0;
  const rest = d.filter(([tid]) => tid !== pid).map(([, s]) => s).sort((x, y) => y - x);
  const r = (x) => +x.toFixed(2);
  return { total: r(loop + rest.reduce((x, y) => x + y, 0)), loop: r(loop), busiest: r(rest[0] ?? 0),
    others: r(rest.slice(1).reduce((x, y) => x + y, 0)) };
}
