// pg.mjs - one run of the PostgreSQL benchmark (Node, no dependencies):
//
//   node bench/pg.mjs --mode sms|cascade --store sqlite|postgresql://... --nodes 1
//                     [--n 50000] [--rate 10000] [--timeout 1s] [--pg_pid PID] [--label NAME]
//                     [--stall S] [--lb 1|0] [--writers W]
//
// Starts bin/kaskad-sim and `nodes` kaskad processes (each on its own HTTP
// port and data folder, all on the one store; SQLite takes one node), the
// first configured through the API before the others start (they read the
// routes, accounts and keys at start). Then:
//   sms      N SMS posted in batches of 500 (4 at a time), the batches
//            round-robin over the nodes; ends when the nodes together hold a
//            DELIVRD receipt for every one: messages/s from the first POST.
//   cascade  N messages with the cascade VK (wait read, `timeout`) -> Viber
//            (wait delivered) -> SMS, offered at `rate` messages/s, round-robin;
//            ends when every cascade has ended: steps (attempts started)/s.
//            The simulator posts the VK statuses to the nodes in turn (as a
//            load balancer in front of them would); --lb 0: all to the first.
// CPU per message: utime+stime of each kaskad (/proc/PID/stat) and of the
// PostgreSQL server (the postmaster `pg_pid` with its reaped children and
// every live child), from the first POST to the end, in microseconds; also
// the simulator's, this load generator's and the machine's idle time.
// A batch answered 503 (the store refused it) is counted in `refused`; the
// nodes' failed commits and batches run again after a lock conflict are
// counted too (failed_commits, lock_retries), and the operations handed back
// to a later batch while another node held their message (handed_back).
// --stall S ends the run when no message has ended for S seconds (the time
// is then the last end's; the messages left are counted in `stuck`), instead
// of waiting up to 10 minutes for every one.
// Prints one JSON line (store: the label, else sqlite or postgresql).
// BENCH_LOG=file keeps what the processes log; KASKAD_BIN_DIR runs the
// binaries of another folder than bin/.
// --pg_stats 1 (PostgreSQL) adds what the server wrote per message over the
// same span, from psql: WAL bytes (pg_current_wal_lsn), the database's
// growth (pg_database_size), statements
// (pg_stat_statements, where the cluster loads it), rows inserted, updated
// (HOT or not) and deleted per table (pg_stat_user_tables); with --pg_wal
// DIR (the cluster's pg_wal, readable) also the WAL records per kind and
// the B-tree index entries written, from pg_waldump --stats=record.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { requester, until as waitFor } from './lib.mjs';

const opt = { mode: 'sms', store: 'sqlite', label: '', nodes: 1, n: 50000, rate: 10000, timeout: '1s', pg_pid: 0, stall: 0, lb: 1, writers: 0,
              pg_stats: 0, pg_wal: '',
              port: 18680, sim_http: 18690, sim_smpp: 12976, sim_smtp: 12977 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option --${k}`);
  opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (opt.store === 'sqlite' && opt.nodes !== 1) throw new Error('SQLite takes one node');
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const ADMIN = 'bench-admin-key';
const URLS = Array.from({ length: opt.nodes }, (_, i) => `http://127.0.0.1:${opt.port + i}`);
const URL_S = `http://127.0.0.1:${opt.sim_http}`;
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const request = requester(agent, ADMIN);
const until = (fn, what, ms = 60000) => waitFor(fn, what, ms, 20);

/* The sum over the nodes of the metrics whose name starts with prefix. */
async function metric(prefix) {
  let total = 0;
  for (const u of URLS) {
    for (const line of (await request('GET', `${u}/metrics`)).split('\n'))
      if (line.startsWith(prefix)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/* CPU ticks of pid: its own (and with reaped, its waited-for children's). */
function ticks(pid, reaped = false) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0);
  } catch { return 0; }
}
/* CPU ticks of pid's threads named name (e.g. kk-writer). */
function threadTicks(pid, name) {
  let t = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        if (fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === name) t += ticks(`${pid}/task/${tid}`);
      } catch { /* gone */ }
    }
  } catch { /* gone */ }
  return t;
}
/* The machine's idle ticks, all cores (/proc/stat: idle and iowait). */
function idleTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  return Number(f[4]) + Number(f[5]);
}
function pgTicks() {
  if (!opt.pg_pid) return 0;
  let t = ticks(opt.pg_pid, true);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === opt.pg_pid) t += ticks(d);
    } catch { /* gone */ }
  }
  return t;
}

