// The account's rules (GET|PUT /v1/policy) in the accept path: prohibited
// content, frequency caps, no foreign messengers; each with a message that
// passes and one that is stopped with its exact reason, the decision kept
// with the message and counted in /metrics.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

const PHONE = '79161234567';
const OTHER = '79161234568';

// Advertising needs a consent (the stop-list and consent rules): both test
// phones have one, so that the rule under test is the one that decides.
async function policy(k, key, doc) {
  await k.consent(key, [PHONE, OTHER]);
  const r = await k.request('PUT', '/v1/policy', { key, body: doc });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const post = (k, key, body) => k.request('POST', '/v1/messages', { key, body });

test('policy: defaults, a document that does not parse, one that does', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t, { args: ['--quiet_hours', '21:00-09:00'] });
  const def = await k.call('GET', '/v1/policy', { key });
  assert.deepEqual(def.quiet_hours, { from: '21:00', to: '09:00', timezone: 'Europe/Moscow' });
  assert.deepEqual(def.caps, []);
  assert.equal(def.no_foreign_messengers, false);
  assert.equal(def.content_rules.categories.alcohol, true);
  for (const [body, field] of [
    [{ quiet_hours: { from: '25:00', to: '09:00' } }, 'quiet_hours'],
    [{ caps: [{ class: 'advertising', max: 0, per: '7d' }] }, 'caps'],
    [{ caps: [{ class: 'promo', max: 2, per: '7d' }] }, 'caps'],
    [{ content_rules: { categories: { beer: false } } }, 'content_rules'],
    [{ no_foreign_messengers: 'yes' }, 'no_foreign_messengers'],
  ]) {
    const r = await k.request('PUT', '/v1/policy', { key, body });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.error.code, 'invalid_policy');
    assert.equal(r.json.error.field, field, r.text);
  }
  // Keys of other rules are kept as given.
  const p = await policy(k, key, { quiet_hours: null, stop_words: ['STOP'] });
  assert.equal(p.quiet_hours, null);
  assert.deepEqual(p.stop_words, ['STOP']);
  assert.deepEqual((await k.call('GET', '/v1/policy', { key })).stop_words, ['STOP']);
  await finish();
});

test('prohibited content: advertising refused with its category; switched off and own words', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  await policy(k, key, { quiet_hours: null });
  const ok = await post(k, key, { to: PHONE, text: 'Скидка 20% на кроссовки до воскресенья', class: 'advertising' });
  assert.equal(ok.status, 202, ok.text);
  const bad = await post(k, key, { to: PHONE, text: 'Скидка на В.О.Д.К.У и коньяк!', class: 'advertising' });
  assert.equal(bad.status, 422, bad.text);
  assert.equal(bad.json.error.code, 'prohibited_content');
  assert.match(bad.json.error.message, /\(alcohol\)/);
  // The same text again (its verdict held): the same refusal, with the words.
  const again = await post(k, key, { to: PHONE, text: 'Скидка на В.О.Д.К.У и коньяк!', class: 'advertising' });
  assert.equal(again.status, 422, again.text);
  assert.equal(again.json.error.message, bad.json.error.message);
  const later = { to: PHONE, text: 'Большая РАСПРОДАЖА зимы', class: 'advertising' };
  assert.equal((await post(k, key, later)).status, 202);
  // The same words in a service message are not advertising.
  const svc = await post(k, key, { to: PHONE, text: 'Заказ: водка 2 шт. доставлен', class: 'service' });
  assert.equal(svc.status, 202, svc.text);
  // Alcohol switched off, an own word added.
  await policy(k, key, { quiet_hours: null,
    content_rules: { categories: { alcohol: false }, words: ['распродаж*'] } });
  assert.equal((await post(k, key, { to: PHONE, text: 'Скидка на водку', class: 'advertising' })).status, 202);
  // A text judged before the change is judged again under the new policy.
  assert.equal((await post(k, key, { to: PHONE, text: 'Скидка на В.О.Д.К.У и коньяк!', class: 'advertising' })).status, 202);
  const own = await post(k, key, later);
  assert.equal(own.status, 422, own.text);
  assert.equal(own.json.error.code, 'prohibited_content');
  assert.match(own.json.error.message, /\(own\)/);
  const m = await k.metrics();
  assert.equal(m.get('kaskad_policy_decisions_total{reason="prohibited_content",outcome="refused"}'), 3);
  await finish();
});

