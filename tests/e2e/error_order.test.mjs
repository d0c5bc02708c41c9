// Which error wins when a send has several faults at once. POST /v1/messages
// and /v1/messages/batch report the first problem in a fixed order: the
// key, a suspended account and the rate limit before the body is read, then
// an unreadable body, the batch's shape and the Idempotency-Key header, then
// each message's fields in order (addresses, unsupported fields, text,
// class, sender, callback_url, idempotency_key, ttl, campaign), then what
// the account decides (a saved cascade, a cascade that outlasts the ttl,
// senders, countries), then idempotency against stored messages.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';

const TO = '79161234567';      // RU
const TO_KZ = '77011234567';   // KZ

/** Asserts the error that won; field is checked when given (null: none). */
function expectError(r, status, code, field, what) {
  const where = `${what}: ${r.status} ${r.text.slice(0, 300)}`;
  assert.equal(r.status, status, where);
  assert.equal(r.json?.error?.code, code, where);
  if (field !== undefined) assert.equal(r.json.error.field ?? null, field, where);
}

// [what, message, status, code, field]: each message has two or more faults.
const MESSAGE_CASES = [
  ['a channel id before the phone', { email: 'nope', to: 'abc', text: '' }, 422, 'invalid_email', 'email'],
  ['a phone that is not a string before the text', { to: 123, text: '' }, 422, 'invalid_phone', 'to'],
  ['a bad phone before an unsupported field', { to: 'abc', send_at: 'x', text: '' }, 422, 'invalid_phone', 'to'],
  ['a bad phone before a bad cascade', { to: 'abc', cascade: [{ channel: 'bogus' }], text: 'hi' }, 422, 'invalid_phone', 'to'],
  ['a bad phone before the class', { to: '+7916', text: 'hi', class: 'spam' }, 422, 'invalid_phone', 'to'],
  ['no phone before the text', { text: '', class: 'spam' }, 422, 'invalid_phone', 'to'],
  ['a cascade name too long before a bad send_at', { to: TO, cascade: 'x'.repeat(80), send_at: 'x' }, 422, 'unknown_cascade', 'cascade'],
  ['a bad cascade before the text', { to: TO, cascade: [{ channel: 'bogus' }], text: '' }, 422, 'unknown_channel', undefined],
  ['SMS needs a phone before a bad send_at', { vk_id: '123', send_at: 'x', text: 'hi' }, 422, 'invalid_phone', 'to'],
  ['a bad send_at before the text', { to: TO, send_at: 'x', text: 5 }, 422, 'invalid_send_at', 'send_at'],
  ['send_at before template', { to: TO, template: 'x', send_at: 'x', text: 'hi' }, 422, 'invalid_send_at', 'send_at'],
  ['an empty text before the class', { to: TO, text: '', class: 'spam' }, 422, 'invalid_text', 'text'],
  ['a text over 4096 bytes before the sender', { to: TO, text: 'a'.repeat(5000), sender: '!!! bad sender !!!' }, 422, 'text_too_long', 'text'],
  ['a text over 20 segments before the class', { to: TO, text: 'a'.repeat(153 * 20), class: 'spam' }, 422, 'text_too_long', 'text'],
  ['the class before the sender', { to: TO, text: 'hi', class: 'spam', sender: '!!! bad sender !!!' }, 422, 'invalid_class', 'class'],
  ['the sender before the callback URL', { to: TO, text: 'hi', sender: '!!! bad sender !!!', callback_url: 'ftp://x' }, 422, 'invalid_sender', 'sender'],
  ['the callback URL before the key', { to: TO, text: 'hi', callback_url: 'ftp://x', idempotency_key: '' }, 422, 'invalid_callback_url', 'callback_url'],
  ['the key before the ttl', { to: TO, text: 'hi', idempotency_key: '', ttl: 'forever' }, 422, 'invalid_idempotency_key', 'idempotency_key'],
  ['the ttl before the campaign', { to: TO, text: 'hi', ttl: 'forever', campaign: 'bad name!' }, 422, 'invalid_ttl', 'ttl'],
  ['the campaign before a saved cascade', { to: TO, text: 'hi', campaign: 'bad name!', cascade: 'nosuch' }, 422, 'invalid_campaign', 'campaign'],
  ['a missing saved cascade before the sender', { to: TO, text: 'hi', cascade: 'nosuch', sender: 'NOTREG' }, 422, 'unknown_cascade', 'cascade'],
  ['a cascade outlasting the ttl before the sender', {
    to: TO, text: 'hi', ttl: 60, sender: 'NOTREG',
    cascade: [{ channel: 'vk', wait: 'sent', timeout: '2m' }, { channel: 'sms', wait: 'delivered' }],
    vk_id: '123',
  }, 422, 'timeout_exceeds_ttl', 'cascade'],
  ['the sender before the country', { to: TO_KZ, text: 'hi', sender: 'NOTREG' }, 422, 'sender_not_allowed', 'sender'],
  ['the country alone', { to: TO_KZ, text: 'hi' }, 422, 'country_not_allowed', 'to'],
];

