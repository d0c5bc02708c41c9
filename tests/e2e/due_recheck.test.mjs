// The rules again when a message comes due: an advertising message deferred
// by quiet hours is looked at again when they end; a consent withdrawn
// meanwhile stops it (no_consent), a phone stop-listed meanwhile stops it
// (stop_listed): nothing is sent, the message ends failed with the reason
// in error and in its decisions. One whose consent stands goes. A cascade
// step held for quiet hours is a decision too, and counted in /metrics. A
// scheduled message whose time passed while kaskad was down is looked at
// again after the restart like one that comes due in a running process.
// The test clock moves time.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, sleep, waitUntil, quietIn, quietNow } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

/** A kaskad with the test clock and an SMSC that delivers, its channels on
    a simulator configured with knobs. */
async function withSim(t, knobs) {
  const env = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 }, args: ['--test_clock', 'on'] });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config(knobs);
  await pointChannelsAtSim(env.k, sim);
  return { ...env, sim };
}

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
  const due = (x, outcome) => (x.get(`kaskad_policy_due_checks_total{outcome="${outcome}"}`) ?? 0);
  assert.equal(due(m, 'refused') - due(before, 'refused'), 2, 'two stopped when due');
  assert.equal(due(m, 'allowed') - due(before, 'allowed'), 1, 'one let go when due');
  await finish();
});

test('due again: a cascade step held for quiet hours is in the decisions', { timeout: 60000 }, async (t) => {
  const { k, key, finish, sim } = await withSim(t, { vk: { reach: 1, read: 0, deliver_ms: [20, 20], read_ms: [30, 30] } });
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: quietNow() } }, 200);
  const cascade = [{ channel: 'vk', wait: 'read', timeout: '2s' }, { channel: 'sms' }];
  const m = await k.send(key, { to: '79161235504', text: 'Заказ 78 доставлен', vk_id: '1003', cascade });
  // the message and its attempts are read by two statements: a commit may
  // fall between them
  const got = await waitUntil(async () => {
    const g = await k.message(key, m.id);
    return g.attempts.length === 2 && g.decisions.length ? g : null;
  }, 'the SMS step to be held', 15000);
  assert.equal(got.attempts[1].error, 'quiet_hours');
  const held = got.decisions.at(-1);
  assert.deepEqual([held.rule, held.outcome, held.reason, held.channel], ['quiet_hours', 'deferred', 'quiet_hours', 'sms']);
  assert.ok(Date.parse(held.until) > Date.now() + 50 * 60e3, held.until);
  const metrics = await k.metrics();
  assert.equal(metrics.get('kaskad_policy_decisions_total{reason="quiet_hours",outcome="held"}'), 1);
  assert.equal(metrics.get('kaskad_policy_decisions_total{reason="quiet_hours",outcome="deferred"}'), 0,
    'the message itself was not deferred');
  await finish();
});

test('due again after a restart: a stop while kaskad was down stops the message', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 } });
  const [A, B] = ['79161235511', '79161235512'];
  // Transactional (no advertising re-check of its own): scheduled a few
  // seconds ahead, as if deferred.
  const at = new Date(Date.now() + 3000).toISOString();
  const send = (to) => k.send(key, { to, text: 'Заказ 4410 готов к выдаче', class: 'transactional', send_at: at });
  const [a, b] = [await send(A), await send(B)];
  for (const m of [a, b]) assert.equal(m.status, 'scheduled', JSON.stringify(m));
  const r = await k.request('PUT', `/v1/stoplist/${B}`, { key, body: { reason: 'api' } });
  assert.ok(r.status === 200 || r.status === 201, r.text);

  // Down while they come due; up again after their time.
  await k.stopClean();
  await sleep(Math.max(0, Date.parse(at) - Date.now()) + 1000);
  await k.restart();
  await k.waitStatus(key, a.id, 'delivered', 20000);
  const gb = await ended(k, key, b.id);
  assert.equal(gb.status, 'failed', JSON.stringify(gb));
  assert.equal(gb.error.code, 'stop_listed');
  const last = gb.decisions.at(-1);
  assert.deepEqual([last.rule, last.outcome, last.reason, last.channel, last.when],
    ['stop_listed', 'refused', 'stop_listed', 'sms', 'due']);
  await sleep(300);
  assert.deepEqual(smsc.submits.map((s) => s.destination_addr), [A], 'only A was sent');
  const m = await k.metrics();
  assert.equal(m.get('kaskad_policy_due_checks_total{outcome="refused"}'), 1);
  assert.equal(m.get('kaskad_policy_due_checks_total{outcome="allowed"}'), 1);
  await finish();
});