test('frequency caps: the third advertising message in 7 days refused, or deferred', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  await policy(k, key, { quiet_hours: null, caps: [{ class: 'advertising', max: 2, per: '7d' }] });
  for (let i = 0; i < 2; i++)
    assert.equal((await post(k, key, { to: PHONE, text: `Акция ${i}`, class: 'advertising' })).status, 202);
  // The counts are rebuilt from the store at start.
  await k.kill9();
  await k.restart();
  const over = await post(k, key, { to: '+7 916 123-45-67', text: 'Акция 3', class: 'advertising' });
  assert.equal(over.status, 422, over.text);
  assert.equal(over.json.error.code, 'frequency_cap');
  // Another phone, another class: not capped.
  assert.equal((await post(k, key, { to: OTHER, text: 'Акция 3', class: 'advertising' })).status, 202);
  assert.equal((await post(k, key, { to: PHONE, text: 'Ваш код 1234', class: 'service' })).status, 202);
  // Deferred instead: stored scheduled until the oldest leaves the window.
  await policy(k, key, { quiet_hours: null, caps: [{ class: 'advertising', max: 2, per: '7d' }], caps_over: 'defer' });
  const later = await post(k, key, { to: PHONE, text: 'Акция 4', class: 'advertising' });
  assert.equal(later.status, 202, later.text);
  assert.equal(later.json.status, 'scheduled');
  const days = (Date.parse(later.json.send_at) - Date.now()) / 86400e3;
  assert.ok(days > 6.9 && days <= 7.01, later.text);
  const got = await k.message(key, later.json.id);
  assert.equal(got.status, 'scheduled');
  assert.equal(got.error.code, 'frequency_cap');
  assert.deepEqual(got.decisions.map((d) => [d.rule, d.outcome, d.reason]), [['frequency_cap', 'deferred', 'frequency_cap']]);
  const m = await k.metrics();
  assert.equal(m.get('kaskad_policy_decisions_total{reason="frequency_cap",outcome="refused"}'), 1);
  assert.equal(m.get('kaskad_policy_decisions_total{reason="frequency_cap",outcome="deferred"}'), 1);
  await finish();
});

test('no foreign messengers: Viber, Telegram and WhatsApp steps skipped with the reason', { timeout: 60000 }, async (t) => {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 } });
  const { k, key, finish } = env;
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ viber: { reach: 1, read: 1, deliver_ms: [20, 20], read_ms: [30, 30] } });
  await pointChannelsAtSim(k, sim);
  const cascade = [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }];
  // Allowed: Viber carries it.
  const viber = await k.send(key, { to: PHONE, text: 'Заказ 1 доставлен', viber_id: 'vb-1', cascade });
  assert.equal(viber.channel, 'viber');
  await policy(k, key, { no_foreign_messengers: true });
  const sms = await k.send(key, { to: PHONE, text: 'Заказ 2 доставлен', viber_id: 'vb-1', cascade });
  assert.equal(sms.channel, 'sms');
  assert.deepEqual(sms.decisions.map((d) => [d.outcome, d.reason, d.channel]), [['skipped', 'foreign_messenger_forbidden', 'viber']]);
  const done = await k.waitStatus(key, sms.id, 'delivered');
  assert.deepEqual(done.attempts.map((a) => a.channel), ['sms']);
  assert.equal(done.decisions[0].reason, 'foreign_messenger_forbidden');
  assert.equal(done.error.code, 'foreign_messenger_forbidden');
  // Nothing left but foreign messengers: refused.
  const none = await post(k, key, { to: PHONE, text: 'x', telegram_chat_id: '42', cascade: [{ channel: 'telegram' }] });
  assert.equal(none.status, 422, none.text);
  assert.equal(none.json.error.code, 'foreign_messenger_forbidden');
  const m = await k.metrics();
  assert.equal(m.get('kaskad_policy_decisions_total{reason="foreign_messenger_forbidden",outcome="skipped"}'), 1);
  assert.equal(m.get('kaskad_policy_decisions_total{reason="foreign_messenger_forbidden",outcome="refused"}'), 1);
  await finish();
});