test('the first problem of a message wins, in the order of its fields', async (t) => {
  const env = await setup(t, { args: ['--rate_key', '0', '--rate_account', '0'], waitBound: false });
  const { k } = env;
  const acct = await k.createAccount('ordered', { countries: ['RU'] });
  const post = (body, opts = {}) => k.request('POST', '/v1/messages', { key: acct.key, body, ...opts });

  for (const [what, msg, status, code, field] of MESSAGE_CASES) {
    expectError(await post(msg), status, code, field, what);
  }

  // The same messages in one batch: each item answers its own first problem.
  const r = await k.request('POST', '/v1/messages/batch', {
    key: acct.key, body: { messages: MESSAGE_CASES.map((c) => c[1]) },
  });
  assert.equal(r.status, 422, r.text.slice(0, 300));
  assert.equal(r.json.rejected, MESSAGE_CASES.length);
  MESSAGE_CASES.forEach(([what, , , code, field], i) => {
    const it = r.json.results[i];
    assert.equal(it.index, i, what);
    assert.equal(it.error?.code, code, `batch item ${i}, ${what}: ${JSON.stringify(it)}`);
    if (field !== undefined) assert.equal(it.error.field ?? null, field, `batch item ${i}, ${what}`);
  });

  // Request-wide problems come before the messages' own.
  expectError(await post('{"to": '), 400, 'invalid_json', null, 'an unreadable body');
  expectError(await post('[1, 2]'), 400, 'invalid_json', null, 'a body that is not an object');
  expectError(await post('{"to": ', { headers: { 'idempotency-key': '' } }), 400, 'invalid_json', null,
    'an unreadable body before the Idempotency-Key header');
  expectError(await post({ to: 'abc', text: '' }, { headers: { 'idempotency-key': 'x'.repeat(200) } }), 422,
    'invalid_idempotency_key', 'Idempotency-Key', 'the Idempotency-Key header before the fields');
  expectError(await post('{"to": ', { headers: { 'idempotency-key': 'é' } }), 400, 'invalid_encoding', null,
    'a header that is not UTF-8 before everything');
  const batch = (body) => k.request('POST', '/v1/messages/batch', { key: acct.key, body });
  expectError(await batch('{"messages": '), 400, 'invalid_json', null, 'an unreadable batch');
  expectError(await batch({ messages: [] }), 422, 'invalid_batch', 'messages', 'an empty batch');
  expectError(await batch({ messages: 'x', to: 'abc' }), 422, 'invalid_batch', 'messages', 'a batch that is not a list');
  expectError(await batch({ messages: Array.from({ length: 1001 }, () => ({ to: 'abc' })) }), 422,
    'batch_too_large', 'messages', 'a batch over 1000 of bad messages');

  // Idempotency is decided after every other check.
  const first = await post({ to: TO, text: 'first', sender: 'KASKAD', idempotency_key: 'order-1' });
  assert.equal(first.status, 202, first.text);
  expectError(await post({ to: TO, text: 'other', sender: 'NOTREG', idempotency_key: 'order-1' }), 422,
    'sender_not_allowed', 'sender', 'the sender before a reused key');
  expectError(await post({ to: TO_KZ, text: 'first', sender: 'KASKAD', idempotency_key: 'order-1' }), 422,
    'country_not_allowed', 'to', 'the country before a reused key');
  expectError(await post({ to: TO, text: 'first', sender: 'KASKAD', idempotency_key: 'order-1', send_at: 'x' }),
    422, 'invalid_send_at', 'send_at', 'a bad send_at before a repeat');
  expectError(await post({ to: TO, text: 'other', sender: 'KASKAD', idempotency_key: 'order-1' }), 422,
    'idempotency_mismatch', 'idempotency_key', 'a reused key alone');
  await env.finish();
});

test('the key, a suspension and the rate limit come before the body', async (t) => {
  const env = await setup(t, { args: ['--rate_key', '2/s:2', '--rate_account', '0'], waitBound: false });
  const { k } = env;
  const bad = '{"to": ';
  const post = (key, body = bad, headers = {}) => k.request('POST', '/v1/messages', { key, body, headers });
  expectError(await post(null, bad, { 'x-note': 'é' }), 400, 'invalid_encoding', null,
    'bytes that are not UTF-8 before the key');
  expectError(await post(null), 401, 'unauthorized', null, 'no key before an unreadable body');
  expectError(await post('kk_wrong_key_1234'), 401, 'unauthorized', null, 'a wrong key before an unreadable body');
  expectError(await post(null, { to: 'abc' }, { 'idempotency-key': '' }), 401, 'unauthorized', null,
    'no key before the header and fields');
  const batch = await k.request('POST', '/v1/messages/batch', { key: null, body: { messages: [] } });
  expectError(batch, 401, 'unauthorized', null, 'no key before an empty batch');

  // Rate: two requests pass the limit, the third is refused before its body.
  const acct = await k.createAccount('limited');
  expectError(await post(acct.key), 400, 'invalid_json', null, 'within the rate');
  expectError(await post(acct.key), 400, 'invalid_json', null, 'within the rate');
  expectError(await post(acct.key), 429, 'rate_limited', null, 'the rate before an unreadable body');

  // Suspended: 403 before the body, the header and the rate.
  const held = await k.createAccount('held');
  await k.call('PATCH', `/v1/accounts/${held.id}`, { body: { suspended: true } }, 200);
  for (let i = 0; i < 3; i++) {
    expectError(await post(held.key, bad, { 'idempotency-key': '' }), 403, 'account_suspended', null,
      'a suspension before the body and the rate');
  }
  // The operator key is no account's: 403 before the body.
  expectError(await post(undefined), 403, 'forbidden', null, 'the operator key before an unreadable body');
  await env.finish();
});