/* The server's counters now (--pg_stats): WAL position, statements, and
   per table rows inserted, updated, HOT-updated and deleted. */
const PGBIN = (() => {
  try {
    return fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b))
      .map((v) => `/usr/lib/postgresql/${v}/bin`).pop();
  } catch { return ''; }
})();
const psql = (sql) => execFileSync(path.join(PGBIN, 'psql'), ['-XAtq', '-d', opt.store, '-c', sql]).toString().trim();
async function pgSnap() {
  await sleep(1200);   // the backends report their table counters within a second
  const stmts = (() => {
    try {
      return Number(psql("SELECT COALESCE(SUM(calls),0) FROM pg_stat_statements WHERE dbid=(SELECT oid FROM"
        + " pg_database WHERE datname=current_database()) AND query NOT LIKE '%pg_stat%'"));
    } catch { return null; }
  })();
  const tables = JSON.parse(psql("SELECT COALESCE(json_object_agg(relname, json_build_array(n_tup_ins,"
    + "n_tup_upd,n_tup_hot_upd,n_tup_del)),'{}') FROM pg_stat_user_tables"));
  const [lsn, size] = psql('SELECT pg_current_wal_lsn(), pg_database_size(current_database())').split('|');
  return { lsn, size: Number(size), stmts, tables };
}
/* What the server wrote per message between two snapshots. */
function pgWrote(a, b, n) {
  const per = (x) => Math.round((x / n) * 100) / 100;
  const wal = Number(psql(`SELECT pg_wal_lsn_diff('${b.lsn}','${a.lsn}')`));
  const rows = {};
  for (const [t, v] of Object.entries(b.tables)) {
    const o = a.tables[t] || [0, 0, 0, 0];
    const d = v.map((x, i) => x - o[i]);
    if (d.some((x) => x)) rows[t] = { ins: per(d[0]), upd: per(d[1]), hot: per(d[2]), del: per(d[3]) };
  }
  const out = { wal_bytes_per_msg: Math.round(wal / n), db_bytes_per_msg: Math.round((b.size - a.size) / n), statements_per_msg: b.stmts === null ? null : per(b.stmts - a.stmts), rows_per_msg: rows };
  if (opt.pg_wal) {
    const txt = execFileSync(path.join(PGBIN, 'pg_waldump'), ['-p', opt.pg_wal, '-s', a.lsn, '-e', b.lsn, '--stats=record'],
      { maxBuffer: 1 << 24 }).toString();
    const recs = {};
    for (const line of txt.split('\n')) {
      const m = /^(\S+)\s+(\d+)\s+\(/.exec(line);
      if (m && Number(m[2]) > 0 && m[1] !== 'Total') recs[m[1]] = per(Number(m[2]));
    }
    out.wal_records_per_msg = recs;
    out.btree_entries_per_msg = per(Object.entries(recs).filter(([k]) => /^Btree\/INSERT/.test(k))
      .reduce((t, [, v]) => t + v * n, 0));
  }
  return out;
}

const procs = [];
function start(bin, args, env = {}) {
  const p = spawn(path.join(process.env.KASKAD_BIN_DIR || path.join(ROOT, 'bin'), bin), args, { stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env } });
  let tail = '';
  p.stderr.on('data', (d) => {
    tail = (tail + d).slice(-2000);
    if (process.env.BENCH_LOG) fs.appendFileSync(process.env.BENCH_LOG, d);
  });
  p.on('exit', (code) => { if (code && !p.stopping) process.stderr.write(`${bin} exited ${code}: ${tail}\n`); });
  procs.push(p);
  return p;
}
async function stop(p) {
  if (p.exitCode !== null) return;
  p.stopping = true;
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
}
process.on('exit', () => { for (const p of procs) try { p.kill('SIGKILL'); } catch { /* gone */ } });

const datas = [];
function node(i) {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'kaskad-pgbench-'));
  datas.push(data);
  const store = opt.store === 'sqlite' ? [] : ['--store', opt.store, ...(opt.writers ? ['--store_writers', String(opt.writers)] : [])];
  return start('kaskad', ['--http', `127.0.0.1:${opt.port + i}`, '--data', data, ...store,
    '--outbound_allow', '127.0.0.1/32', '--log-level', 'warn', '--rate_key', '0', '--rate_account', '0',
    '--max_conns_per_ip', '0', '--hook_rate', '1000000'], { KASKAD_ADMIN_KEY: ADMIN });
}
const bound = async (u) => JSON.stringify(await request('GET', `${u}/v1/routes/sim`)).includes('"bound_ok":true');

