// Starts and stops kaskad for the end-to-end tests: a temporary data folder,
// a free loopback port, an operator key, and small HTTP helpers.
import { spawn, execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startSmsc } from './smsc.mjs';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

/** The daemon binary: KASKAD_BIN, else the sanitizer build, else bin/kaskad. */
export function kaskadBin() {
  if (process.env.KASKAD_BIN) return path.resolve(ROOT, process.env.KASKAD_BIN);
  return path.join(ROOT, 'build/asan/kaskad');
}

// Daemons and data folders still alive: removed if this process goes away
// before a test's own cleanup runs (a timeout, a crash of the runner).
const live = new Set();
const liveDirs = new Set();
const liveDbs = new Set();
function reap() {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
  for (const d of liveDirs) {
    try { fsSync.rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ }
  }
  for (const name of liveDbs) {
    try {
      execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', E2E_STORE, '-c', dropSql(name)],
        { stdio: 'ignore', timeout: 10000 });
    } catch { /* ignore */ }
  }
}
process.on('exit', reap);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    reap();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}

// KASKAD_E2E_STORE: a PostgreSQL server's URL (postgresql://user@host:port/db).
// When it is set, each Kaskad runs on a database of its own made on that
// server (from its first start to its cleanup), instead of SQLite in its data
// folder; the data folder still holds the lock and the other files.
export const E2E_STORE = process.env.KASKAD_E2E_STORE || '';

function dropSql(name) {
  return `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`;
}

function psql(sql) {
  return new Promise((resolve, reject) => {
    execFile('psql', ['-q', '-v', 'ON_ERROR_STOP=1', E2E_STORE, '-c', sql], { timeout: 20000 },
      (err, _out, stderr) => (err ? reject(new Error(`psql: ${sql}: ${stderr || err.message}`)) : resolve()));
  });
}

/** A fresh database on the E2E_STORE server: { name, url }. */
export async function newStoreDb() {
  const name = `kk_e2e_${randomBytes(6).toString('hex')}`;
  await psql(`CREATE DATABASE ${name}`);
  liveDbs.add(name);
  const u = new URL(E2E_STORE);
  u.pathname = `/${name}`;
  return { name, url: u.toString() };
}

export async function dropStoreDb(name) {
  await psql(dropSql(name));
  liveDbs.delete(name);
}

export const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/;

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Whether process pid listens on TCP port `port` (Linux /proc): true, false,
 * or null when it cannot tell. A port found free a moment ago may be taken
 * by another process before kaskad binds it; then that process answers the
 * health check, and the test would talk to a stranger.
 */
export function listensOn(pid, port) {
  try {
    const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    const inodes = new Set();
    for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text = '';
      try { text = fsSync.readFileSync(f, 'utf8'); } catch { continue; }
      for (const line of text.split('\n').slice(1)) {
        const c = line.trim().split(/\s+/);
        if (c.length > 9 && c[1].endsWith(hex) && c[3] === '0A') inodes.add(c[9]);
      }
    }
    for (const fd of fsSync.readdirSync(`/proc/${pid}/fd`)) {
      let link = '';
      try { link = fsSync.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) return true;
    }
    return false;
  } catch {
    return null;
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Polls fn() until it returns a truthy value; throws `what` at the deadline. */
export async function waitUntil(fn, what, timeoutMs = 10000, everyMs = 25) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(everyMs);
  }
}

