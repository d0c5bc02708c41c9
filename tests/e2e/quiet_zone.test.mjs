// Quiet hours by the recipient's own time zone: a contact whose timezone is
// set (explicit) has its night there, not in the numbering register's zone
// of its number or the policy's: for a message sent by text or by template
// through the API, for a campaign's recipient, and again when a deferred
// message comes due. And a scheduled SMS-only advertising message is looked
// at again for prohibited content when it comes due. The test clock moves
// time.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil, quietNow } from './lib/harness.mjs';
import { importList, waitCampaign } from './lib/campaigns.mjs';

/** The UTC offset (minutes) of zone now, e.g. 540 for Asia/Tokyo. */
function offsetOf(zone) {
  const d = new Date();
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23',
    year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' })
    .formatToParts(d).map((x) => [x.type, x.value]));
  const local = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute);
  return Math.round((local - Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(),
    d.getUTCHours(), d.getUTCMinutes())) / 60000);
}

/** A zone where it is not now within quiet hours that run from an hour
    ago to an hour from now in UTC: six hours or more away. */
const FAR = offsetOf('Asia/Tokyo') >= 360 ? 'Asia/Tokyo' : 'America/New_York';

async function world(t) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 }, args: ['--test_clock', 'on'] });
  // quiet now in UTC (the policy's zone, and the zone of a number the
  // register does not know)
  await env.k.call('PUT', '/v1/policy', { key: env.key, body: { quiet_hours: quietNow() } }, 200);
  return env;
}

test('quiet hours go by the contact\'s own zone: text and template sends, and when due', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await world(t);
  const [OWN, NONE] = ['79161239901', '79161239902'];
  await k.consent(key, [OWN, NONE]);
  await k.call('PUT', `/v1/contacts/${OWN}`, { key, body: { name: 'Анна', timezone: FAR } }, 200);
  await k.call('PUT', `/v1/contacts/${NONE}`, { key, body: { name: 'Борис' } }, 200);
  // night in UTC, day where the first one lives
  const own = await k.send(key, { to: OWN, text: 'Скидки весь день', class: 'advertising' });
  assert.equal(own.status, 'accepted', JSON.stringify(own));
  const none = await k.send(key, { to: NONE, text: 'Скидки весь день', class: 'advertising' });
  assert.equal(none.status, 'scheduled', JSON.stringify(none));
  assert.equal(none.decisions[0].reason, 'quiet_hours');
  await k.call('PUT', '/v1/templates/sale', { key, body: { text: '{{name}}, скидки весь день' } }, 200);
  const batch = await k.call('POST', '/v1/messages/batch', { key, body: { messages: [
    { to: OWN, template: 'sale', class: 'advertising' },
    { to: NONE, template: 'sale', class: 'advertising' }] } }, 202);
  assert.deepEqual(batch.results.map((m) => m.status), ['accepted', 'scheduled'], JSON.stringify(batch));
  await k.waitStatus(key, own.id, 'delivered');
  // Scheduled into the UTC night: when it comes due, the contact's own
  // zone (day) lets it go, while the one without waits for the morning.
  const at = new Date(Date.now() + 10 * 60e3).toISOString();
  const later = await k.send(key, { to: OWN, text: 'Скидки через десять минут', class: 'advertising', send_at: at });
  const later2 = await k.send(key, { to: NONE, text: 'Скидки через десять минут', class: 'advertising', send_at: at });
  for (const m of [later, later2]) assert.equal(m.status, 'scheduled', JSON.stringify(m));
  await k.request('POST', '/v1/test/clock', { body: { shift: '11m' } });
  const g = await k.waitStatus(key, later.id, 'delivered', 15000);
  assert.ok(!g.decisions.some((d) => d.reason === 'quiet_hours'), JSON.stringify(g.decisions));
  const g2 = await k.message(key, later2.id);
  assert.equal(g2.status, 'scheduled', JSON.stringify(g2));
  await finish();
});

test('a campaign\'s recipient with its own zone is sent in its day; one without waits for the morning', { timeout: 90000 }, async (t) => {
  const { k, key, finish } = await world(t);
  const csv = `phone,name,timezone,consent\n79161239911,Анна,${FAR},yes\n79161239912,Борис,,yes\n`;
  await importList(k, key, 'base', csv);
  await k.call('PUT', '/v1/templates/promo', { key, body: { text: '{{name}}, скидка 10% на обувь' } }, 200);
  await k.call('PUT', '/v1/campaigns/zones', { key, body: { audience: { list: 'base' }, template: 'promo', class: 'advertising' } }, 200);
  await k.call('POST', '/v1/campaigns/zones/start', { key }, 200);
  const rows = await waitUntil(async () => {
    const r = await k.call('GET', '/v1/campaigns/zones/recipients', { key }, 200);
    const list = r.recipients ?? r.items ?? r.data ?? [];
    return list.length === 2 && list.every((x) => x.message) ? list : null;
  }, 'both recipients to have a message', 30000);
  const by = Object.fromEntries(rows.map((x) => [x.phone, x.message]));
  const a = await k.waitStatus(key, by['79161239911'], 'delivered', 15000);
  assert.ok(!a.decisions.some((d) => d.reason === 'quiet_hours'), JSON.stringify(a.decisions));
  const b = await k.message(key, by['79161239912']);
  assert.equal(b.status, 'scheduled', JSON.stringify(b));
  assert.equal(b.decisions[0].reason, 'quiet_hours');
  await k.request('POST', '/v1/test/clock', { body: { shift: '2h' } });
  await k.waitStatus(key, b.id, 'delivered', 15000);
  await waitCampaign(k, key, 'zones', 'done', 30000);
  await finish();
});

test('a scheduled SMS-only advertising message is looked at again for its content when due', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 }, args: ['--test_clock', 'on'] });
  const [A, B] = ['79161239921', '79161239922'];
  await k.consent(key, [A, B]);
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null } }, 200);
  const at = new Date(Date.now() + 60 * 60e3).toISOString();
  const bad = await k.send(key, { to: A, text: 'Большая РАСПРОДАЖА зимы', class: 'advertising', send_at: at });
  const ok = await k.send(key, { to: B, text: 'Новая коллекция весны', class: 'advertising', send_at: at });
  for (const m of [bad, ok]) assert.equal(m.status, 'scheduled', JSON.stringify(m));
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null, content_rules: { words: ['распродаж*'] } } }, 200);
  await k.request('POST', '/v1/test/clock', { body: { shift: '61m' } });
  await k.waitStatus(key, ok.id, 'delivered', 15000);
  const g = await waitUntil(async () => {
    const x = await k.message(key, bad.id);
    return x.finished ? x : null;
  }, 'the refused one to end', 15000);
  assert.equal(g.status, 'failed', JSON.stringify(g));
  assert.equal(g.error.code, 'prohibited_content');
  const d = g.decisions.find((x) => x.reason === 'prohibited_content');
  assert.deepEqual([d.rule, d.outcome, d.channel, d.when], ['prohibited_content', 'refused', 'sms', 'due']);
  assert.deepEqual(smsc.submits.map((s) => s.destination_addr), [B], 'only the clean one went');
  await finish();
});
