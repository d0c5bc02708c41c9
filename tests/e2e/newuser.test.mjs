// What a new user runs into first: an idempotency key reused for another
// message, cascade timeouts against the validity, account routes and
// senders, the default route, strict config files, replies, a second
// daemon on the same data folder, fields kaskad cannot honour yet.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';

function expectCode(r, status, code, field) {
  assert.equal(r.status, status, `HTTP status (body: ${r.text.slice(0, 300)})`);
  assert.equal(r.json?.error?.code, code, `error code (body: ${r.text.slice(0, 300)})`);
  if (field) assert.equal(r.json.error.field, field, 'error field');
}

test('an idempotency key reused with another body is refused; the same body replays', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const post = (body, headers) => k.request('POST', '/v1/messages', { key, body, headers });
  const body = { to: '79161238801', text: 'idem first', sender: 'SHOP', idempotency_key: 'nu-1' };
  const r1 = await post(body);
  assert.equal(r1.status, 202, r1.text);
  // The same message written differently (other phone form, other key order) replays.
  const same = await post({ idempotency_key: 'nu-1', sender: 'SHOP', text: 'idem first', to: '+79161238801' });
  assert.equal(same.status, 202, same.text);
  assert.equal(same.json.id, r1.json.id);
  assert.equal(same.json.duplicate, true);
  // Any meaningful field changed: 422, nothing sent.
  for (const change of [{ text: 'idem second' }, { to: '79161238802' }, { sender: 'OTHER' },
    { class: 'advertising' }, { ttl: '1h' }, { campaign: 'c1' }, { callback_url: 'http://127.0.0.1:9/x' },
    { vk_id: '5' }, { cascade: [{ channel: 'vk', wait: 'read', timeout: '10s' }, { channel: 'sms' }] }]) {
    const r = await post({ ...body, ...change });
    expectCode(r, 422, 'idempotency_mismatch', 'idempotency_key');
    assert.match(r.json.error.message, new RegExp(r1.json.id));
  }
  // The header form too.
  const h = await post({ to: '79161238801', text: 'other text' }, { 'idempotency-key': 'nu-1' });
  expectCode(h, 422, 'idempotency_mismatch');
  // A batch: per item.
  const b = await k.request('POST', '/v1/messages/batch', {
    key,
    body: { messages: [body, { ...body, text: 'changed' }, { to: '79161238803', text: 'b3', idempotency_key: 'nu-3' },
      { to: '79161238803', text: 'b3 other', idempotency_key: 'nu-3' }] },
  });
  assert.equal(b.status, 202, b.text);
  assert.equal(b.json.results[0].id, r1.json.id);
  assert.equal(b.json.results[0].duplicate, true);
  assert.equal(b.json.results[1].error?.code, 'idempotency_mismatch');
  assert.match(b.json.results[2].id, /^msg_/);
  assert.equal(b.json.results[3].error?.code, 'idempotency_mismatch');
  assert.equal(b.json.accepted, 2);
  assert.equal(b.json.rejected, 2);
  await k.waitStatus(key, b.json.results[2].id, 'sent');
  await k.waitStatus(key, r1.json.id, 'sent');
  assert.equal(smsc.submits.filter((s) => s.text.startsWith('idem')).length, 1, 'one submit for the key');
  assert.equal(smsc.submits.filter((s) => s.text.startsWith('b3')).length, 1);
  await finish();
});