const sim = start('kaskad-sim', ['--smpp', `127.0.0.1:${opt.sim_smpp}`, '--http', `127.0.0.1:${opt.sim_http}`,
  '--smtp', `127.0.0.1:${opt.sim_smtp}`, '--seed', '1', '--log-level', 'warn', '--channels', JSON.stringify({
    vk: { reach: 0.6, read: 1, deliver_ms: [10, 50], read_ms: [100, 500] },
    viber: { reach: 0.5, read: 0, deliver_ms: [50, 200] } })]);
const kks = [node(0)];
await until(() => request('GET', `${URLS[0]}/healthz`), 'kaskad');
await until(() => request('GET', `${URL_S}/healthz`), 'kaskad-sim');
await request('PUT', `${URLS[0]}/v1/routes/sim`, { host: '127.0.0.1', port: opt.sim_smpp, system_id: 'bench',
  sessions: 2, window: 200 });
const acc = await request('POST', `${URLS[0]}/v1/accounts`, { name: 'bench', senders: ['KASKAD'] });
const key = (await request('POST', `${URLS[0]}/v1/accounts/${acc.id}/keys`, {})).key;
if (opt.mode === 'cascade') {
  const vk = { base_url: URL_S, token: 'bench-vk-token', secret: 'bench-vk-secret', group_id: 1, confirmation: 'ok1' };
  await request('PUT', `${URLS[0]}/v1/channels/vk`, vk);
  await request('PUT', `${URLS[0]}/v1/channels/viber`, { base_url: URL_S, token: 'bench-viber-token' });
  await request('PUT', `${URLS[0]}/v1/prices`, { prices: { sms: 2.5, vk: 0.1, viber: 0.5 } });
  // steps fall through at any hour (at night the policy's quiet hours would
  // hold them until the morning)
  await request('PUT', `${URLS[0]}/v1/policy`, { quiet_hours: null }, key);
  // --lb 1: the VK statuses reach the nodes in turn, as through a load
  // balancer in front of them; else every one reaches the first node
  const hooks = (opt.lb ? URLS : URLS.slice(0, 1)).map((u) => `${u}/v1/hooks/vk/default`);
  await request('POST', `${URL_S}/apps`, { channel: 'vk', ...vk, callback_url: hooks.join(' ') });
}
for (let i = 1; i < opt.nodes; i++) kks.push(node(i));
for (const u of URLS) {
  await until(() => request('GET', `${u}/healthz`), 'kaskad');
  await until(() => bound(u), 'route bound');
}

const phone = (i) => `79${String(100000000 + i)}`;
const tag = Math.random().toString(36).slice(2, 8);
const cascade = [{ channel: 'vk', wait: 'read', timeout: opt.timeout },
  { channel: 'viber', wait: 'delivered', timeout: opt.timeout }, { channel: 'sms' }];
const make = opt.mode === 'sms'
  ? (i) => ({ to: `+7916${String(i % 1e6).padStart(6, '0')}5`, text: `bench ${tag} ${i}`, sender: 'KASKAD' })
  : (i) => ({ to: phone(i), vk_id: String(1000000 + i), text: `Заказ ${i} готов к выдаче`, cascade });
const rate = opt.mode === 'sms' ? 0 : opt.rate;
const done = opt.mode === 'sms'
  ? () => metric('kaskad_messages_delivered_total')
  : () => metric('kaskad_cascades_finished_total');

