// The decision trace for the reasons decided outside the accept path's own
// rules: roaming (the account's roaming_ads, set through its own
// GET|PUT /v1/policy, one value with the operator's PATCH /v1/accounts/{id}):
// an advertising SMS to a subscriber in roaming deferred or dropped, with
// the decision and the error code roaming on the message and its count in
// /metrics; and the per-reason counters of missing_variable,
// insufficient_balance and outside_window.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil, sleep } from './lib/harness.mjs';
import { Sim } from './lib/sim.mjs';

const ROAMING = '79161114455';
const ad = (text) => ({ to: ROAMING, text, sender: 'KASKAD', class: 'advertising' });
const count = (m, reason, outcome) => m.get(`kaskad_policy_decisions_total{reason="${reason}",outcome="${outcome}"}`) ?? 0;

test('roaming_ads through /v1/policy: deferred, dropped, allowed; each a decision with reason roaming', { timeout: 60000 }, async (t) => {
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  const { k, key, acct, smsc, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 },
    args: ['--hlr_url', `${sim.url}/hlr`], outboundAllow: '127.0.0.1/32',
  });
  await sim.call('POST', '/hlr/config', { roaming: [ROAMING] });
  await k.consent(key, [ROAMING]);
  assert.equal((await k.call('GET', '/v1/policy', { key })).roaming_ads, 'defer');
  const bad = await k.request('PUT', '/v1/policy', { key, body: { roaming_ads: 'maybe' } });
  assert.equal(bad.status, 422, bad.text);
  assert.equal(bad.json.error.code, 'invalid_roaming_ads');
  assert.equal(bad.json.error.field, 'roaming_ads');

  // defer (the default): waits, a decision deferred with its time
  const m0 = await k.metrics();
  const d = await k.send(key, ad('roaming promo'));
  // the decision and the attempt's error are written by two operations
  const deferred = await waitUntil(async () => {
    const m = await k.message(key, d.id);
    return m.decisions.length && m.attempts[0]?.error ? m : null;
  }, 'the roaming deferral', 15000);
  assert.equal(deferred.finished, false);
  assert.equal(deferred.error.code, 'roaming');
  const dd = deferred.decisions.at(-1);
  assert.deepEqual([dd.rule, dd.outcome, dd.reason, dd.channel], ['roaming', 'deferred', 'roaming', 'sms']);
  assert.ok(Date.parse(dd.until) > Date.now() + 20 * 60e3, dd.until);
  assert.match(deferred.attempts[0].error, /roaming/);
  const m1 = await k.metrics();
  assert.equal(count(m1, 'roaming', 'deferred') - count(m0, 'roaming', 'deferred'), 1);

  // drop, set by the account itself: the operator sees the same value
  const p = await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null, roaming_ads: 'drop' } }, 200);
  assert.equal(p.roaming_ads, 'drop');
  assert.equal((await k.call('GET', `/v1/accounts/${acct.id}`, {}, 200)).roaming_ads, 'drop');
  // a PUT that leaves it out leaves it as it is
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null } }, 200);
  assert.equal((await k.call('GET', '/v1/policy', { key })).roaming_ads, 'drop');
  const x = await k.send(key, ad('dropped promo'));
  await k.waitStatus(key, x.id, ['failed']);
  const dropped = await waitUntil(async () => {
    const m = await k.message(key, x.id);
    return m.decisions.length ? m : null;
  }, 'the roaming drop\'s decision', 15000);
  assert.equal(dropped.error.code, 'roaming');
  assert.deepEqual(dropped.decisions.map((y) => [y.rule, y.outcome, y.reason]), [['roaming', 'refused', 'roaming']]);
  assert.match(dropped.attempts[0].error, /roaming/);
  const m2 = await k.metrics();
  assert.equal(count(m2, 'roaming', 'refused') - count(m1, 'roaming', 'refused'), 1);

  // allow, set by the operator: the account's policy shows it, and it goes
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { roaming_ads: 'allow' } }, 200);
  assert.equal((await k.call('GET', '/v1/policy', { key })).roaming_ads, 'allow');
  const a = await k.send(key, ad('allowed promo'));
  const sent = await k.waitStatus(key, a.id, ['delivered']);
  assert.deepEqual(sent.decisions, []);
  assert.equal(sent.error, null);
  await sleep(200);
  assert.deepEqual(smsc.submits.map((s) => s.text), ['allowed promo']);
  await finish();
});

test('per-reason counters: missing_variable, insufficient_balance, outside_window', { timeout: 60000 }, async (t) => {
  const { k, key, acct, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const m0 = await k.metrics();
  // a template's variable without a value
  await k.call('PUT', '/v1/templates/otp', { key, body: { text: 'Код {{code}}' } }, 200);
  const mv = await k.request('POST', '/v1/messages', { key, body: { to: '79161236001', template: 'otp', class: 'transactional' } });
  assert.equal(mv.status, 422, mv.text);
  assert.equal(mv.json.error.code, 'missing_variable');
  // a campaign recipient whose send window is closed now: planned for its
  // opening (in 4 to 5 hours, whatever the recipient's zone of UTC or
  // Moscow)
  const now = new Date();
  const hhmm = (min) => {
    const y = ((min % 1440) + 1440) % 1440;
    return `${String(Math.floor(y / 60)).padStart(2, '0')}:${String(y % 60).padStart(2, '0')}`;
  };
  const nowMin = now.getUTCHours() * 60 + now.getUTCMinutes();
  await k.call('PUT', '/v1/templates/news', { key, body: { text: 'Новости магазина' } }, 200);
  await k.call('PUT', '/v1/campaigns/later', { key, body: {
    audience: { phones: ['79161236002', '79161236003'] }, template: 'news', class: 'service',
    window: { from: hhmm(nowMin + 240), to: hhmm(nowMin + 300) } } }, 200);
  await k.call('POST', '/v1/campaigns/later/start', { key }, 200);
  await waitUntil(async () => count(await k.metrics(), 'outside_window', 'deferred') - count(m0, 'outside_window', 'deferred') === 2,
    'two recipients deferred outside their window', 15000);
  // a prepaid account whose balance does not cover the message
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.5 } } }, 200);
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { billing: 'prepaid' } }, 200);
  const nb = await k.request('POST', '/v1/messages', { key, body: { to: '79161236004', text: 'Заказ 1 готов', sender: 'KASKAD' } });
  assert.equal(nb.status, 422, nb.text);
  assert.equal(nb.json.error.code, 'insufficient_balance');
  const m1 = await k.metrics();
  assert.equal(count(m1, 'missing_variable', 'refused') - count(m0, 'missing_variable', 'refused'), 1);
  assert.equal(count(m1, 'insufficient_balance', 'refused') - count(m0, 'insufficient_balance', 'refused'), 1);
  await finish();
});
