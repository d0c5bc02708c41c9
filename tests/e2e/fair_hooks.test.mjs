// One scope's provider webhook cannot hurt another account: it is
// rate-limited per scope (429 with Retry-After), and a flood of unmatched
// far-future statuses neither slows other accounts' accepts nor grows the
// table of early statuses beyond its cap.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { setup, metricSum } from './lib/harness.mjs';
import { APPS } from './lib/sim.mjs';

/* Gives the account its own WhatsApp settings; returns its webhook path. */
async function ownWhatsapp(k, key) {
  await k.call('PUT', '/v1/channels/whatsapp', { key, body: APPS.whatsapp }, 200);
  const list = (await k.call('GET', '/v1/channels', { key }, 200)).channels;
  return new URL(list.find((c) => c.channel === 'whatsapp').webhook_url).pathname;
}

/* A signed WhatsApp status webhook body with n far-future statuses. */
function statuses(first, n) {
  const far = Math.floor(Date.now() / 1000) + 10 * 365 * 24 * 3600;
  const list = [];
  for (let i = 0; i < n; i++) list.push({ id: `wamid.flood${first + i}`, status: 'delivered', timestamp: String(far) });
  const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ changes: [{ value: { statuses: list } }] }] });
  const sig = 'sha256=' + crypto.createHmac('sha256', APPS.whatsapp.secret).update(body).digest('hex');
  return { body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig } };
}

async function postHook(k, path, first, n) {
  const { body, headers } = statuses(first, n);
  return k.request('POST', path, { key: null, body, headers });
}

/* Median latency of n sequential accepts of key. */
async function acceptLatency(k, key, n, tag) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await k.send(key, { to: `+7916555${String(i).padStart(4, '0')}`, text: `${tag} ${i}` });
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(n / 2)];
}

test('a scope over its webhook rate gets 429 with Retry-After; another scope does not', { timeout: 30000 }, async (t) => {
  const { k, key, finish } = await setup(t, { args: ['--hook-rate', '5'] });
  const pathA = await ownWhatsapp(k, key);
  const b = await k.createAccount();
  const pathB = await ownWhatsapp(k, b.key);
  const answers = [];
  for (let i = 0; i < 30; i++) answers.push(await postHook(k, pathA, i, 1));
  const limited = answers.filter((r) => r.status === 429);
  assert.ok(limited.length >= 15, `${limited.length} of 30 answered 429`);
  assert.ok(Number(limited[0].headers.get('retry-after')) >= 1, 'Retry-After in seconds');
  assert.equal(limited[0].json.error.code, 'rate_limited');
  assert.equal((await postHook(k, pathB, 1000, 1)).status, 200, 'another scope is served');
  const m = await k.metrics();
  assert.equal(metricSum(m, 'kaskad_hooks_limited_total'), limited.length);
  await finish();
});

test("100,000 unmatched far-future statuses to one scope do not slow another account's accepts", { timeout: 240000 }, async (t) => {
  const { k, key, finish } = await setup(t, { args: ['--hook-rate', '1000000'] });
  const pathA = await ownWhatsapp(k, key);
  const b = await k.createAccount();
  await acceptLatency(k, b.key, 10, 'warm-up');
  const base = await acceptLatency(k, b.key, 40, 'baseline');

  const TOTAL = 100000, PER = 32, STREAMS = 4;
  let next = 0, bad = 0, floodDone = false;
  const stream = async () => {
    while (next < TOTAL) {
      const first = next;
      next += PER;
      const r = await postHook(k, pathA, first, Math.min(PER, TOTAL - first));
      if (r.status !== 200) bad++;
    }
  };
  const flood = Promise.all(Array.from({ length: STREAMS }, stream)).then(() => { floodDone = true; });
  // Let the table fill past its cap before measuring.
  while (next < 20000) await new Promise((r) => setTimeout(r, 50));
  const during = await acceptLatency(k, b.key, 40, 'during');
  const stillFlooding = !floodDone;
  await flood;
  assert.equal(bad, 0, 'every webhook request was taken');
  t.diagnostic(`accept median: ${base.toFixed(1)} ms alone, ${during.toFixed(1)} ms during the flood (flood still running: ${stillFlooding})`);
  assert.ok(during < Math.max(10 * base, 250), `accepts during the flood: ${during.toFixed(1)} ms vs ${base.toFixed(1)} ms`);
  const m = await k.metrics();
  // The default cap is 10,000 per scope: the rest were refused, not stored.
  assert.ok(metricSum(m, 'kaskad_early_refused_total') >= TOTAL - 10000,
    `refused ${metricSum(m, 'kaskad_early_refused_total')}`);
  await finish();
});
