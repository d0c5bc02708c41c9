// Accepts next to a mass deferral: a fresh kaskad (release build,
// sync=normal) takes transactional messages scheduled for one time two hours
// ahead (as a campaign deferred by quiet hours waits for 09:00: all due at
// once, all held in the dispatcher), in batches of 1,000 (4 requests in
// flight): 4,000 to warm up, --n measured, more up to --held, and --n
// measured again. Prints one JSON line: the accept rate of the first --n
// (4,000 held) and of the last (--held + 4,000 held). The SMS route leads
// nowhere: nothing is sent.
//   node bench/deferred.mjs --held 85000 --n 10000 [--bin bin/kaskad]
// (the dispatcher holds at most 100,000 jobs; more wait in the store)
import path from 'node:path';
import { Kaskad, ROOT, freePort } from '../tests/e2e/lib/harness.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const HELD = Number(arg('held', 85000));
const N = Number(arg('n', 10000));
const BIN = arg('bin', path.join(ROOT, 'bin/kaskad'));
const BATCH = 1000;
const PARALLEL = 4;

async function post(k, key, first, n, sendAt) {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const start = next;
      if (start >= n) return;
      next += BATCH;
      const messages = [];
      for (let i = start; i < Math.min(start + BATCH, n); i++)
        messages.push({ to: `7900${String(first + i).padStart(7, '0')}`, text: 'Ваш заказ 4721 собран',
          class: 'transactional', sender: 'KASKAD', send_at: sendAt });
      const r = await k.request('POST', '/v1/messages/batch', { key, body: { messages }, timeoutMs: 120000 });
      if (r.status !== 200 && r.status !== 202) throw new Error(`batch: ${r.status} ${r.text.slice(0, 200)}`);
      if (r.json.rejected) throw new Error(`batch: ${r.json.rejected} rejected: ${JSON.stringify(r.json.results.find((x) => x.error))}`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

async function timed(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main() {
  const k = new Kaskad({ bin: BIN, args: ['--sync', 'normal', '--quiet_hours', 'off'] });
  await k.start(60000);
  try {
    await k.putRoute('nowhere', { host: '127.0.0.1', port: await freePort(), system_id: 'x', password: 'x',
      system_type: '', sessions: 1, window: 10, max_sps: 0, data_coding: 0, reconnect_min_ms: 60000 });
    const acc = await k.createAccount('deferred');
    const sendAt = new Date(Date.now() + 2 * 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
    await post(k, acc.key, 9000000, BATCH * PARALLEL, sendAt);   // warm-up (4,000 held)
    const empty = await timed(() => post(k, acc.key, 0, N, sendAt));
    await post(k, acc.key, N, HELD - N, sendAt);
    const full = await timed(() => post(k, acc.key, HELD, N, sendAt));
    const rate = (ms) => Math.round(N / (ms / 1000));
    console.log(JSON.stringify({ held: HELD, n: N, msg_per_s_none_held: rate(empty),
      msg_per_s_held: rate(full), held_slower_pct: +((full / empty - 1) * 100).toFixed(1) }));
  } finally {
    await k.stopClean(60000);
    await k.cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