test('due again inside quiet hours: the message waits for their end once more', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 }, args: ['--test_clock', 'on'] });
  const A = '79161235521';
  await k.consent(key, [A]);
  // Quiet from 2 h to 4 h from now; the message is asked for in 1.5 h, when
  // it may go. The clock then jumps past its time into the quiet hours, as
  // when kaskad was down at its time and starts again at night.
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: quietIn(120, 240) } }, 200);
  const at = new Date(Date.now() + 90 * 60e3).toISOString();
  const m = await k.send(key, { to: A, text: 'Скидки на зимние шины', class: 'advertising', send_at: at });
  assert.equal(m.status, 'scheduled', JSON.stringify(m));
  const before = await k.metrics();
  await k.request('POST', '/v1/test/clock', { body: { shift: '150m' } });
  // the decision and the attempt's error are written by two operations
  const g = await waitUntil(async () => {
    const x = await k.message(key, m.id);
    return x.decisions.length && x.attempts[0]?.error ? x : null;
  }, 'the deferral when due', 15000);
  assert.equal(g.status, 'scheduled', JSON.stringify(g));
  const d = g.decisions.at(-1);
  assert.deepEqual([d.rule, d.outcome, d.reason, d.channel, d.when], ['quiet_hours', 'deferred', 'quiet_hours', 'sms', 'due']);
  const end = Date.parse(d.until) - Date.parse(d.at);
  assert.ok(end > 80 * 60e3 && end <= 91 * 60e3, `until the end of the quiet hours: ${d.until} (at ${d.at})`);
  assert.equal(g.attempts[0].error, 'quiet_hours');
  await sleep(300);
  assert.equal(smsc.submits.length, 0, 'nothing sent at night');
  const mid = await k.metrics();
  const name = 'kaskad_policy_decisions_total{reason="quiet_hours",outcome="deferred"}';
  assert.equal(mid.get(name) - (before.get(name) ?? 0), 1, name);
  // At the end of the quiet hours it goes.
  await k.request('POST', '/v1/test/clock', { body: { shift: '95m' } });
  await k.waitStatus(key, m.id, 'delivered', 20000);
  assert.deepEqual(smsc.submits.map((s) => s.destination_addr), [A]);
  await finish();
});

test('due again inside quiet hours: a messenger step waits for their end once more', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish, sim } = await withSim(t, { vk: { reach: 1, read: 1, deliver_ms: [20, 20], read_ms: [30, 30] } });
  const [A, B] = ['79161235531', '79161235532'];
  await k.consent(key, [A, B]);
  // Quiet from 2 h to 4 h from now; both are asked for in 1.5 h, when they
  // may go. The clock then jumps past their time into the quiet hours: the
  // advertising one's VK step waits again, the transactional one goes.
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: quietIn(120, 240) } }, 200);
  const at = new Date(Date.now() + 90 * 60e3).toISOString();
  const cascade = [{ channel: 'vk', wait: 'read', timeout: '1h' }, { channel: 'sms' }];
  const ad = await k.send(key, { to: A, text: 'Скидки на зимние шины', class: 'advertising', vk_id: '1101', cascade, send_at: at, ttl: '6h' });
  const tr = await k.send(key, { to: B, text: 'Заказ 4411 готов к выдаче', class: 'transactional', vk_id: '1102', cascade, send_at: at, ttl: '6h' });
  for (const m of [ad, tr]) assert.equal(m.status, 'scheduled', JSON.stringify(m));
  const before = await k.metrics();
  await k.request('POST', '/v1/test/clock', { body: { shift: '150m' } });
  await waitUntil(async () => ['read', 'delivered'].includes((await k.message(key, tr.id)).attempts[0]?.status),
    'the transactional VK step to be delivered', 15000);
  const g = await waitUntil(async () => {
    const x = await k.message(key, ad.id);
    return x.decisions.length && x.attempts[0]?.error ? x : null;
  }, 'the deferral when due', 15000);
  assert.equal(g.status, 'scheduled', JSON.stringify(g));
  const d = g.decisions.at(-1);
  assert.deepEqual([d.rule, d.outcome, d.reason, d.channel, d.when], ['quiet_hours', 'deferred', 'quiet_hours', 'vk', 'due']);
  const end = Date.parse(d.until) - Date.parse(d.at);
  assert.ok(end > 80 * 60e3 && end <= 91 * 60e3, `until the end of the quiet hours: ${d.until} (at ${d.at})`);
  assert.deepEqual(g.attempts.map((a) => [a.channel, a.error]), [['vk', 'quiet_hours']]);
  await sleep(600);
  assert.deepEqual((await sim.requests('vk')).map((r) => JSON.stringify(r).includes('1101')), [false],
    'only the transactional one went on VK at night');
  const mid = await k.metrics();
  const name = 'kaskad_policy_decisions_total{reason="quiet_hours",outcome="deferred"}';
  assert.equal(mid.get(name) - (before.get(name) ?? 0), 1, name);
  // Still waiting after another poll; at the end of the quiet hours it goes.
  assert.equal((await k.message(key, ad.id)).decisions.length, g.decisions.length, 'held once');
  await k.request('POST', '/v1/test/clock', { body: { shift: '95m' } });
  await waitUntil(async () => ['read', 'delivered'].includes((await k.message(key, ad.id)).attempts[0]?.status),
    'the advertising VK step to be delivered', 15000);
  assert.equal((await sim.requests('vk')).length, 2);
  assert.equal(smsc.submits.length, 0, 'no fall-through to SMS');
  const end2 = await k.metrics();
  assert.equal(end2.get(name) - (before.get(name) ?? 0), 1, 'deferred once');
  await finish();
});

