// The HTTP API: validation, authentication, account isolation, idempotency,
// batches and listing.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { STATUS } from './lib/smsc.mjs';

/** Asserts an error answer of the documented shape, then that the daemon still serves. */
async function expectError(k, r, status, code, field) {
  assert.equal(r.status, status, `HTTP status (body: ${r.text.slice(0, 300)})`);
  assert.ok(r.json && typeof r.json.error === 'object', `error body is JSON: ${r.text.slice(0, 300)}`);
  if (code) assert.equal(r.json.error.code, code, `error code (body: ${r.text.slice(0, 300)})`);
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0, 'error message not empty');
  if (field) assert.equal(r.json.error.field, field, 'error field');
  assert.ok(await k.healthy(), 'kaskad still answers /healthz');
}

test('validation errors', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const post = (body, headers) => k.request('POST', '/v1/messages', { key, body, headers });

  await expectError(k, await post('{"to": "79161234567", "text": '), 400, 'invalid_json');
  await expectError(k, await post('[1,2,3]'), 400);
  await expectError(k, await post({ text: 'hello' }), 422, 'invalid_phone', 'to');
  await expectError(k, await post({ to: 'not a phone', text: 'hello' }), 422, 'invalid_phone', 'to');
  await expectError(k, await post({ to: '+7916', text: 'hello' }), 422, 'invalid_phone', 'to');
  await expectError(k, await post({ to: 79161234567, text: 'hello' }), 422, null, 'to');
  await expectError(k, await post({ to: '79161234567', text: '' }), 422, null, 'text');
  await expectError(k, await post({ to: '79161234567' }), 422, null, 'text');
  await expectError(k, await post({ to: '79161234567', text: 'a'.repeat(153 * 20) }), 422, 'text_too_long', 'text');
  await expectError(k, await post({ to: '79161234567', text: 'ж'.repeat(67 * 20) }), 422, 'text_too_long', 'text');
  await expectError(k, await post({ to: '79161234567', text: 'hi', class: 'spam' }), 422, null, 'class');
  await expectError(k, await post({ to: '79161234567', text: 'hi', ttl: 'forever' }), 422, null, 'ttl');
  // seconds so many that counting them in milliseconds would overflow
  await expectError(k, await post('{"to":"79161234567","text":"hi","ttl":8888888888888888888}'), 422, 'invalid_ttl', 'ttl');
  await expectError(k, await post({ to: '79161234567', text: 'hi', ttl: -60 }), 422, 'invalid_ttl', 'ttl');

  // A body over the 1 MiB limit.
  const big = JSON.stringify({ to: '79161234567', text: 'x'.repeat(1024 * 1024 + 10) });
  let r;
  try {
    r = await post(big);
  } catch (e) {
    assert.fail(`a too large body must get an HTTP answer (413), got a transport error: ${e.cause?.code ?? e.message}`);
  }
  await expectError(k, r, 413);

  // Unknown fields are ignored.
  const ok = await k.request('POST', '/v1/messages', {
    key, body: { to: '79161234567', text: 'hi', sender: 'KASKAD', frobnicate: { a: [1, 2] }, zzz: null },
  });
  assert.equal(ok.status, 202, ok.text);
  assert.match(ok.json.id, /^msg_/);
  assert.ok(await k.healthy());

  // None of the refused requests reached the SMSC.
  await smsc.waitFor(() => smsc.submits.length >= 1, 'the one valid message');
  assert.equal(smsc.submits.length, 1, 'only the valid message was submitted');
  await finish();
});

test('authentication and authorisation', async (t) => {
  const { k, key, acct, finish } = await setup(t, { waitBound: false });
  const msg = { to: '79161234567', text: 'hi' };

  await expectError(k, await k.request('POST', '/v1/messages', { key: null, body: msg }), 401);
  await expectError(k, await k.request('POST', '/v1/messages', { key: 'kk_wrong_key_123', body: msg }), 401);
  await expectError(k, await k.request('GET', '/v1/account', { key: null }), 401);
  await expectError(k, await k.request('GET', '/v1/messages', { key: `${key}x` }), 401);
  const raw = await fetch(`${k.url}/v1/account`, { headers: { authorization: `Basic ${key}` } });
  assert.equal(raw.status, 401, 'a non-Bearer scheme is refused');
  await raw.text();

  // An account key cannot act as the operator.
  await expectError(k, await k.request('POST', '/v1/accounts', { key, body: { name: 'x' } }), 403);
  await expectError(k, await k.request('POST', `/v1/accounts/${acct.id}/keys`, { key, body: {} }), 403);
  await expectError(k, await k.request('PUT', '/v1/routes/evil', { key, body: { host: '127.0.0.1', port: 1 } }), 403);
  await expectError(k, await k.request('GET', '/v1/routes', { key }), 403);
  // The operator key is not an account.
  await expectError(k, await k.request('POST', '/v1/messages', { body: msg }), 403);

  // The right key works.
  const me = await k.call('GET', '/v1/account', { key }, 200);
  assert.equal(me.id, acct.id);
  await finish();
});

