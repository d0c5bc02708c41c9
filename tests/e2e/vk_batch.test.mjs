// VK sends that come due together go in execute requests of up to 25
// (kaskad, the simulator's VK API, an independent SMSC for the SMS step):
// each message still gets its own result, and one that VK refuses falls
// through on its own.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

const N = 40;

test('a batch of VK sends: execute requests of up to 25, a result per message', { timeout: 90000 }, async (t) => {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 } });
  const { k, key, smsc, finish } = env;
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ vk: { reach: 0.5, read: 1, deliver_ms: [10, 10], read_ms: [50, 50] } });
  await pointChannelsAtSim(k, sim);

  const messages = [];
  for (let i = 0; i < N; i++) {
    messages.push({ to: `7916${String(5000000 + i)}`, vk_id: String(7000 + i), text: `Заказ ${i} готов`,
      cascade: [{ channel: 'vk', wait: 'read', timeout: '30s' }, { channel: 'sms' }] });
  }
  const r = await k.call('POST', '/v1/messages/batch', { key, body: { messages } }, [200, 202, 207]);
  const ids = r.results.map((m) => m.id);
  assert.equal(ids.length, N);

  const done = [];
  for (const id of ids) done.push(await k.waitStatus(key, id, ['read', 'delivered'], 30000));

  // What VK received: every message once, in requests of at most 25 calls.
  const recs = await sim.requests('vk');
  let calls = 0;
  for (const rec of recs) {
    if (rec.path === '/method/execute') {
      const code = new URLSearchParams(rec.body).get('code');
      const n = code.match(/API\.messages\.send\(/g).length;
      assert.ok(n >= 1 && n <= 25, `an execute carries ${n} calls`);
      calls += n;
    } else {
      assert.equal(rec.path, '/method/messages.send');
      calls += 1;
    }
  }
  assert.equal(calls, N, 'each message went to VK once');
  assert.ok(recs.some((x) => x.path === '/method/execute'), 'messages due together went in one execute');
  assert.ok(recs.length < N, `${recs.length} requests for ${N} messages`);

  // Each message has its own outcome: read on VK, or refused by VK (901) and
  // delivered by SMS.
  const read = done.filter((m) => m.channel === 'vk');
  const fell = done.filter((m) => m.channel === 'sms');
  assert.equal(read.length + fell.length, N);
  assert.ok(read.length > 0 && fell.length > 0, `${read.length} read on VK, ${fell.length} by SMS`);
  for (const m of read) {
    assert.equal(m.attempts.length, 1);
    assert.equal(m.attempts[0].status, 'read');
    assert.match(m.attempts[0].provider_id, /^\d+$/);
  }
  assert.equal(new Set(read.map((m) => m.attempts[0].provider_id)).size, read.length,
    'every VK message has its own id');
  for (const m of fell) {
    assert.deepEqual(m.attempts.map((a) => [a.channel, a.status]), [['vk', 'failed'], ['sms', 'delivered']]);
    assert.match(m.attempts[0].error, /^901 /);
  }
  assert.equal(smsc.submits.length, fell.length, 'an SMS for each message VK refused, no more');
  await finish();
});