test('due again: an own word added while the message waited refuses it (prohibited_content)', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish, sim } = await withSim(t, { vk: { reach: 1, read: 1, deliver_ms: [20, 20], read_ms: [30, 30] } });
  const [A, B] = ['79161235541', '79161235542'];
  await k.consent(key, [A, B]);
  // Both asked for in an hour, clean when accepted; then the account adds
  // an own word that the first one's text has.
  const at = new Date(Date.now() + 60 * 60e3).toISOString();
  const cascade = [{ channel: 'vk', wait: 'read', timeout: '1h' }, { channel: 'sms' }];
  const bad = await k.send(key, { to: A, text: 'Большая РАСПРОДАЖА зимы', class: 'advertising', vk_id: '1201', cascade, send_at: at, ttl: '6h' });
  const ok = await k.send(key, { to: B, text: 'Новая коллекция весны', class: 'advertising', vk_id: '1202', cascade, send_at: at, ttl: '6h' });
  for (const m of [bad, ok]) assert.equal(m.status, 'scheduled', JSON.stringify(m));
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null, content_rules: { words: ['распродаж*'] } } }, 200);
  const before = await k.metrics();
  await k.request('POST', '/v1/test/clock', { body: { shift: '61m' } });
  await waitUntil(async () => ['read', 'delivered'].includes((await k.message(key, ok.id)).attempts[0]?.status),
    'the clean one on VK', 15000);
  const g = await ended(k, key, bad.id);
  assert.equal(g.status, 'failed', JSON.stringify(g));
  assert.equal(g.error.code, 'prohibited_content');
  const refusals = g.decisions.filter((d) => d.reason === 'prohibited_content');
  assert.ok(refusals.length >= 1, JSON.stringify(g.decisions));
  assert.deepEqual([refusals[0].rule, refusals[0].outcome, refusals[0].channel, refusals[0].when],
    ['prohibited_content', 'refused', 'vk', 'due']);
  // neither on VK nor, after it, by SMS (the engine that sends the SMS
  // step gives no text: the refusal of the step before holds)
  assert.ok(g.attempts.every((a) => a.error === 'prohibited_content'), JSON.stringify(g.attempts));
  await sleep(300);
  assert.ok(!(await sim.requests('vk')).some((r) => JSON.stringify(r).includes('1201')), 'not sent on VK');
  assert.equal(smsc.submits.length, 0, 'not sent by SMS');
  const m = await k.metrics();
  const name = 'kaskad_policy_decisions_total{reason="prohibited_content",outcome="refused"}';
  assert.ok(m.get(name) - (before.get(name) ?? 0) >= 1, name);
  await finish();
});

test('due again: no_foreign_messengers turned on while a cascade waited skips its Viber step', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish, sim } = await withSim(t, { viber: { reach: 1, read: 1, deliver_ms: [20, 20], read_ms: [30, 30] } });
  const A = '79161235551';
  const at = new Date(Date.now() + 60 * 60e3).toISOString();
  const cascade = [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }];
  const m = await k.send(key, { to: A, text: 'Заказ 4412 доставлен', class: 'transactional', viber_id: 'vb-9', cascade, send_at: at, ttl: '6h' });
  assert.equal(m.status, 'scheduled', JSON.stringify(m));
  assert.deepEqual(m.decisions ?? [], [], 'nothing skipped when accepted');
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null, no_foreign_messengers: true } }, 200);
  const before = await k.metrics();
  await k.request('POST', '/v1/test/clock', { body: { shift: '61m' } });
  const g = await k.waitStatus(key, m.id, 'delivered', 20000);
  assert.deepEqual(g.attempts.map((a) => [a.channel, a.status, a.error]),
    [['viber', 'failed', 'foreign_messenger_forbidden'], ['sms', 'delivered', null]]);
  const d = g.decisions.find((x) => x.reason === 'foreign_messenger_forbidden');
  assert.deepEqual([d.rule, d.outcome, d.channel, d.when], ['foreign_messenger_forbidden', 'skipped', 'viber', 'due']);
  assert.equal((await sim.requests('viber')).length, 0, 'nothing sent on Viber');
  assert.deepEqual(smsc.submits.map((s) => s.destination_addr), [A]);
  const after = await k.metrics();
  const name = 'kaskad_policy_decisions_total{reason="foreign_messenger_forbidden",outcome="skipped"}';
  assert.equal(after.get(name) - (before.get(name) ?? 0), 1, name);
  await finish();
});
