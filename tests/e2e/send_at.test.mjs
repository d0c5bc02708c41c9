// Scheduled single sends: `send_at` (RFC 3339) on POST /v1/messages and on
// batch items stores the message `scheduled` and sends it at that time (the
// deferral quiet hours use); DELETE /v1/messages/{id} cancels it while it is
// scheduled, and it never goes. Both survive kill -9. The test clock
// (setting test_clock) moves kaskad's time instead of waiting.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

const PHONE = '79161234567';
const HOUR = 3600e3;

async function shift(k, by) {
  const r = await k.request('POST', '/v1/test/clock', { body: { shift: by } });
  assert.equal(r.status, 200, r.text);
}

/** kaskad's clock (the test clock moves it): a message's created_at. */
async function kaskadNow(k, key) {
  const m = await k.send(key, { to: '79160000000', text: 'clock' });
  await k.waitStatus(key, m.id, 'delivered');   // its receipt answered before any kill
  return Date.parse(m.created_at);
}

function world(t) {
  return setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 30 }, args: ['--test_clock', 'on'] });
}

test('send_at: scheduled, sent at its time; a past or far time is refused', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  const now = await kaskadNow(k, key);
  // An offset from UTC is read as such: 12:00+03:00 is 09:00Z.
  const at = new Date(now + HOUR).toISOString().replace(/\.\d+Z$/, 'Z');
  const m = await k.send(key, { to: PHONE, text: 'Напоминаем: приём завтра в 10:00', send_at: at });
  assert.equal(m.status, 'scheduled', JSON.stringify(m));
  assert.equal(Date.parse(m.send_at), Date.parse(at));
  const exp = Date.parse(m.expires_at) - Date.parse(at);
  assert.ok(exp > 0, 'the validity runs from send_at');
  const got = await k.message(key, m.id);
  assert.equal(got.status, 'scheduled');

  // In a batch too, with an offset.
  const local = new Date(now + 2 * HOUR + 3 * HOUR).toISOString().replace(/\.\d+Z$/, '+03:00');
  const b = await k.call('POST', '/v1/messages/batch', {
    key, body: { messages: [{ to: '79161234568', text: 'Через два часа', send_at: local }, { to: '79161234569', text: 'Сейчас' }] },
  }, 202);
  const items = b.results;
  assert.equal(items[0].status, 'scheduled', JSON.stringify(b));
  assert.equal(Date.parse(items[0].send_at), now + 2 * HOUR - ((now + 2 * HOUR) % 1000), JSON.stringify(items[0]));
  assert.equal(items[1].status, 'accepted');
  await k.waitStatus(key, items[1].id, 'delivered');

  // Refusals: a time in the past, more than a year ahead, not a time.
  const past = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', send_at: new Date(now - HOUR).toISOString() } });
  assert.equal(past.status, 422);
  assert.equal(past.json.error.code, 'send_at_in_past');
  const far = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', send_at: new Date(now + 400 * 24 * HOUR).toISOString() } });
  assert.equal(far.status, 422);
  assert.equal(far.json.error.code, 'send_at_too_far');
  const bad = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', send_at: 'tomorrow' } });
  assert.equal(bad.status, 422);
  assert.equal(bad.json.error.code, 'invalid_send_at');
  assert.equal(bad.json.error.field, 'send_at');

  const before = smsc.submits.length;
  assert.ok(!smsc.submits.some((s) => s.destination_addr === PHONE), 'nothing went before its time');
  await shift(k, '61m');
  await k.waitStatus(key, m.id, 'delivered');
  assert.ok(!smsc.submits.slice(before).some((s) => s.destination_addr === '79161234568'), 'the later one waits');
  await shift(k, '61m');
  await k.waitStatus(key, items[0].id, 'delivered');
  await finish();
});

test('send_at: DELETE cancels a scheduled message, which never goes; 409 otherwise', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ vk: { reach: 1, read: 0, deliver_ms: [20, 20], read_ms: [30, 30] } });
  await pointChannelsAtSim(k, sim);
  const now = await kaskadNow(k, key);
  const at = new Date(now + HOUR).toISOString();
  const sms = await k.send(key, { to: PHONE, text: 'Отменим', send_at: at });
  const vk = await k.send(key, { to: '79161234568', vk_id: '1001', text: 'И этот', send_at: at, cascade: [{ channel: 'vk', wait: 'read', timeout: '30s' }, { channel: 'sms' }] });
  const keep = await k.send(key, { to: '79161234569', text: 'Этот уйдёт', send_at: at });
  for (const m of [sms, vk]) {
    const r = await k.request('DELETE', `/v1/messages/${m.id}`, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'cancelled');
    const got = await k.message(key, m.id);
    assert.equal(got.status, 'cancelled');
    assert.equal(got.cost, 0);
    assert.equal(got.sms_only_cost, 0);  // nothing went, so nothing was saved
  }
  // Cancelled already, not scheduled, another account's, unknown.
  const again = await k.request('DELETE', `/v1/messages/${sms.id}`, { key });
  assert.equal(again.status, 409);
  assert.equal(again.json.error.code, 'not_scheduled');
  const now2 = await k.send(key, { to: '79161234560', text: 'Сразу' });
  await k.waitStatus(key, now2.id, 'delivered');
  const sent = await k.request('DELETE', `/v1/messages/${now2.id}`, { key });
  assert.equal(sent.status, 409);
  const other = await k.createAccount();
  const foreign = await k.request('DELETE', `/v1/messages/${keep.id}`, { key: other.key });
  assert.equal(foreign.status, 404);
  const unknown = await k.request('DELETE', '/v1/messages/msg_nothing', { key });
  assert.equal(unknown.status, 404);

  await shift(k, '61m');
  await k.waitStatus(key, keep.id, 'delivered');
  await k.settled(key, [keep.id]);
  assert.deepEqual(smsc.submits.map((s) => s.destination_addr).filter((a) => a !== '79160000000' && a !== '79161234560'), ['79161234569']);
  assert.equal((await sim.requests('vk')).length, 0, 'nothing went on VK');
  for (const m of [sms, vk]) assert.equal((await k.message(key, m.id)).status, 'cancelled');
  await finish();
});

