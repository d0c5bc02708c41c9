// The contacts API: put, get, patch (lists add up, attributes merge), delete;
// pages in phone order with next_cursor, by list and by q; list sizes; the
// CSV export (cells beginning with = + - @ made harmless); accounts see only
// their own contacts; bad input refused with a code.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';

test('contacts: put, get, patch, delete, pages, lists, export', async (t) => {
  const { k, key, finish } = await setup(t);
  const req = (m, p, body) => k.request(m, p, { key, body });

  let r = await req('PUT', '/v1/contacts/8%20(916)%20123-45-67', {
    name: 'Анна', email: 'anna@example.com', timezone: 'Asia/Yekaterinburg', lists: ['vip'],
    attrs: { city: 'Казань', orders: 2 }, consent: true, consent_source: 'site',
    consent_at: '2026-01-02T03:04:05Z',
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.phone, '79161234567');
  assert.equal(r.json.timezone, 'Asia/Yekaterinburg');
  assert.equal(r.json.timezone_source, 'explicit');
  assert.deepEqual(r.json.lists, ['vip']);
  assert.deepEqual(r.json.attrs, { city: 'Казань', orders: 2 });
  assert.equal(r.json.consent, true);
  assert.equal(r.json.consent_at, '2026-01-02T03:04:05.000Z');
  assert.equal(r.json.stop_listed, false);
  for (const f of ['operator', 'region', 'vk_id', 'telegram_chat_id', 'viber_id', 'created_at', 'updated_at'])
    assert.ok(f in r.json, f);

  r = await req('PATCH', '/v1/contacts/79161234567', { lists: ['news'], attrs: { orders: 3 } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.name, 'Анна', 'a field not given stays');
  assert.deepEqual(r.json.lists, ['news', 'vip']);
  assert.deepEqual(r.json.attrs, { city: 'Казань', orders: 3 });
  assert.equal(r.json.timezone, 'Asia/Yekaterinburg', 'an explicit zone stays');

  // PUT replaces the whole contact.
  r = await req('PUT', '/v1/contacts/79161234567', { name: '=cmd()', lists: ['vip'] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.email, null);
  assert.deepEqual(r.json.lists, ['vip']);
  assert.deepEqual(r.json.attrs, {});
  assert.equal(r.json.timezone_source === 'explicit', false);

  for (let i = 0; i < 25; i++) {
    const phone = `7903000${String(i).padStart(4, '0')}`;
    r = await req('PUT', `/v1/contacts/${phone}`, { name: i === 7 ? 'Борис' : 'x', lists: i % 2 ? ['odd'] : [] });
    assert.equal(r.status, 200, r.text);
  }
  const seen = [];
  let cursor = null;
  do {
    r = await req('GET', `/v1/contacts?limit=10${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    seen.push(...r.json.contacts.map((c) => c.phone));
    cursor = r.json.next_cursor;
  } while (cursor);
  assert.equal(seen.length, 26);
  assert.deepEqual(seen, [...seen].sort(), 'phone order');
  r = await req('GET', '/v1/contacts?list=odd&limit=1000');
  assert.equal(r.json.contacts.length, 12);
  r = await req('GET', `/v1/contacts?q=${encodeURIComponent('Бор')}`);
  assert.deepEqual(r.json.contacts.map((c) => c.phone), ['79030000007']);

  r = await req('GET', '/v1/lists');
  assert.deepEqual(r.json.lists, [{ name: 'odd', size: 12 }, { name: 'vip', size: 1 }]);

  r = await req('GET', '/v1/contacts.csv?list=vip');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/csv/);
  const rows = r.text.trim().split('\n');
  assert.equal(rows.length, 2);
  assert.match(rows[0], /^phone,name,email,timezone,/);
  assert.match(rows[1], /^79161234567,"'=cmd\(\)",/);
  r = await req('GET', '/v1/contacts.csv');
  assert.equal(r.text.trim().split('\n').length, 27);

  // Another account sees none of it.
  const other = await k.createAccount();
  r = await k.request('GET', '/v1/contacts/79161234567', { key: other.key });
  assert.equal(r.status, 404);
  r = await k.request('GET', '/v1/lists', { key: other.key });
  assert.deepEqual(r.json.lists, []);

  // Bad input.
  r = await req('PUT', '/v1/contacts/abc', { name: 'x' });
  assert.equal(r.json.error.code, 'invalid_phone');
  r = await req('PUT', '/v1/contacts/79161234567', { timezone: 'Mars/Base' });
  assert.equal(r.json.error.code, 'invalid_timezone');
  r = await req('PUT', '/v1/contacts/79161234567', { lists: ['no spaces'] });
  assert.equal(r.json.error.code, 'invalid_lists');
  r = await req('PUT', '/v1/contacts/79161234567', { email: 'nope' });
  assert.equal(r.json.error.code, 'invalid_email');
  r = await req('GET', '/v1/contacts?limit=0');
  assert.equal(r.json.error.code, 'invalid_limit');
  r = await req('PATCH', '/v1/contacts/79990000000', { name: 'x' });
  assert.equal(r.status, 404);

  r = await req('DELETE', '/v1/contacts/79161234567');
  assert.equal(r.status, 204);
  r = await req('DELETE', '/v1/contacts/79161234567');
  assert.equal(r.status, 404);
  r = await req('GET', '/v1/lists');
  assert.deepEqual(r.json.lists, [{ name: 'odd', size: 12 }]);
  await finish();
});
