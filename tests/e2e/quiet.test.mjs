// Quiet hours (GET|PUT /v1/policy quiet_hours, recipient-local): an
// advertising message that comes due inside them is stored `scheduled` with
// reason quiet_hours and goes out when they end; a cascade step that would
// fall through to the next channel inside them waits for the morning too,
// but for a message flagged urgent. The test clock (setting test_clock)
// moves kaskad's time forward instead of waiting for hours.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, sleep, waitUntil, quietNow } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

const PHONE = '79161234567';

async function world(t, knobs = {}) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 }, args: ['--test_clock', 'on'] });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ vk: { reach: 1, read: 0, deliver_ms: [20, 20], read_ms: [30, 30] }, ...knobs });
  await pointChannelsAtSim(env.k, sim);
  // advertising needs a consent (the stop-list and consent rules)
  await env.k.consent(env.key, [PHONE]);
  env.sim = sim;
  return env;
}

async function shift(k, by) {
  const r = await k.request('POST', '/v1/test/clock', { body: { shift: by } });
  assert.equal(r.status, 200, r.text);
}

test('quiet hours: advertising waits (scheduled, quiet_hours) and goes when they end; service goes at once', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  // Outside quiet hours advertising goes at once.
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null } }, 200);
  const day = await k.send(key, { to: PHONE, text: 'Скидки весь день', class: 'advertising' });
  assert.equal(day.status, 'accepted');
  await k.waitStatus(key, day.id, 'delivered');
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: quietNow() } }, 200);
  const ad = await k.send(key, { to: PHONE, text: 'Скидки до утра', class: 'advertising' });
  assert.equal(ad.status, 'scheduled', JSON.stringify(ad));
  const wait = Date.parse(ad.send_at) - Date.now();
  assert.ok(wait > 58 * 60e3 && wait <= 61 * 60e3, ad.send_at);
  assert.deepEqual(ad.decisions.map((d) => [d.rule, d.outcome, d.reason]), [['quiet_hours', 'deferred', 'quiet_hours']]);
  const svc = await k.send(key, { to: PHONE, text: 'Ваш код 1234', class: 'service' });
  await k.waitStatus(key, svc.id, 'delivered');
  let got = await k.message(key, ad.id);
  assert.equal(got.status, 'scheduled');
  assert.equal(got.error.code, 'quiet_hours');
  assert.equal(got.decisions[0].until, ad.send_at);
  assert.equal(smsc.submits.length, 2, 'only the daytime advertising and the service message went');
  const m = await k.metrics();
  assert.equal(m.get('kaskad_policy_decisions_total{reason="quiet_hours",outcome="deferred"}'), 1);
  // Morning comes.
  await shift(k, '2h');
  got = await k.waitStatus(key, ad.id, 'delivered');
  assert.equal(got.decisions[0].reason, 'quiet_hours');
  assert.equal(smsc.submits.length, 3);
  await finish();
});

test('quiet hours: a cascade step falling through waits for the morning; an urgent message does not', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: quietNow() } }, 200);
  const cascade = [{ channel: 'vk', wait: 'read', timeout: '2s' }, { channel: 'sms' }];
  const m = await k.send(key, { to: PHONE, text: 'Заказ 77 доставлен', vk_id: '1001', cascade });
  const urgent = await k.send(key, { to: '79161234568', text: 'Вход в аккаунт с нового устройства', vk_id: '1002', urgent: true, cascade });
  assert.equal(m.channel, 'vk');
  // The urgent one falls through to SMS after VK's timeout, at night too.
  await k.waitStatus(key, urgent.id, 'delivered', 20000);
  await waitUntil(async () => {
    const g = await k.message(key, m.id);
    return g.attempts.length === 2 ? g : null;
  }, 'the SMS step to be created', 15000);
  let got = await k.message(key, m.id);
  assert.deepEqual(got.attempts.map((a) => [a.channel, a.status, a.error]),
    [['vk', 'timeout', null], ['sms', 'sending', 'quiet_hours']]);
  await sleep(300);
  assert.deepEqual(smsc.submits.map((s) => s.destination_addr), ['79161234568'], 'only the urgent SMS went');
  await shift(k, '2h');
  got = await k.waitStatus(key, m.id, 'delivered', 20000);
  assert.equal(got.channel, 'sms');
  assert.equal(smsc.submits.length, 2);
  await finish();
});
