// POST /v1/calculator end to end: the form of the seeds (subscribers, sends a
// month, alphabet, characters, shares of service and transactional
// traffic) against its worked example, a cascade at given reach, the same
// cascade at the reach the account measured over its own last 30 days, the
// account's saved cascades (by name, and its default when none is named), and
// the refusals. The 30-day cut-off itself is a store test
// (test_store_money.c). kaskad and the simulator's messenger providers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

const calc = (k, key, body) => k.request('POST', '/v1/calculator', { key, body });

test('the calculator: the seed form, a cascade at given and at measured reach, refusals', { timeout: 90000 }, async (t) => {
  const { k, key, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 } });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ viber: { reach: 1, read: 0, deliver_ms: [10, 10] } });
  await pointChannelsAtSim(k, sim);
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 3.5, viber: 1.2, vk: 0.5 } } }, 200);

  // The form as it opens: 100 subscribers, one send, 70 Cyrillic characters,
  // no service or transactional traffic (all advertising): no saving.
  let r = await calc(k, key, {
    subscribers: 100, sends_per_month: 1, alphabet: 'cyrillic', chars: 70,
    service_share: 0, transactional_share: 0, cascade: ['viber'], reach: { viber: 60 },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.segments, 1);
  assert.equal(r.json.messages, 100);
  assert.equal(r.json.sms_only, 350);
  assert.equal(r.json.with_cascade, 350);
  assert.equal(r.json.saving, 0);

  // All service traffic over Viber (60 %) then VK (50 % of the rest), then SMS:
  // 3.50 a message instead of 10.50 (three segments).
  r = await calc(k, key, {
    subscribers: 200000, sends_per_month: 4, alphabet: 'cyrillic', chars: 140,
    service_share: 100, cascade: ['viber', 'vk', 'sms'], reach: { viber: 60, vk: 50 },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.segments, 3);
  assert.equal(r.json.messages, 800000);
  assert.equal(r.json.sms_only, 8400000);
  assert.equal(r.json.with_cascade, 2800000);
  assert.equal(r.json.saving, 5600000);
  assert.equal(r.json.sms_sent, 160000);
  assert.deepEqual(r.json.cascade.map((s) => [s.channel, s.price, s.reach, s.reach_source]),
    [['viber', 1.2, 0.6, 'given'], ['vk', 0.5, 0.5, 'given']]);

  // Measured: the account's own Viber messages all arrived.
  for (let i = 0; i < 3; i++) {
    const m = await k.send(key, {
      to: `7916123450${i}`, text: 'hi', viber_id: `vb-${i}`,
      cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
    });
    await k.waitStatus(key, m.id, 'delivered');
  }
  r = await calc(k, key, {
    subscribers: 1000, sends_per_month: 2, alphabet: 'latin', chars: 200,
    service_share: 50, transactional_share: 50, cascade: ['viber'],
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.segments, 2);
  assert.equal(r.json.cascade[0].reach_source, 'measured');
  assert.equal(r.json.cascade[0].reach, 1);
  assert.equal(r.json.sms_only, 2000 * 7);
  assert.equal(r.json.with_cascade, 2000 * 1.2);

  // Refusals name the field.
  const base = { subscribers: 100, sends_per_month: 1, alphabet: 'latin', chars: 70 };
  for (const [body, code, field] of [
    [{ ...base, subscribers: 0 }, 'invalid_field', 'subscribers'],
    [{ ...base, sends_per_month: 32 }, 'invalid_field', 'sends_per_month'],
    [{ ...base, chars: 1.5 }, 'invalid_field', 'chars'],
    [{ ...base, alphabet: 'greek' }, 'invalid_alphabet', 'alphabet'],
    [{ ...base, service_share: 60, transactional_share: 50 }, 'invalid_share', 'transactional_share'],
    [{ ...base, cascade: ['pigeon'] }, 'invalid_cascade', 'cascade'],
    [{ ...base, cascade: 'nosuch' }, 'unknown_cascade', 'cascade'],
    [{ ...base, cascade: ['viber'], reach: { viber: 101 } }, 'invalid_reach', 'reach'],
  ]) {
    r = await calc(k, key, body);
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.equal(r.json.error.code, code);
    assert.equal(r.json.error.field, field);
  }
  r = await k.request('POST', '/v1/calculator', { key, body: 'not json' });
  assert.equal(r.status, 400);
  await finish();
});

test('the calculator with the account\'s cascades: a saved one by name, and its default', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 3.5, viber: 1.2, vk: 0.5 } } }, 200);
  const form = { subscribers: 1000, sends_per_month: 1, alphabet: 'latin', chars: 70, service_share: 100 };

  // A saved cascade by name: VK (50 %), then Viber (60 % of the rest), then
  // SMS for the 20 % left: 0.50 + 0.60 + 0.70 = 1.80 a message instead of 3.50.
  await k.call('PUT', '/v1/cascades/promo', { key, body: { steps: [
    { channel: 'vk', wait: 'read', timeout: '1m' },
    { channel: 'viber', wait: 'delivered', timeout: '90s' },
    { channel: 'sms' },
  ] } }, 200);
  let r = await calc(k, key, { ...form, cascade: 'promo', reach: { vk: 50, viber: 60 } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.cascade.map((s) => [s.channel, s.price, s.reach, s.reach_source]),
    [['vk', 0.5, 0.5, 'given'], ['viber', 1.2, 0.6, 'given']]);
  assert.deepEqual([r.json.sms_only, r.json.with_cascade, r.json.saving, r.json.sms_sent], [3500, 1800, 1700, 200]);

  // No cascade named and none saved as default: SMS alone.
  r = await calc(k, key, { ...form, reach: { viber: 60 } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.cascade, []);
  assert.deepEqual([r.json.sms_only, r.json.with_cascade, r.json.saving], [3500, 3500, 0]);

  // The account's default cascade is used when none is named: Viber (60 %)
  // then SMS: 1.20 + 0.4 × 3.50 = 2.60 a message.
  await k.call('PUT', '/v1/cascades/default', { key, body: { steps: [
    { channel: 'viber', wait: 'delivered', timeout: '90s' }, { channel: 'sms' },
  ] } }, 200);
  r = await calc(k, key, { ...form, reach: { viber: 60 } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.cascade.map((s) => [s.channel, s.reach, s.reach_source]), [['viber', 0.6, 'given']]);
  assert.deepEqual([r.json.sms_only, r.json.with_cascade, r.json.saving, r.json.sms_sent], [3500, 2600, 900, 400]);
  // Without a given reach it is measured: no Viber messages yet, none reached.
  r = await calc(k, key, form);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.cascade.map((s) => [s.channel, s.reach, s.reach_source]), [['viber', 0, 'measured']]);
  assert.equal(r.json.with_cascade, 4700);
  await finish();
});