const B = 500;
// the batches' bodies are built before the clock starts: the load
// generator's own work is not what is measured (its CPU is reported apart)
const bodies = [];
for (let from = 0; from < opt.n; from += B) {
  const messages = [];
  for (let i = from; i < Math.min(from + B, opt.n); i++) messages.push(make(i));
  bodies.push({ n: messages.length, text: JSON.stringify({ messages }) });
}
const snap0 = opt.pg_stats && opt.store !== 'sqlite' ? await pgSnap() : null;
const base = await done();
const cpu0 = kks.map((k) => ticks(k.pid));
const pg0 = pgTicks();
const wr0 = kks.map((k) => threadTicks(k.pid, 'kk-writer'));
const sim0 = ticks(sim.pid), self0 = process.cpuUsage(), idle0 = idleTicks();
const t0 = Date.now();
let next = 0, accepted = 0, refused = 0;
async function worker() {
  while (next < opt.n) {
    const from = next;
    next += B;
    if (rate > 0) {
      const due = t0 + (from / rate) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    const body = bodies[from / B];
    try {
      const r = await request('POST', `${URLS[(from / B) % URLS.length]}/v1/messages/batch`, body.text, key);
      accepted += r.accepted;
    } catch (e) {
      if (!/ -> 503 /.test(e.message)) throw e;
      refused += body.n;   /* the store refused the batch: counted, not sent again */
    }
  }
}
await Promise.all([worker(), worker(), worker(), worker()]);
const tAcc = Date.now();
let t1;
let stuck = 0;
if (opt.stall > 0) {
  // ends when every message has ended, or when none has for `stall` seconds:
  // the time is then the last one's end, and the rest are counted as stuck
  let last = -1, lastAt = Date.now();
  for (;;) {
    const d = (await done()) - base;
    if (d !== last) { last = d; lastAt = Date.now(); }
    if (d >= accepted) { t1 = Date.now(); break; }
    if (Date.now() - lastAt > opt.stall * 1000) { t1 = lastAt; stuck = accepted - d; break; }
    await sleep(20);
  }
} else {
  await until(async () => (await done()) - base >= accepted, 'every message to end', 600000);
  t1 = Date.now();
}
const cpu = kks.map((k, i) => ticks(k.pid) - cpu0[i]);
const pgc = pgTicks() - pg0;
const wrc = kks.map((k, i) => threadTicks(k.pid, 'kk-writer') - wr0[i]);
const simc = ticks(sim.pid) - sim0, selfc = process.cpuUsage(self0), idlec = idleTicks() - idle0;
const steps = opt.mode === 'sms' ? accepted
  : await metric('kaskad_cascade_attempts_total{channel="vk",outcome="started"}') +
    await metric('kaskad_cascade_attempts_total{channel="viber",outcome="started"}') +
    await metric('kaskad_cascade_attempts_total{channel="sms",outcome="started"}');
const snap1 = snap0 ? await pgSnap() : null;
const us = (t) => Math.round((t / TICK) * 1e6 / accepted);
const res = {
  refused, stuck, mode: opt.mode, store: opt.label || (opt.store === 'sqlite' ? 'sqlite' : 'postgresql'), nodes: opt.nodes, n: accepted,
  seconds: (t1 - t0) / 1000, accepted_per_s: Math.round(accepted / ((tAcc - t0) / 1000)),
  per_s: Math.round(steps / ((t1 - t0) / 1000)), steps,
  cpu_us_per_msg_nodes: cpu.map(us), cpu_us_per_msg_kaskad: us(cpu.reduce((a, b) => a + b, 0)),
  cpu_us_per_msg_pg: opt.pg_pid ? us(pgc) : null,
  // of each node's: its writer thread's (the store's one connection)
  cpu_us_per_msg_writer: wrc.map(us),
  // the simulator's and this load generator's, and the machine's idle time
  // (all cores) over the same span, so that where the cores went adds up
  cpu_us_per_msg_sim: us(simc), cpu_us_per_msg_client: Math.round((selfc.user + selfc.system) / accepted),
  idle_us_per_msg: us(idlec),
  per_node_delivered: [],
  // commits that failed, and batches run again after another node's lock
  failed_commits: await metric('kaskad_store_errors_total'),
  lock_retries: await metric('kaskad_store_lock_retries_total'),
  // operations handed back to a later batch while another node held their message
  handed_back: await metric('kaskad_store_handed_back_total'),
};
if (snap0) Object.assign(res, pgWrote(snap0, snap1, accepted));
// per node: its commits' mean time (ms) and mean operations per commit
res.commit_ms_nodes = [];
res.batch_ops_nodes = [];
for (const u of URLS) {
  let v = 0;
  const m = {};
  for (const line of (await request('GET', `${u}/metrics`)).split('\n')) {
    const val = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith(opt.mode === 'sms' ? 'kaskad_messages_delivered_total' : 'kaskad_cascades_finished_total'))
      v += val;
    for (const k of ['kaskad_store_commit_seconds_sum', 'kaskad_store_commit_seconds_count', 'kaskad_store_batch_size_sum'])
      if (line.startsWith(k + ' ')) m[k] = val;
  }
  res.per_node_delivered.push(v);
  const c = m.kaskad_store_commit_seconds_count || 1;
  res.commit_ms_nodes.push(Math.round((m.kaskad_store_commit_seconds_sum || 0) * 1e4 / c) / 10);
  res.batch_ops_nodes.push(Math.round((m.kaskad_store_batch_size_sum || 0) / c));
}
if (opt.mode === 'cascade') res.cascades_per_s = Math.round(accepted / ((t1 - t0) / 1000));
for (const k of kks) await stop(k);
await stop(sim);
for (const d of datas) fs.rmSync(d, { recursive: true, force: true });
console.log(JSON.stringify(res));
process.exit(0);
