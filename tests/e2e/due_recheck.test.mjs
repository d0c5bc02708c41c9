// The rules again when a message comes due: an advertising message deferred
// by quiet hours is looked at again when they end; a consent withdrawn
// meanwhile stops it (no_consent), a phone stop-listed meanwhile stops it
// (stop_listed): nothing is sent, the message ends failed with the reason
// in error and in its decisions. One whose consent stands goes. A cascade
// step held for quiet hours is a decision too. The test clock moves time.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, sleep, waitUntil, quietNow } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

async function ended(k, key, id) {
  return waitUntil(async () => {
    const g = await k.message(key, id);
    return g.finished ? g : null;
  }, `message ${id} to end`, 20000, 50);
}

test('due again: consent withdrawn or a stop while deferred stops the message', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 }, args: ['--test_clock', 'on'] });
  const [A, B, C] = ['79161235501', '79161235502', '79161235503'];
  await k.consent(key, [A, B, C]);
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: quietNow() } }, 200);
  const ad = (to) => k.send(key, { to, text: 'Скидки до утра', class: 'advertising' });
  const [a, b, c] = [await ad(A), await ad(B), await ad(C)];
  for (const m of [a, b, c]) assert.equal(m.status, 'scheduled', JSON.stringify(m));

  // While they wait: A withdraws its consent, B is stop-listed.
  let r = await k.request('DELETE', `/v1/consents/${A}`, { key });
  assert.equal(r.status, 204, r.text);
  r = await k.request('PUT', `/v1/stoplist/${B}`, { key, body: { reason: 'api' } });
  assert.ok(r.status === 200 || r.status === 201, r.text);

  const before = await k.metrics();
  await k.request('POST', '/v1/test/clock', { body: { shift: '2h' } });
  const gc = await k.waitStatus(key, c.id, 'delivered', 20000);
  assert.equal(gc.decisions.length, 1, 'quiet_hours alone');
  for (const [m, why] of [[a, 'no_consent'], [b, 'stop_listed']]) {
    const g = await ended(k, key, m.id);
    assert.equal(g.status, 'failed', JSON.stringify(g));
    assert.equal(g.error.code, why);
    assert.deepEqual(g.decisions.map((d) => [d.rule, d.outcome, d.reason]),
      [['quiet_hours', 'deferred', 'quiet_hours'], [why, 'refused', why]]);
    assert.equal(g.decisions[1].channel, 'sms');
    assert.equal(g.attempts[0].error, why);
  }
  await sleep(300);
  assert.deepEqual(smsc.submits.map((s) => s.destination_addr), [C], 'only C was sent');
  const m = await k.metrics();
  for (const why of ['no_consent', 'stop_listed']) {
    const name = `kaskad_policy_decisions_total{reason="${why}",outcome="refused"}`;
    assert.equal(m.get(name) - (before.get(name) ?? 0), 1, name);
  }
  await finish();
});

test('due again: a cascade step held for quiet hours is in the decisions', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 }, args: ['--test_clock', 'on'] });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ vk: { reach: 1, read: 0, deliver_ms: [20, 20], read_ms: [30, 30] } });
  await pointChannelsAtSim(k, sim);
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: quietNow() } }, 200);
  const cascade = [{ channel: 'vk', wait: 'read', timeout: '2s' }, { channel: 'sms' }];
  const m = await k.send(key, { to: '79161235504', text: 'Заказ 78 доставлен', vk_id: '1003', cascade });
  const got = await waitUntil(async () => {
    const g = await k.message(key, m.id);
    return g.attempts.length === 2 ? g : null;
  }, 'the SMS step to be held', 15000);
  assert.equal(got.attempts[1].error, 'quiet_hours');
  const held = got.decisions.at(-1);
  assert.deepEqual([held.rule, held.outcome, held.reason, held.channel], ['quiet_hours', 'deferred', 'quiet_hours', 'sms']);
  assert.ok(Date.parse(held.until) > Date.now() + 50 * 60e3, held.until);
  await finish();
});