test('accounts cannot see each other\'s messages', async (t) => {
  const { k, smsc, key: keyA, finish } = await setup(t);
  const b = await k.createAccount('other');
  const a1 = await k.send(keyA, { to: '79161230201', text: 'for A only' });
  const b1 = await k.send(b.key, { to: '79161230202', text: 'for B only' });

  await expectError(k, await k.request('GET', `/v1/messages/${a1.id}`, { key: b.key }), 404);
  await expectError(k, await k.request('GET', `/v1/messages/${b1.id}`, { key: keyA }), 404);
  await expectError(k, await k.request('GET', '/v1/messages/msg_doesnotexist', { key: keyA }), 404);
  // a path longer than any endpoint's is no endpoint, not the shorter one
  await expectError(k, await k.request('GET', `/v1/messages/${a1.id}/x/y`, { key: keyA }), 404);
  await expectError(k, await k.request('GET', '/v1/campaigns/c1/report/extra', { key: keyA }), 404);

  const la = await k.call('GET', '/v1/messages?limit=100', { key: keyA }, 200);
  const lb = await k.call('GET', '/v1/messages?limit=100', { key: b.key }, 200);
  assert.deepEqual(la.messages.map((m) => m.id), [a1.id]);
  assert.deepEqual(lb.messages.map((m) => m.id), [b1.id]);

  // Same idempotency key in two accounts: two different messages.
  const ia = await k.send(keyA, { to: '79161230203', text: 'idem A', idempotency_key: 'shared-key-1' });
  const ib = await k.send(b.key, { to: '79161230203', text: 'idem B', idempotency_key: 'shared-key-1' });
  assert.notEqual(ia.id, ib.id, 'idempotency keys are per account');
  assert.ok(!ib.duplicate, 'B\'s message is not a replay of A\'s');
  await smsc.waitFor(() => smsc.submits.length >= 4, 'four submits');
  await finish();
});

test('idempotency: one message, one submit_sm', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const body = { to: '79161230301', text: 'idempotent n=1', idempotency_key: 'order-42' };
  const r1 = await k.request('POST', '/v1/messages', { key, body });
  assert.equal(r1.status, 202, r1.text);
  assert.ok(!r1.json.duplicate);
  const r2 = await k.request('POST', '/v1/messages', { key, body });
  assert.equal(r2.status, 202, r2.text);
  assert.equal(r2.json.id, r1.json.id, 'same id');
  assert.equal(r2.json.duplicate, true);
  assert.equal(r2.headers.get('idempotent-replayed'), 'true');
  // Concurrent repeats race through the same key.
  const many = await Promise.all(Array.from({ length: 8 }, () => k.request('POST', '/v1/messages', { key, body })));
  for (const r of many) {
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.id, r1.json.id);
  }
  // Another key is another message; the barrier tells us the first has been dispatched.
  const other = await k.send(key, { to: '79161230302', text: 'idempotent barrier', idempotency_key: 'order-43' });
  assert.notEqual(other.id, r1.json.id);
  await smsc.waitFor(() => smsc.submits.find((s) => s.text === 'idempotent barrier'), 'the barrier message');
  await k.waitStatus(key, r1.json.id, 'sent');
  assert.equal(smsc.submits.filter((s) => s.text === 'idempotent n=1').length, 1, 'exactly one submit_sm');
  await finish();
});