export async function tempDir(prefix = 'kaskad-e2e-') {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Quiet hours from `from` to `to` minutes from now, in UTC. */
export function quietIn(from, to) {
  const d = new Date();
  const m = d.getUTCHours() * 60 + d.getUTCMinutes();
  const f = (x) => {
    const y = ((x % 1440) + 1440) % 1440;
    return `${String(Math.floor(y / 60)).padStart(2, '0')}:${String(y % 60).padStart(2, '0')}`;
  };
  return { from: f(m + from), to: f(m + to), timezone: 'Etc/UTC' };
}

/** Quiet hours from an hour ago to an hour from now, in UTC. */
export const quietNow = () => quietIn(-60, 60);

/** The senders createAccount registers unless told otherwise. */
export const DEFAULT_SENDERS = ['KASKAD', 'Kaskad', '79001234567'];

export class Kaskad {
  constructor(opts = {}) {
    this.bin = opts.bin ?? kaskadBin();
    this.args = opts.args ?? [];
    // The tests point channels and callbacks at loopback listeners, which
    // kaskad refuses unless allowed; `outboundAllow: null` leaves it unset.
    this.outboundAllow = opts.outboundAllow === undefined ? '127.0.0.1/32' : opts.outboundAllow;
    this.env = opts.env ?? {};
    this.adminKey = opts.adminKey ?? `adm_${randomBytes(12).toString('hex')}`;
    this.dataDir = opts.dataDir ?? null;
    this.ownsDataDir = !opts.dataDir;
    this.storeDb = null;     // { name, url } of its PostgreSQL database (E2E_STORE)
    this.proc = null;
    this.port = 0;
    this.url = null;
    this.stderr = '';        // stderr of the current run
    this.allStderr = '';     // stderr of every run, for diagnostics
    this.exit = null;        // { code, signal } of the last run
    this.runs = 0;
  }

  async start(timeoutMs = 20000) {
    if (!fsSync.existsSync(this.bin)) {
      throw new Error(`kaskad binary not found: ${this.bin} (set KASKAD_BIN or build it first)`);
    }
    if (!this.dataDir) this.dataDir = await tempDir();
    if (this.ownsDataDir) liveDirs.add(this.dataDir);
    if (E2E_STORE && !this.storeDb) this.storeDb = await newStoreDb();
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.port = await freePort();
      try {
        await this._spawn(timeoutMs);
        return this;
      } catch (e) {
        lastErr = e;
        if (!/address already in use|EADDRINUSE/i.test(this.stderr)) break;
      }
    }
    throw lastErr;
  }

  async _spawn(timeoutMs) {
    this.url = `http://127.0.0.1:${this.port}`;
    this.stderr = '';
    this.exit = null;
    this.runs++;
    if (this.runs > 1) this.allStderr += `----- start ${this.runs} -----\n`;
    const args = ['--data', this.dataDir, '--http', `127.0.0.1:${this.port}`,
      ...(this.outboundAllow ? ['--outbound_allow', this.outboundAllow] : []),
      ...(this.storeDb ? ['--store', this.storeDb.url] : []),
      // Quiet hours are off unless a test asks for them (the tests that are
      // about them set a policy or this setting): a run in the evening must
      // not hold every advertising send and cascade fall-through.
      ...(this.args.includes('--quiet_hours') ? [] : ['--quiet_hours', 'off']), ...this.args];
    const env = {
      ...process.env,
      KASKAD_ADMIN_KEY: this.adminKey,
      ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:abort_on_error=0',
      UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1:halt_on_error=1',
      ...this.env,
    };
    const proc = spawn(this.bin, args, { env, stdio: ['ignore', 'ignore', 'pipe'], cwd: this.dataDir });
    this.proc = proc;
    live.add(proc);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      this.stderr += d;
      this.allStderr += d;
    });
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        live.delete(proc);
        this.exit = { code, signal };
        resolve(this.exit);
      });
      proc.on('error', (e) => {
        // The process could not be started (or signalled); no 'exit' follows a failed spawn.
        this.stderr += `spawn error: ${e.message}\n`;
        if (proc.pid === undefined) {
          live.delete(proc);
          this.exit = { code: null, signal: null, error: e.message };
          resolve(this.exit);
        }
      });
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exit) {
        throw new Error(`kaskad exited during start-up (${JSON.stringify(this.exit)}):\n${this.tail()}`);
      }
      let healthy = false;
      try {
        const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        healthy = r.status === 200;
      } catch { /* not listening yet */ }
      if (healthy && listensOn(proc.pid, this.port) === false) {
        // Another process took the port: this kaskad cannot bind it (start() tries another).
        this.stderr += `EADDRINUSE: port ${this.port} answers, but not from this kaskad\n`;
        await this.kill9();
        throw new Error(`port ${this.port} was taken by another process`);
      }
      if (healthy) return;
      if (Date.now() > deadline) {
        await this.kill9();
        throw new Error(`kaskad not healthy within ${timeoutMs} ms:\n${this.tail()}`);
      }
      await sleep(25);
    }
  }

  running() {
    return this.proc && !this.exit;
  }

  /** The last lines of stderr of the current run. */
  tail(n = 40) {
    return this.stderr.split('\n').slice(-n).join('\n');
  }

  /** Throws when the daemon's stderr shows a sanitizer report. */
  checkSanitizer() {
    const lines = this.allStderr.split('\n');
    const i = lines.findIndex((l) => SANITIZER_RE.test(l));
    if (i >= 0) {
      throw new Error(`sanitizer report in kaskad's stderr:\n${lines.slice(Math.max(0, i - 5), i + 60).join('\n')}`);
    }
  }

  async kill9() {
    if (!this.running()) return this.exit;
    this.proc.kill('SIGKILL');
    return this.exited;
  }

  /** Sends a signal and waits for the exit; SIGKILL after timeoutMs. */
  async stop(signal = 'SIGTERM', timeoutMs = 20000) {
    if (!this.running()) return this.exit;
    this.proc.kill(signal);
    const t = setTimeout(() => { if (this.running()) this.proc.kill('SIGKILL'); }, timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  /** Stops with SIGTERM and asserts a clean exit: code 0, no sanitizer report. */
  async stopClean(timeoutMs = 20000) {
    const r = await this.stop('SIGTERM', timeoutMs);
    this.checkSanitizer();
    if (!r || r.code !== 0) {
      throw new Error(`kaskad did not exit cleanly on SIGTERM (${JSON.stringify(r)}):\n${this.tail()}`);
    }
    return r;
  }

  /** Starts again on the same data folder (a fresh port). */
  async restart(timeoutMs = 20000) {
    if (this.running()) throw new Error('restart: kaskad is still running');
    return this.start(timeoutMs);
  }

  async cleanup() {
    if (this.running()) await this.kill9();
    if (this.ownsDataDir && this.dataDir) {
      await fs.rm(this.dataDir, { recursive: true, force: true });
      liveDirs.delete(this.dataDir);
      this.dataDir = null;
    }
    if (this.storeDb) {
      await dropStoreDb(this.storeDb.name);
      this.storeDb = null;
    }
  }

  /**
   * One HTTP request. key: bearer key (undefined: the admin key; null: none).
   * body: an object (sent as JSON) or a string/Buffer (sent as is).
   * Returns { status, headers, text, json }.
   */
  async request(method, p, { key, body, headers = {}, timeoutMs = 15000 } = {}) {
    const h = { ...headers };
    const k = key === undefined ? this.adminKey : key;
    if (k !== null) h.authorization = `Bearer ${k}`;
    let payload;
    if (body !== undefined) {
      if (typeof body === 'string' || Buffer.isBuffer(body)) payload = body;
      else payload = JSON.stringify(body);
      if (!h['content-type']) h['content-type'] = 'application/json';
    }
    const r = await fetch(this.url + p, {
      method, headers: h, body: payload, signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: r.status, headers: r.headers, text, json };
  }

  /** Like request, but throws unless the status is one of `expect`. */
  async call(method, p, opts = {}, expect = [200, 201, 202]) {
    const r = await this.request(method, p, opts);
    const ok = Array.isArray(expect) ? expect.includes(r.status) : r.status === expect;
    if (!ok) throw new Error(`${method} ${p} -> ${r.status} ${r.text.slice(0, 500)}`);
    return r.json;
  }

  async healthy() {
    try {
      const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return r.status === 200;
    } catch {
      return false;
    }
  }

  /**
   * Creates an account and one API key for it: { id, key, name, callback_secret }.
   * The account's registered senders are DEFAULT_SENDERS (the ones the tests
   * send with) unless opts.senders says otherwise; opts.countries is its
   * country allow-list.
   */
  async createAccount(name = `acct-${randomBytes(3).toString('hex')}`, opts = {}) {
    const body = { name, senders: opts.senders ?? DEFAULT_SENDERS };
    if (opts.countries) body.countries = opts.countries;
    const acc = await this.call('POST', '/v1/accounts', { body }, 201);
    const k = await this.call('POST', `/v1/accounts/${acc.id}/keys`, { body: {} }, 201);
    return { ...acc, key: k.key };
  }

  async putRoute(name, cfg) {
    return this.call('PUT', `/v1/routes/${name}`, { body: cfg }, [200, 201]);
  }

  async route(name) {
    const r = await this.call('GET', '/v1/routes', {}, 200);
    const list = Array.isArray(r) ? r : (r.routes ?? r.data ?? []);
    return list.find((x) => x.name === name) ?? null;
  }

  /** Waits until the route reports at least `n` bound sessions. */
  async waitRouteBound(name, n = 1, timeoutMs = 10000) {
    return waitUntil(async () => {
      const r = await this.route(name);
      const bound = r?.state?.bound ?? r?.bound;
      return typeof bound === 'number' && bound >= n ? r : null;
    }, `route ${name} to have ${n} bound session(s)`, timeoutMs, 50);
  }

  /** POST /v1/messages; throws unless 202. */
  async send(key, msg) {
    return this.call('POST', '/v1/messages', { key, body: msg }, 202);
  }

  /** Records a consent to advertising for each phone (PUT /v1/consents). */
  async consent(key, phones) {
    for (const phone of phones) {
      await this.call('PUT', `/v1/consents/${phone}`, { key, body: { source: 'test' } }, [200, 201]);
    }
  }

  async message(key, id) {
    return this.call('GET', `/v1/messages/${id}`, { key }, 200);
  }

  /** Polls a message until its status is one of `statuses` (string or array). */
  async waitStatus(key, id, statuses, timeoutMs = 15000) {
    const want = Array.isArray(statuses) ? statuses : [statuses];
    let last = null;
    try {
      return await waitUntil(async () => {
        last = await this.message(key, id);
        return want.includes(last.status) ? last : null;
      }, `message ${id} to reach ${want.join('|')}`, timeoutMs, 50);
    } catch (e) {
      e.message += `; last seen: ${JSON.stringify(last)}`;
      throw e;
    }
  }

  /**
   * Waits until nothing is under way that could still send: each message of
   * `ids` finished, no SMS queued for a route or awaiting its submit_sm_resp
   * (so the SMSC has seen every submit kaskad made), no operation waiting for
   * the store. A test asserts that something was NOT sent only after a fact
   * like this one, never after a fixed sleep.
   */
  async settled(key, ids = [], timeoutMs = 20000) {
    let last = '';
    try {
      return await waitUntil(async () => {
        for (const id of ids) {
          const m = await this.message(key, id);
          if (!m.finished) { last = `message ${id} not finished (${m.status})`; return null; }
        }
        const m = await this.metrics();
        for (const name of ['kaskad_dispatch_queued', 'kaskad_smpp_inflight', 'kaskad_store_retrying',
          'kaskad_store_pending']) {
          if (metricSum(m, name)) { last = `${name} ${metricSum(m, name)}`; return null; }
        }
        return m;
      }, 'kaskad to settle', timeoutMs, 50);
    } catch (e) {
      e.message += `; last seen: ${last}`;
      throw e;
    }
  }

  /** GET /metrics parsed into Map(series -> number). */
  async metrics() {
    const r = await this.request('GET', '/metrics');
    if (r.status !== 200) throw new Error(`GET /metrics -> ${r.status}`);
    const m = new Map();
    for (const line of r.text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      m.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    m.text = r.text;
    return m;
  }
}

/** Sum of every series of a metric (any labels). */
export function metricSum(m, name) {
  let s = 0;
  let found = false;
  for (const [k, v] of m) {
    if (k === name || k.startsWith(`${name}{`)) {
      s += v;
      found = true;
    }
  }
  return found ? s : undefined;
}

/**
 * The common setup: an SMSC, a daemon, an account with a key and a route to
 * the SMSC (bound). Registers cleanup with the test context. Returns
 * { k, smsc, acct, key, route }. Call env.finish() at the end of the test to
 * stop kaskad with SIGTERM and check its exit and sanitizer output.
 */
export async function setup(t, {
  smsc: smscOpts = {}, route: routeCfg = {}, args = [], routeName = 'main', bin, waitBound = true,
  outboundAllow,
} = {}) {
  const smsc = await startSmsc(smscOpts);
  const k = new Kaskad({ args, bin, outboundAllow });
  const env = { k, smsc };
  t.after(async () => {
    try {
      if (k.running()) await k.kill9();
      if (t.passed === false || process.env.KASKAD_E2E_VERBOSE) {
        t.diagnostic('kaskad stderr (last lines):');
        for (const line of k.allStderr.split('\n').slice(-60)) t.diagnostic(`  ${line}`);
      }
    } finally {
      await k.cleanup();
      await smsc.close();
    }
  });
  await k.start();
  env.route = await k.putRoute(routeName, smsc.routeConfig(routeCfg));
  env.routeName = routeName;
  env.acct = await k.createAccount();
  env.key = env.acct.key;
  if (waitBound) {
    await smsc.waitFor(() => smsc.boundSessions().length >= (routeCfg.sessions ?? 1), 'kaskad to bind');
  }
  env.finish = async () => {
    // Errors the SMSC saw while kaskad was up (not those caused by the stop itself).
    const errors = [...smsc.errors];
    await k.stopClean();
    if (errors.length) throw new Error(`SMSC errors: ${errors.slice(0, 5).join('; ')}`);
  };
  return env;
}