test('send_at: a scheduled message and a cancel survive kill -9', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  const now = await kaskadNow(k, key);
  const at = new Date(now + HOUR).toISOString();
  const go = await k.send(key, { to: PHONE, text: 'Переживёт перезапуск', send_at: at });
  const stop = await k.send(key, { to: '79161234568', text: 'Отменён до перезапуска', send_at: at });
  const r = await k.request('DELETE', `/v1/messages/${stop.id}`, { key });
  assert.equal(r.status, 200, r.text);
  await k.kill9();
  await k.restart();
  await smsc.waitFor(() => smsc.boundSessions().length >= 1, 'kaskad to bind again');
  assert.equal((await k.message(key, go.id)).status, 'scheduled');
  assert.equal((await k.message(key, stop.id)).status, 'cancelled');
  await shift(k, '61m');
  await k.waitStatus(key, go.id, 'delivered');
  await k.settled(key, [go.id]);
  assert.equal(smsc.submits.filter((s) => s.destination_addr === '79161234568').length, 0);
  assert.equal(smsc.submits.filter((s) => s.destination_addr === PHONE).length, 1);
  await finish();
});

test('send_at with a window: the message goes inside the recipient\'s own local hours', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  const FAR = '79161234571';   // a contact in Vladivostok (UTC+10 all year)
  await k.call('PUT', `/v1/contacts/${FAR}`, { key, body: { name: 'Анна', timezone: 'Asia/Vladivostok' } }, 200);
  const now = await kaskadNow(k, key);
  // A window that opens two hours from now in Vladivostok and lasts an hour.
  const hhmm = (ms) => new Date(ms + 10 * HOUR).toISOString().slice(11, 16);
  const opens = Math.floor((now + 2 * HOUR) / 60000) * 60000;   // its minute, in UTC
  const window = { from: hhmm(opens), to: hhmm(opens + HOUR) };
  // Without send_at: held until the window opens, the decision traced.
  const m = await k.send(key, { to: FAR, text: 'Ваш заказ готов', window });
  assert.equal(m.status, 'scheduled', JSON.stringify(m));
  assert.equal(Date.parse(m.send_at), opens);
  assert.ok(m.decisions.some((d) => d.reason === 'outside_window' && d.outcome === 'deferred'), JSON.stringify(m.decisions));
  // With a send_at inside the window: that time, not moved.
  const inside = opens + 30 * 60000;
  const n = await k.send(key, { to: FAR, text: 'Напоминание', send_at: new Date(inside).toISOString(), window });
  assert.equal(Date.parse(n.send_at), inside);
  // With a send_at after the window has closed: its next opening, a day later.
  const after = await k.send(key, { to: FAR, text: 'Завтра', send_at: new Date(opens + 2 * HOUR).toISOString(), window });
  assert.equal(Date.parse(after.send_at), opens + 24 * HOUR);
  // A batch item takes it too; a bad window is refused.
  const b = await k.call('POST', '/v1/messages/batch', { key, body: { messages: [{ to: FAR, text: 'Из пакета', window }] } }, [200, 202]);
  assert.equal(Date.parse(b.results[0].send_at), opens, JSON.stringify(b));
  const bad = await k.request('POST', '/v1/messages', { key, body: { to: FAR, text: 'x', window: { from: '25:00', to: '10:00' } } });
  assert.equal(bad.status, 422);
  assert.equal(bad.json.error.code, 'invalid_window');
  // Nothing goes before the window opens; then the ones due go.
  await shift(k, '119m');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(smsc.submits.filter((s) => s.destination_addr === FAR).length, 0);
  await shift(k, '2m');
  await k.waitStatus(key, m.id, 'delivered');
  await k.waitStatus(key, b.results[0].id, 'delivered');
  assert.equal((await k.message(key, after.id)).status, 'scheduled');
  await finish();
});
