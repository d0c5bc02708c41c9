// More of opt-out and the rules around it, end to end:
// - a STOP sent from the phone through kaskad-sim's own SMSC (POST /mo): the
//   phone on the stop-list, the confirmation SMS at the simulator, the next
//   advertising refused stop_listed;
// - a STOP in WhatsApp (the simulator's signed inbound webhook): the same,
//   confirmed in WhatsApp, and the SMS refused too;
// - an inbound message is attributed by the account's last message to the
//   phone only within 30 days (the test clock moves kaskad's time);
// - a message carrying a one-time code falls through to SMS at night, where
//   another cascade waits for the morning;
// - a frequency cap counts messages on every channel;
// - /metrics counts stop_listed and no_consent refusals at accept.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil, quietNow } from './lib/harness.mjs';
import { sendMo } from './lib/smsc.mjs';
import { Sim, pointChannelsAtSim, APPS } from './lib/sim.mjs';

const post = (k, key, body) => k.request('POST', '/v1/messages', { key, body });

/** kaskad + the simulator's messengers (and the npm SMSC for SMS); the
    account's quiet hours off unless asked, so advertising goes at once. */
async function world(t, { knobs = {}, args = [] } = {}) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 }, args });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config(knobs);
  await pointChannelsAtSim(env.k, sim);
  await env.k.call('PUT', '/v1/policy', { key: env.key, body: { quiet_hours: null } }, 200);
  env.sim = sim;
  return env;
}

async function stopEntry(k, key, phone) {
  return waitUntil(async () => {
    const r = await k.request('GET', `/v1/stoplist/${phone}`, { key });
    return r.status === 200 ? r.json : null;
  }, `the stop-list entry of ${phone}`);
}

test('a STOP sent through kaskad-sim\'s SMSC (POST /mo): stop-list, confirmation SMS, next advertising refused', { timeout: 60000 }, async (t) => {
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  // The SMSC port the simulator was started on (its --smpp argument).
  const smpp = sim.proc.spawnargs[sim.proc.spawnargs.indexOf('--smpp') + 1];
  const simPort = Number(smpp.slice(smpp.lastIndexOf(':') + 1));
  const { k, key, finish } = await setup(t, { route: { port: simPort }, waitBound: false });
  await k.waitRouteBound('main');
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null } }, 200);
  const P = '79161238801';
  const ad = { to: P, text: 'Скидка 25% на всё', sender: 'KASKAD', class: 'advertising' };
  await k.consent(key, [P]);
  const first = await k.send(key, ad);
  await k.waitStatus(key, first.id, ['sent', 'delivered']);
  // What kaskad submitted to the simulator's SMSC for P, oldest first.
  const submitsTo = () => sim.call('GET', `/submits?dest=${P}&limit=100`);

  // An MO for a system_id no bound session has: the simulator says so.
  const none = await sim.req('POST', '/mo', { body: { from: P, to: 'KASKAD', text: 'СТОП', system_id: 'nobody' } });
  assert.equal(none.status, 409, none.text);
  const mo = await sim.call('POST', '/mo', { from: P, to: 'KASKAD', text: ' стоп. ' });
  assert.deepEqual(mo, { sent: 1 });
  const entry = await stopEntry(k, key, P);
  assert.deepEqual([entry.reason, entry.channel], ['reply', 'sms']);
  const confirm = await waitUntil(async () => (await submitsTo()).find((s) => s.text.startsWith('Вы отписаны')),
    'the confirmation SMS at the simulator');
  assert.equal(confirm.status, 'ESME_ROK');

  let r = await post(k, key, ad);
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'stop_listed');
  r = await k.request('GET', `/v1/replies?from=${P}`, { key });
  assert.equal(r.json.replies.length, 1);
  assert.deepEqual([r.json.replies[0].text, r.json.replies[0].channel, r.json.replies[0].attributed_by,
    r.json.replies[0].in_reply_to], [' стоп. ', 'sms', 'last_message', first.id]);
  r = await k.request('GET', `/v1/consents/${P}`, { key });
  assert.equal(r.json.current, false);
  // Only the first advertising and the confirmation went to the phone.
  assert.equal((await submitsTo()).length, 2);
  await finish();
  await sim.stopClean();
});

