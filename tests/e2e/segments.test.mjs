// Segments end to end: an imported base, a segment of it with its count,
// the contacts listing and the CSV export by segment, a filter that does
// not parse (422 with its position), a segment of another account, then a
// preview for a contact and a send by template whose missing variables the
// contact's fields fill.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { importList } from './lib/campaigns.mjs';

const BASE = [
  'phone,name,city,orders,lists',
  '79161110001,Анна,Казань,3,vip',
  '79161110002,Борис,Казань,1,vip',
  '79161110003,Вера,Омск,5,',
  '89161110004,Глеб,Казань,12,vip|news',
  '+7 916 111-00-05,Дина,Казань,two,vip',
  '79161110006,Егор,,7,news',
].join('\n') + '\n';

async function importBase(k, key) {
  const imp = await importList(k, key, 'base', BASE);
  assert.equal(imp.created, 6);
}

test('segments: count, listing and export by segment, a bad filter, accounts apart', async (t) => {
  const { k, key, finish } = await setup(t);
  await importBase(k, key);
  const filter = "city = 'Казань' and orders >= 2 and list = 'vip'";
  const put = await k.call('PUT', '/v1/segments/kazan-vip', { key, body: { filter } }, 200);
  assert.equal(put.name, 'kazan-vip');
  assert.equal(put.filter, filter);
  assert.equal(put.count, 2);   // 79161110001 (3), 79161110004 (12); "two" is not a number
  const got = await k.call('GET', '/v1/segments/kazan-vip', { key }, 200);
  assert.equal(got.count, 2);
  await k.call('PUT', '/v1/segments/no-city', { key, body: { filter: 'not (city exists)' } }, 200);
  const all = await k.call('GET', '/v1/segments', { key }, 200);
  assert.deepEqual(all.segments.map((s) => s.name), ['kazan-vip', 'no-city']);

  const page = await k.call('GET', '/v1/contacts?segment=kazan-vip&limit=1', { key }, 200);
  assert.deepEqual(page.contacts.map((c) => c.phone), ['79161110001']);
  assert.equal(page.next_cursor, '79161110001');
  const rest = await k.call('GET', `/v1/contacts?segment=kazan-vip&cursor=${page.next_cursor}`, { key }, 200);
  assert.deepEqual(rest.contacts.map((c) => c.phone), ['79161110004']);
  const none = await k.call('GET', '/v1/contacts?segment=no-city&list=news', { key }, 200);
  assert.deepEqual(none.contacts.map((c) => c.phone), ['79161110006']);
  const csv = await k.request('GET', '/v1/contacts.csv?segment=kazan-vip', { key });
  assert.equal(csv.status, 200);
  const lines = csv.text.trim().split('\n');
  assert.equal(lines.length, 3, csv.text);
  assert.ok(lines[1].startsWith('79161110001,'));
  assert.ok(lines[2].startsWith('79161110004,'));

  // a filter that does not parse: where
  let r = await k.request('PUT', '/v1/segments/bad', { key, body: { filter: "city = 'Казань' and orders >>= 2" } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'invalid_filter');
  assert.equal(r.json.error.position, 28);
  r = await k.request('PUT', '/v1/segments/bad', { key, body: { filter: "city = 'Казань" } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.position, 7);
  r = await k.request('GET', '/v1/segments/bad', { key });
  assert.equal(r.status, 404);
  r = await k.request('GET', '/v1/contacts?segment=bad', { key });
  assert.equal(r.status, 404);
  r = await k.request('GET', '/v1/contacts.csv?segment=bad', { key });
  assert.equal(r.status, 404);
  r = await k.request('PUT', '/v1/segments/no%20way', { key, body: { filter: 'city exists' } });
  assert.equal(r.status, 422);

  // another account sees none of them
  const other = (await k.createAccount()).key;
  r = await k.request('GET', '/v1/segments/kazan-vip', { key: other });
  assert.equal(r.status, 404);
  await k.call('DELETE', '/v1/segments/no-city', { key }, 204);
  r = await k.request('DELETE', '/v1/segments/no-city', { key });
  assert.equal(r.status, 404);
  await finish();
});

test('segments: an export of several pages reads each member once, in phone order', async (t) => {
  const { k, key, finish } = await setup(t);
  // 2,600 contacts: every other one in vip, every third of those in Kazan
  const rows = ['phone,city,orders,lists'];
  for (let i = 0; i < 2600; i++) {
    rows.push(`7916200${String(i).padStart(4, '0')},${i % 3 ? 'Omsk' : 'Kazan'},${i % 7},${i % 2 ? 'base' : 'base|vip'}`);
  }
  await importList(k, key, 'all', rows.join('\n') + '\n');
  const want = [];
  for (let i = 0; i < 2600; i += 2) if (i % 3 === 0 && i % 7 >= 2) want.push(`7916200${String(i).padStart(4, '0')}`);
  await k.call('PUT', '/v1/segments/big', { key, body: { filter: "list = 'vip' and city = 'Kazan' and orders >= 2" } }, 200);
  const seg = await k.call('GET', '/v1/segments/big', { key }, 200);
  assert.equal(seg.count, want.length);
  const csv = await k.request('GET', '/v1/contacts.csv?segment=big', { key });
  assert.equal(csv.status, 200);
  const phones = csv.text.trim().split('\n').slice(1).map((l) => l.split(',')[0]);
  assert.deepEqual(phones, want);
  // the whole list, past a page of the cursor too
  const vip = await k.request('GET', '/v1/contacts.csv?list=vip', { key });
  assert.equal(vip.text.trim().split('\n').length - 1, 1300);
  // the whole base, each contact with its lists
  const base = (await k.request('GET', '/v1/contacts.csv', { key })).text.trim().split('\n').slice(1);
  assert.equal(base.length, 2600);
  assert.deepEqual(base.slice(0, 2).map((l) => [l.split(',')[0], l.split(',')[10]]),
    [['79162000000', 'all|base|vip'], ['79162000001', 'all|base']]);
  assert.deepEqual(base.map((l) => l.split(',')[0]), [...base.map((l) => l.split(',')[0])].sort());
  await finish();
});

test('segments: preview for a contact, send by template filled from the contact', async (t) => {
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 } });
  await importBase(k, key);
  await k.call('PUT', '/v1/templates/promo', { key, body: {
    text: '{{name}}, {{city|друг}}: заказов {{orders}}, код {{code}}',
  } }, 200);
  const p = await k.call('POST', '/v1/templates/promo/preview', { key,
    body: { phone: '8 916 111-00-01', vars: { code: '42' } } }, 200);
  assert.equal(p.phone, '79161110001');
  assert.equal(p.channels.sms.text, 'Анна, Казань: заказов 3, код 42');
  const q = await k.call('POST', '/v1/templates/promo/preview', { key,
    body: { contact: '79161110006', vars: { code: '1', name: 'Егор Иванович' } } }, 200);
  assert.equal(q.channels.sms.text, 'Егор Иванович, друг: заказов 7, код 1');
  let r = await k.request('POST', '/v1/templates/promo/preview', { key, body: { phone: '79990000000' } });
  assert.equal(r.status, 404, r.text);

  const m = await k.send(key, { to: '+79161110003', template: 'promo', vars: { code: '7' } });
  await k.waitStatus(key, m.id, 'delivered');
  assert.deepEqual(smsc.submits.map((s) => s.text), ['Вера, Омск: заказов 5, код 7']);
  // a number without a contact: the variable is missing
  r = await k.request('POST', '/v1/messages', { key, body: { to: '79990000000', template: 'promo', vars: { code: '7' } } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'missing_variable');
  const b = await k.call('POST', '/v1/messages/batch', { key, body: { messages: [
    { to: '79161110002', template: 'promo', vars: { code: '1' } },
    { to: '79161110004', template: 'promo', vars: { code: '2', orders: 'много' } }] } }, 202);
  await k.waitStatus(key, b.results[0].id, 'delivered');
  await k.waitStatus(key, b.results[1].id, 'delivered');
  assert.deepEqual(smsc.submits.slice(1).map((s) => s.text).sort(),
    ['Борис, Казань: заказов 1, код 1', 'Глеб, Казань: заказов много, код 2']);
  await finish();
});
