// The policy chain's cost: advertising messages posted in batches of 1,000
// (4 requests in flight) to a fresh kaskad (release build, sync=normal)
// under two accounts in the same run, alternating chunks of --chunk
// messages (the order flips every round, after a warm-up of each): "on" has every rule of the accept path (quiet hours outside the
// current hour, prohibited content with 10 own words, a frequency cap, no
// foreign messengers), "off" has them all switched off. Every message goes
// to its own phone, so the "on" account's caps end up holding --n phones.
// Every phone gets a consent first, in bulk (POST /v1/consents/import; its
// rate is printed too). The SMS route leads nowhere: messages are stored, none is sent. Prints
// one JSON line: msg/s for each, how much slower "on" is, the phones the
// caps hold and kaskad's peak RSS.
//   node bench/policy.mjs --n 1000000 --chunk 50000 [--bin bin/kaskad]
import fs from 'node:fs';
import { BATCH, PARALLEL, phone, postBatches, timed, withNowhere } from './batch.mjs';
import { arg, consentAll } from './lib.mjs';

const N = Number(arg('n', 1000000));
const CHUNK = Number(arg('chunk', 50000));
const TEXT = 'Только до воскресенья: скидка 20% на зимние куртки и ботинки в наших магазинах. Ждём вас!';

function peakRss(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : 0;
  } catch { return 0; }
}

/** Quiet hours that do not cover the next hours (UTC), so every message takes the whole path. */
function quietLater() {
  const h = (new Date().getUTCHours() + 6) % 24;
  return { from: `${String(h).padStart(2, '0')}:00`, to: `${String((h + 2) % 24).padStart(2, '0')}:00`, timezone: 'Etc/UTC' };
}

const post = (k, key, first, n, prefix) => postBatches(k, key, n, (i) => ({ to: phone(prefix, first + i),
  text: TEXT, class: 'advertising', sender: 'KASKAD' }));

async function main() {
  await withNowhere(['--sync', 'normal'], async (k) => {
    const on = await k.createAccount('on');
    const off = await k.createAccount('off');
    // --same off: both accounts off (how far apart two equal halves measure)
    // --only caps|content|quiet|foreign: that rule alone on the "on" account
    const only = arg('only', '');
    if (only) await k.call('PUT', '/v1/policy', { key: on.key, body: {
      quiet_hours: only === 'quiet' ? quietLater() : null,
      caps: only === 'caps' ? [{ class: 'advertising', max: 2, per: '7d' }] : [],
      no_foreign_messengers: only === 'foreign',
      content_rules: only === 'content' ? { words: ['распродаж*', 'ликвидац*'] } : { categories: { alcohol: false,
        tobacco: false, weapons: false, medicines: false, gambling: false, pyramids: false }, words: [] } } }, 200);
    else if (arg('same', '') !== 'off') await k.call('PUT', '/v1/policy', { key: on.key, body: {
      quiet_hours: quietLater(), caps: [{ class: 'advertising', max: 2, per: '7d' }],
      content_rules: { words: arg('words', '10') === '0' ? [] : ['распродаж*', 'ликвидац*', 'тотальн*',
        'мегаскидк*', 'суперцен*', 'халяв*', 'бесплатн*', 'акци* дня', 'только сегодня', 'черн* пятниц*'] },
      no_foreign_messengers: true } }, 200);
    const allOff = { quiet_hours: null, caps: [], no_foreign_messengers: false,
      content_rules: { categories: { alcohol: false, tobacco: false, weapons: false, medicines: false,
        gambling: false, pyramids: false }, words: [] } };
    await k.call('PUT', '/v1/policy', { key: off.key, body: allOff }, 200);
    // (the default policy's quiet hours would defer the "on" account's messages at night)
    if (arg('same', '') === 'off') await k.call('PUT', '/v1/policy', { key: on.key, body: allOff }, 200);
    // Advertising needs a consent: every phone of both accounts gets one
    // first, in bulk (not measured).
    function* phones(prefix) {
      for (let i = 0; i < N; i++) yield phone(prefix, i);
      for (let i = 0; i < 2 * BATCH * PARALLEL; i++) yield phone(prefix, 9000000 + i);
    }
    const tc = Date.now();
    for (const [acc, prefix] of [[on, '7900'], [off, '7910']]) await consentAll(k.url, acc.key, phones(prefix));
    const consentS = (Date.now() - tc) / 1000;
    // Warm-up (not measured): the first batches of each account.
    await post(k, on.key, 9000000, 2 * BATCH * PARALLEL, '7900');
    await post(k, off.key, 9000000, 2 * BATCH * PARALLEL, '7910');
    const ms = { on: 0, off: 0 };
    for (let done = 0, round = 0; done < N; done += CHUNK, round++) {
      const n = Math.min(CHUNK, N - done);
      const pair = [['on', on, '7900'], ['off', off, '7910']];
      if (round % 2) pair.reverse();   // neither always goes first
      for (const [name, acc, prefix] of pair) ms[name] += await timed(() => post(k, acc.key, done, n, prefix));
    }
    const m = await k.metrics();
    const rate = (x) => Math.round(N / (x / 1000));
    console.log(JSON.stringify({
      messages_each: N, chunk: CHUNK, on_msg_per_s: rate(ms.on), off_msg_per_s: rate(ms.off),
      on_slower_pct: +((ms.on / ms.off - 1) * 100).toFixed(1),
      caps_phones: m.get('kaskad_policy_cap_phones'), consents_per_s: Math.round((2 * N) / consentS), peak_rss_mib: +peakRss(k.proc.pid).toFixed(1),
    }));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