test('a WhatsApp STOP lists the phone for every channel and is confirmed in WhatsApp', { timeout: 60000 }, async (t) => {
  const { k, key, sim, smsc, finish } = await world(t, { knobs: { whatsapp: { reach: 1, read: 0, deliver_ms: [20, 20] } } });
  const P = '79161238811';
  await k.consent(key, [P]);
  // The account's WhatsApp message (a template: no window open yet).
  const first = await k.send(key, { to: P, text: 'Скидка 15%', class: 'advertising',
    whatsapp_template: { name: 'promo', language: 'ru', params: ['15'] },
    cascade: [{ channel: 'whatsapp', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }] });
  await k.waitStatus(key, first.id, 'delivered');

  const r0 = await sim.call('POST', '/whatsapp/inbound', { token: APPS.whatsapp.token, from: P, text: 'STOP!' });
  assert.equal(r0.status, 200, `kaskad took the signed webhook: ${JSON.stringify(r0)}`);
  const entry = await stopEntry(k, key, P);
  assert.deepEqual([entry.reason, entry.channel], ['reply', 'whatsapp']);
  // The confirmation goes in WhatsApp, as text: the person's message opened the window.
  const confirm = await waitUntil(async () => (await sim.requests('whatsapp')).map((x) => JSON.parse(x.body))
    .find((b) => b.to === P && b.type === 'text' && b.text?.body?.startsWith('Вы отписаны')), 'the confirmation in WhatsApp');
  assert.ok(confirm);
  let r = await k.request('GET', '/v1/replies?channel=whatsapp', { key });
  assert.equal(r.status, 200, r.text);
  const reply = r.json.replies[0];
  assert.deepEqual([reply.channel, reply.phone, reply.text, reply.attributed_by, reply.in_reply_to],
    ['whatsapp', P, 'STOP!', 'last_message', first.id]);

  // One stop-list: an SMS advertising is refused, the consent withdrawn.
  r = await post(k, key, { to: P, text: 'Скидка 20%', class: 'advertising' });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'stop_listed');
  r = await k.request('GET', `/v1/consents/${P}`, { key });
  assert.equal(r.json.current, false);
  assert.equal(r.json.consents[0].withdrawn_by, 'reply');
  assert.equal(smsc.submits.length, 0, 'nothing went by SMS');
  await finish();
});

test('attribution by the last message holds 30 days, not longer (test clock)', { timeout: 60000 }, async (t) => {
  const { k, smsc, key, finish } = await setup(t, { args: ['--test_clock', 'on'] });
  const shift = async (by) => {
    const r = await k.request('POST', '/v1/test/clock', { body: { shift: by } });
    assert.equal(r.status, 200, r.text);
  };
  const replies = async (phone) => (await k.call('GET', `/v1/replies?from=${phone}`, { key }, 200)).replies;
  const P = '79161238821';
  const sent = await k.send(key, { to: P, text: 'Заказ 31 готов', sender: 'KASKAD' });
  await k.waitStatus(key, sent.id, 'sent');
  // 29 days later: still the account's.
  await shift('29d');
  assert.equal(await sendMo(smsc, P, 'Спасибо'), 0);
  const first = await waitUntil(async () => (await replies(P))[0], 'the reply within 30 days');
  assert.deepEqual([first.attributed_by, first.in_reply_to], ['last_message', sent.id]);
  // 31 days after the message: nobody's. A STOP then lists nothing either.
  await shift('2d');
  assert.equal(await sendMo(smsc, P, 'Когда доставка?'), 0);
  assert.equal(await sendMo(smsc, P, 'STOP'), 0);
  // Stored (the SMSC had its answer after the store), but not the account's.
  await k.settled(key);
  assert.equal((await replies(P)).length, 1);
  assert.equal((await k.request('GET', `/v1/stoplist/${P}`, { key })).status, 404);
  assert.equal(smsc.submits.filter((s) => s.destination_addr === P).length, 1, 'no confirmation went');
  // A new message from the account starts the 30 days again.
  const again = await k.send(key, { to: P, text: 'Заказ 32 готов', sender: 'KASKAD' });
  await k.waitStatus(key, again.id, 'sent');
  assert.equal(await sendMo(smsc, P, 'Спасибо ещё раз'), 0);
  const later = await waitUntil(async () => {
    const rs = await replies(P);
    return rs.length === 2 ? rs[0] : null;
  }, 'the reply to the new message');
  assert.deepEqual([later.text, later.attributed_by, later.in_reply_to], ['Спасибо ещё раз', 'last_message', again.id]);
  await finish();
});

test('quiet hours: a message with a one-time code falls through to SMS at night; another waits', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t, {
    knobs: { vk: { reach: 1, read: 0, deliver_ms: [20, 20], read_ms: [30, 30] } }, args: ['--test_clock', 'on'] });
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: quietNow() } }, 200);
  const cascade = [{ channel: 'vk', wait: 'read', timeout: '2s' }, { channel: 'sms' }];
  const held = await k.send(key, { to: '79161238831', text: 'Заказ 40 доставлен', vk_id: '2001', cascade });
  const code = await k.send(key, { to: '79161238832', text: 'Код входа 4821', code: '4821', vk_id: '2002', cascade });
  assert.equal(code.channel, 'vk');
  // The code's SMS goes after VK's timeout, at night too.
  const got = await k.waitStatus(key, code.id, 'delivered', 20000);
  assert.deepEqual(got.attempts.map((a) => [a.channel, a.status, a.error]), [['vk', 'timeout', null], ['sms', 'delivered', null]]);
  assert.ok(!(got.decisions ?? []).some((d) => d.reason === 'quiet_hours'), JSON.stringify(got.decisions));
  let other = await waitUntil(async () => {
    const g = await k.message(key, held.id);
    return g.attempts.length === 2 ? g : null;
  }, 'the other message\'s SMS step', 15000);
  assert.deepEqual(other.attempts.map((a) => [a.channel, a.status, a.error]),
    [['vk', 'timeout', null], ['sms', 'sending', 'quiet_hours']]);
  await k.settled(key, [code.id]);
  assert.deepEqual(smsc.submits.map((s) => s.destination_addr), ['79161238832'], 'only the code\'s SMS went');
  // Morning: the held one goes too.
  const r = await k.request('POST', '/v1/test/clock', { body: { shift: '2h' } });
  assert.equal(r.status, 200, r.text);
  other = await k.waitStatus(key, held.id, 'delivered', 20000);
  assert.equal(other.channel, 'sms');
  await finish();
});

