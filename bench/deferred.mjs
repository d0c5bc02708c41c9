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
import { BATCH, PARALLEL, phone, postBatches, timed, withNowhere } from './batch.mjs';
import { arg } from './lib.mjs';

const HELD = Number(arg('held', 85000));
const N = Number(arg('n', 10000));

const post = (k, key, first, n, sendAt) => postBatches(k, key, n, (i) => ({ to: phone('7900', first + i),
  text: 'Ваш заказ 4721 собран', class: 'transactional', sender: 'KASKAD', send_at: sendAt }));

async function main() {
  await withNowhere(['--sync', 'normal', '--quiet_hours', 'off'], async (k) => {
    const acc = await k.createAccount('deferred');
    const sendAt = new Date(Date.now() + 2 * 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
    await post(k, acc.key, 9000000, BATCH * PARALLEL, sendAt);   // warm-up (4,000 held)
    const empty = await timed(() => post(k, acc.key, 0, N, sendAt));
    await post(k, acc.key, N, HELD - N, sendAt);
    const full = await timed(() => post(k, acc.key, HELD, N, sendAt));
    const rate = (ms) => Math.round(N / (ms / 1000));
    console.log(JSON.stringify({ held: HELD, n: N, msg_per_s_none_held: rate(empty),
      msg_per_s_held: rate(full), held_slower_pct: +((full / empty - 1) * 100).toFixed(1) }));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
