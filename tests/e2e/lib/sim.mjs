// kaskad-sim for end-to-end tests: the fake messenger providers and the SMTP
// sink (its SMSC is not used here: SMS goes to the npm `smpp` SMSC of
// smsc.mjs), started on free loopback ports, with helpers for its control API
// and for pointing a kaskad's channels at it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fsSync from 'node:fs';
import path from 'node:path';
import { ROOT, SANITIZER_RE, freePort, sleep, waitUntil } from './harness.mjs';

/** KASKAD_SIM_BIN, else beside KASKAD_BIN, else the sanitizer build. */
export function simBin() {
  if (process.env.KASKAD_SIM_BIN) return path.resolve(ROOT, process.env.KASKAD_SIM_BIN);
  const k = process.env.KASKAD_BIN;
  if (k) return path.join(path.dirname(path.resolve(ROOT, k)), 'kaskad-sim');
  return path.join(ROOT, 'build/asan/kaskad-sim');
}

export class Sim {
  constructor() {
    this.proc = null;
    this.stderr = '';
    this.exit = null;
  }

  /** Starts it with the per-channel knobs `channels` and the random seed. */
  async start({ channels, seed = 7 } = {}) {
    // A port found free can be taken by another process before the simulator
    // binds it: then it starts again on other ports.
    for (let tries = 1; ; tries++) {
      try {
        return await this.startOnce(channels, seed);
      } catch (e) {
        if (tries === 3 || !/address already in use/i.test(this.stderr)) throw e;
        this.stderr = '';
        this.exit = null;
      }
    }
  }

  async startOnce(channels, seed) {
    const bin = simBin();
    if (!fsSync.existsSync(bin)) throw new Error(`kaskad-sim not found: ${bin}`);
    this.httpPort = await freePort();
    this.smtpPort = await freePort();
    const smppPort = await freePort();
    this.url = `http://127.0.0.1:${this.httpPort}`;
    const args = ['--http', `127.0.0.1:${this.httpPort}`, '--smtp', `127.0.0.1:${this.smtpPort}`,
      '--smpp', `127.0.0.1:${smppPort}`, '--seed', String(seed)];
    if (channels) args.push('--channels', JSON.stringify(channels));
    this.proc = spawn(bin, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:abort_on_error=0',
        UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1:halt_on_error=1',
      },
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => {
      this.stderr += d;
      if (process.env.KASKAD_SIM_LOG) fsSync.appendFileSync(process.env.KASKAD_SIM_LOG, d);
    });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => {
      this.exit = { code, signal };
      resolve(this.exit);
    }));
    await waitUntil(async () => {
      if (this.exit) throw new Error(`kaskad-sim exited: ${this.stderr.slice(-2000)}`);
      try {
        const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        return r.status === 200;
      } catch { return false; }
    }, 'kaskad-sim to start', 10000);
    return this;
  }

  async call(method, p, body) {
    const r = await fetch(this.url + p, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15000),
    });
    const text = await r.text();
    if (r.status >= 300) throw new Error(`sim ${method} ${p} -> ${r.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  }

  /** One request; body: object (JSON), string (as is, form unless a
      content-type is given). Never throws on a status: { status, text, json, headers }. */
  async req(method, p, { body, headers = {} } = {}) {
    const h = { ...headers };
    const hasType = () => Object.keys(h).some((k) => k.toLowerCase() === 'content-type');
    let payload;
    if (typeof body === 'string') {
      payload = body;
      if (!hasType()) h['content-type'] = 'application/x-www-form-urlencoded';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      if (!hasType()) h['content-type'] = 'application/json';
    }
    const r = await fetch(this.url + p, { method, headers: h, body: payload, signal: AbortSignal.timeout(15000) });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: r.status, text, json, headers: r.headers };
  }

  /** Sets per-channel knobs, e.g. { vk: { reach: 1, read: 0 } }. */
  config(knobs) { return this.call('POST', '/channels/config', knobs); }

  addApp(app) { return this.call('POST', '/apps', app); }

  /** Recorded sends of a channel (or all), oldest first; webhook registrations left out. */
  async requests(channel) {
    const q = channel ? `?channel=${channel}&limit=10000` : '?limit=10000';
    return (await this.call('GET', `/channels/requests${q}`)).requests
      .filter((r) => !/set_?webhook|getMe/i.test(r.path ?? ''));
  }

  stats() { return this.call('GET', '/channels/stats'); }

  /** Waits until no status callback is scheduled or in flight on any channel
      (every one drawn so far has reached its webhook). */
  async settled(timeoutMs = 20000) {
    return waitUntil(async () => {
      const s = await this.stats();
      return Object.values(s).every((c) => !c.callbacks_pending) ? s : null;
    }, 'the simulator\'s callbacks to settle', timeoutMs, 50);
  }

  /** SIGTERM; throws unless it exits 0 without a sanitizer report. */
  async stopClean() {
    const r = await this.stop(15000);
    const lines = this.stderr.split('\n');
    const bad = lines.findIndex((l) => SANITIZER_RE.test(l));
    if (bad >= 0) throw new Error(`sanitizer report:\n${lines.slice(Math.max(0, bad - 3), bad + 50).join('\n')}`);
    assert.deepEqual(r, { code: 0, signal: null }, this.stderr.slice(-3000));
    return r;
  }

  /** SIGTERM, and SIGKILL after killMs; the exit { code, signal }. */
  async stop(killMs = 10000) {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => { if (!this.exit) this.proc.kill('SIGKILL'); }, killMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

/** Tokens and secrets the operator's channel defaults use. */
export const APPS = {
  vk: { token: 'vk-operator-token-0001', secret: 'vk-secret-1', group_id: 4242, confirmation: 'c0nf1rm' },
  viber: { token: 'viber-operator-token-0001' },
  telegram: { token: '123456:ABCdefGHIjklMNOpqrSTUvwx', secret: 'tg_secret-1' },
  telegram_gateway: { token: 'gw-operator-token-0001' },
  whatsapp: { token: 'wa-operator-token-0001', secret: 'wa-app-secret-1', phone_number_id: '1055',
    verify_token: 'wa-verify-1' },
};

/**
 * Points the operator's defaults of every messenger channel (and e-mail) at
 * the simulator, registers the apps there as a provider's console would, and
 * returns the channel list as kaskad shows it.
 */
export async function pointChannelsAtSim(k, sim) {
  const base = sim.url;
  const put = (ch, body) => k.call('PUT', `/v1/channels/${ch}`, { body }, 200);
  await put('vk', { base_url: base, ...APPS.vk });
  await put('viber', { base_url: base, ...APPS.viber, sender: 'Kaskad' });
  await put('telegram', { base_url: base, ...APPS.telegram });
  await put('telegram_gateway', { base_url: base, ...APPS.telegram_gateway });
  await put('whatsapp', { base_url: base, ...APPS.whatsapp });
  await put('email', { smtp_url: `smtp://127.0.0.1:${sim.smtpPort}/?tls=off`, from: 'noreply@kaskad.test', sender: 'Kaskad' });
  const list = (await k.call('GET', '/v1/channels', {}, 200)).channels;
  const hook = (ch) => list.find((c) => c.channel === ch).webhook_url;
  await sim.addApp({ channel: 'vk', ...APPS.vk, callback_url: hook('vk') });
  await sim.addApp({ channel: 'whatsapp', ...APPS.whatsapp, callback_url: hook('whatsapp') });
  await sim.addApp({ channel: 'telegram_gateway', token: APPS.telegram_gateway.token });
  return list;
}

export { sleep };