test('a frequency cap counts every channel: VK and Viber, then SMS, then refused', { timeout: 60000 }, async (t) => {
  const { k, key, sim, smsc, finish } = await world(t, { knobs: {
    vk: { reach: 1, read: 1, deliver_ms: [20, 20], read_ms: [30, 30] },
    viber: { reach: 1, read: 0, deliver_ms: [20, 20] } } });
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null, caps: [{ class: 'advertising', max: 2, per: '7d' }] } }, 200);
  const P = '79161238841';
  const Q = '79161238842';
  await k.consent(key, [P, Q]);
  // P: the first by VK, the second by SMS; Q: the first by Viber, the second by SMS.
  const vk = await k.send(key, { to: P, text: 'Акция 1', class: 'advertising', vk_id: '3001', cascade: [{ channel: 'vk', wait: 'read' }] });
  const viber = await k.send(key, { to: Q, text: 'Акция 1', class: 'advertising', viber_id: 'vb-cap', cascade: [{ channel: 'viber', wait: 'delivered' }] });
  assert.equal((await k.waitStatus(key, vk.id, 'read')).channel, 'vk');
  assert.equal((await k.waitStatus(key, viber.id, 'delivered')).channel, 'viber');
  for (const to of [P, Q]) {
    const m = await k.send(key, { to, text: 'Акция 2', class: 'advertising' });
    assert.equal((await k.waitStatus(key, m.id, 'delivered')).channel, 'sms');
  }
  // The third, on any channel: refused.
  for (const body of [{ to: P, text: 'Акция 3', class: 'advertising' },
    { to: Q, text: 'Акция 3', class: 'advertising', viber_id: 'vb-cap', cascade: [{ channel: 'viber' }] },
    { to: P, text: 'Акция 3', class: 'advertising', vk_id: '3001', cascade: [{ channel: 'vk', wait: 'read', timeout: '30s' }, { channel: 'sms' }] }]) {
    const r = await post(k, key, body);
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.error.code, 'frequency_cap');
  }
  assert.equal(smsc.submits.length, 2);
  assert.equal((await sim.requests('vk')).length, 1);
  assert.equal((await sim.requests('viber')).length, 1);
  const m = await k.metrics();
  assert.equal(m.get('kaskad_policy_decisions_total{reason="frequency_cap",outcome="refused"}'), 3);
  await finish();
});

test('/metrics counts stop_listed and no_consent refusals at accept', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null } }, 200);
  const series = (reason) => `kaskad_policy_decisions_total{reason="${reason}",outcome="refused"}`;
  let m = await k.metrics();
  assert.equal(m.get(series('stop_listed')), 0);
  assert.equal(m.get(series('no_consent')), 0);
  const LISTED = '79161238851';
  const NONE = '79161238852';
  await k.consent(key, [LISTED]);
  await k.call('PUT', `/v1/stoplist/${LISTED}`, { key, body: {} }, 200);
  const ad = (to) => ({ to, text: 'Скидка 10%', class: 'advertising' });
  for (const [body, code] of [[ad(NONE), 'no_consent'], [ad(NONE), 'no_consent'], [ad(LISTED), 'stop_listed'],
    [{ to: LISTED, text: 'Заказ 5 готов', class: 'transactional' }, 'stop_listed']]) {
    const r = await post(k, key, body);
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.error.code, code);
  }
  // In a batch, each refusal counts; an accepted message does not.
  const b = await k.call('POST', '/v1/messages/batch', { key, body: { messages: [ad(NONE), ad(LISTED),
    { to: NONE, text: 'Заказ 6 готов', class: 'service' }] } }, 202);
  assert.deepEqual(b.results.map((x) => x.error?.code ?? null), ['no_consent', 'stop_listed', null]);
  m = await k.metrics();
  assert.equal(m.get(series('no_consent')), 3);
  assert.equal(m.get(series('stop_listed')), 3);
  assert.equal(m.get('kaskad_policy_decisions_total{reason="no_consent",outcome="deferred"}'), 0);
  await finish();
});