test('batch with one bad item', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const r = await k.request('POST', '/v1/messages/batch', {
    key,
    body: {
      messages: [
        { to: '79161230401', text: 'batch n=0' },
        { to: 'garbage', text: 'batch n=1' },
        { to: '89161230403', text: 'batch n=2', sender: 'KASKAD' },
      ],
    },
  });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.accepted, 2);
  assert.equal(r.json.rejected, 1);
  const res = r.json.results;
  assert.equal(res.length, 3);
  assert.deepEqual(res.map((x) => x.index), [0, 1, 2]);
  assert.match(res[0].id, /^msg_/);
  assert.ok(!res[1].id, 'the bad item has no id');
  assert.equal(res[1].error?.code, 'invalid_phone');
  assert.match(res[2].id, /^msg_/);
  const m0 = await k.message(key, res[0].id);
  const m2 = await k.message(key, res[2].id);
  assert.equal(m0.to, '79161230401');
  assert.equal(m2.to, '79161230403');
  await smsc.waitFor(() => smsc.submits.length >= 2, 'both good items submitted');
  assert.deepEqual(smsc.submits.map((s) => s.text).sort(), ['batch n=0', 'batch n=2']);

  // Batch limits and shape.
  const tooMany = Array.from({ length: 1001 }, (_, i) => ({ to: '79161230401', text: `x${i}` }));
  const r2 = await k.request('POST', '/v1/messages/batch', { key, body: { messages: tooMany } });
  assert.ok(r2.status === 413 || r2.status === 422, `1001 items refused (got ${r2.status})`);
  const r3 = await k.request('POST', '/v1/messages/batch', { key, body: { messages: 'nope' } });
  assert.ok(r3.status === 400 || r3.status === 422, `messages must be an array (got ${r3.status})`);
  assert.ok(await k.healthy());
  await finish();
});

test('listing: status filter and paging', async (t) => {
  const { k, smsc, key, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  smsc.handler = (s) => (s.destination_addr.endsWith('99') ? { status: STATUS.ESME_RINVDSTADR } : undefined);
  const delivered = [];
  const failed = [];
  for (let i = 0; i < 5; i++) delivered.push((await k.send(key, { to: `7916123050${i}`, text: `list n=${i}` })).id);
  for (const [i, to] of ['79161230599', '79161230699'].entries()) failed.push((await k.send(key, { to, text: `list f=${i}` })).id);
  for (const id of delivered) await k.waitStatus(key, id, 'delivered');
  for (const id of failed) await k.waitStatus(key, id, 'failed');

  const seen = [];
  let cursor = null;
  for (let page = 0; page < 10; page++) {
    const q = `/v1/messages?status=delivered&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await k.call('GET', q, { key }, 200);
    assert.ok(r.messages.length <= 2, 'limit respected');
    for (const m of r.messages) assert.equal(m.status, 'delivered');
    seen.push(...r.messages.map((m) => m.id));
    cursor = r.next_cursor;
    if (!cursor) break;
  }
  assert.equal(cursor ?? null, null, 'paging ends');
  assert.equal(new Set(seen).size, seen.length, 'no message twice across pages');
  assert.deepEqual([...seen].sort(), [...delivered].sort(), 'every delivered message, only those');

  const f = await k.call('GET', '/v1/messages?status=failed&limit=10', { key }, 200);
  assert.deepEqual(f.messages.map((m) => m.id).sort(), [...failed].sort());
  const all = await k.call('GET', '/v1/messages?limit=100', { key }, 200);
  assert.equal(all.messages.length, 7);
  // Time window on created_at.
  const later = new Date(Date.now() + 3600_000).toISOString();
  const earlier = new Date(Date.now() - 3600_000).toISOString();
  const none = await k.call('GET', `/v1/messages?from=${encodeURIComponent(later)}`, { key }, 200);
  assert.equal(none.messages.length, 0, 'nothing created after an hour from now');
  const win = await k.call('GET', `/v1/messages?from=${encodeURIComponent(earlier)}&to=${encodeURIComponent(later)}&limit=100`,
    { key }, 200);
  assert.equal(win.messages.length, 7, 'everything inside the window');
  const badTime = await k.request('GET', '/v1/messages?from=yesterday', { key });
  assert.equal(badTime.status, 422, badTime.text);
  const badCursor = await k.request('GET', '/v1/messages?cursor=%00garbage', { key });
  assert.ok([400, 422].includes(badCursor.status), `garbage cursor refused (got ${badCursor.status})`);
  const bad = await k.request('GET', '/v1/messages?limit=abc', { key });
  assert.ok(bad.status === 400 || bad.status === 422, `bad limit refused (got ${bad.status})`);
  await finish();
});
