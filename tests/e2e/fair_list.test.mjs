// GET /v1/messages searches by phone (normalised like "to"), shows each
// message's text, and bounds the rows one request examines: a filter that
// matches nothing answers at once with a cursor to go on from.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';

test('phone= finds an account\'s messages to one number, with their text', { timeout: 30000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  const a = await k.send(key, { to: '+79161110001', text: 'Код 1234' });
  await k.send(key, { to: '+79161110002', text: 'other' });
  const c = await k.send(key, { to: '+79161110001', text: 'second' });
  const other = await k.createAccount();
  await k.send(other.key, { to: '+79161110001', text: 'not yours' });

  for (const phone of ['+79161110001', '8 (916) 111-00-01', '79161110001']) {
    const r = await k.call('GET', `/v1/messages?phone=${encodeURIComponent(phone)}`, { key }, 200);
    assert.deepEqual(r.messages.map((m) => m.id), [c.id, a.id], `phone=${phone}`);
    assert.deepEqual(r.messages.map((m) => m.text), ['second', 'Код 1234']);
    assert.equal(r.next_cursor, null);
  }
  const all = await k.call('GET', '/v1/messages', { key }, 200);
  assert.equal(all.messages.length, 3);
  assert.ok(all.messages.every((m) => typeof m.text === 'string'));

  const none = await k.call('GET', '/v1/messages?phone=%2B79160000000', { key }, 200);
  assert.deepEqual(none.messages, []);
  assert.equal(none.next_cursor, null);

  const bad = await k.request('GET', '/v1/messages?phone=abc', { key });
  assert.equal(bad.status, 422);
  assert.equal(bad.json.error.code, 'invalid_phone');
  assert.equal(bad.json.error.field, 'phone');
  await finish();
});

test('a time filter that matches nothing ends with an empty page', { timeout: 30000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  for (let i = 0; i < 5; i++) await k.send(key, { to: `+7916111000${i}`, text: `t${i}` });
  const r = await k.call('GET', '/v1/messages?to=1', { key }, 200);
  assert.deepEqual(r.messages, []);
  assert.equal(r.next_cursor, null, 'the history is shorter than one examination');
  await finish();
});
