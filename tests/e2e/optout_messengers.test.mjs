// Opt-out by a messenger reply: the simulator's Viber posts a person's
// signed "message" event to kaskad's webhook as Viber does, its VK a
// message_new event of the Callback API (with the community's secret). A STOP lists the
// phone (found through the message kaskad sent that Viber user) on the one
// stop-list for every channel, withdraws the consent, is confirmed on
// Viber, and the next advertising send, by SMS too, is refused
// stop_listed; START removes it. Replies show the messenger id and the rule
// that attributed them; a user kaskad never wrote to is kept without a
// phone and acts on nothing.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { setup, waitUntil } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim, APPS } from './lib/sim.mjs';

/** The account's replies_webhook: records each POST. */
async function receiver() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${server.address().port}/replies`, close: () => new Promise((r) => server.close(r)) };
}

function verify(secret, headers, body) {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(headers['x-kaskad-signature'] ?? '');
  assert.ok(m, `signature header: ${headers['x-kaskad-signature']}`);
  assert.equal(m[2], createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex'));
}

async function world(t) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 } });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ viber: { reach: 1, read: 0, fail: 0, deliver_ms: [20, 20] },
    vk: { reach: 1, read: 0, fail: 0, deliver_ms: [20, 20] } });
  await pointChannelsAtSim(env.k, sim);
  // advertising goes at once whatever the hour of the run
  await env.k.call('PUT', '/v1/policy', { key: env.key, body: { quiet_hours: null } }, 200);
  env.sim = sim;
  return env;
}

/** The person writes to the Viber bot; the simulator signs and posts it. */
async function viberWrites(sim, user, text) {
  const r = await sim.call('POST', '/viber/inbound', { token: APPS.viber.token, user_id: user, text });
  assert.equal(r.status, 200, `kaskad stored the message before it answered: ${JSON.stringify(r)}`);
}

/** What kaskad sent to a Viber user, oldest first. */
async function viberTo(sim, user) {
  return (await sim.requests('viber')).map((r) => JSON.parse(r.body)).filter((b) => b.receiver === user);
}

test('a Viber STOP lists the phone for every channel, is confirmed on Viber; START removes it', { timeout: 90000 }, async (t) => {
  const { k, key, sim, finish } = await world(t);
  const req = (m, p, body) => k.request(m, p, { key, body });
  const P = '79161237701';
  const U = 'vb-optout-1';
  const ad = { to: P, text: 'Скидка 20%', sender: 'KASKAD', class: 'advertising' };
  const rx = await receiver();
  t.after(() => rx.close());
  // A replies_webhook that leads inside is refused like a callback_url.
  let r = await req('PUT', '/v1/policy', { quiet_hours: null, replies_webhook: 'http://169.254.169.254/latest' });
  assert.equal(r.status, 422, r.text);
  assert.deepEqual([r.json.error.code, r.json.error.field], ['url_not_allowed', 'replies_webhook']);
  r = await req('PUT', '/v1/policy', { quiet_hours: null, replies_webhook: 'ftp://example.com/' });
  assert.deepEqual([r.json.error.code, r.json.error.field], ['invalid_policy', 'replies_webhook']);
  r = await req('PUT', '/v1/policy', { quiet_hours: null, replies_webhook: rx.url });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.replies_webhook, rx.url);
  await k.call('PUT', `/v1/consents/${P}`, { key, body: { source: 'shop' } }, 201);
  const first = await k.send(key, { ...ad, viber_id: U, cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }] });
  await k.waitStatus(key, first.id, 'delivered');

  await viberWrites(sim, U, 'Stop.');
  const entry = await waitUntil(async () => {
    const r = await req('GET', `/v1/stoplist/${P}`);
    return r.status === 200 ? r.json : null;
  }, 'the stop-list entry');
  assert.equal(entry.reason, 'reply');
  assert.equal(entry.channel, 'viber');
  await waitUntil(async () => (await viberTo(sim, U)).some((b) => b.text?.startsWith('Вы отписаны')), 'the confirmation on Viber');

  // The reply reached the account's webhook, signed with its secret.
  const acct = await k.call('GET', '/v1/account', { key });
  await waitUntil(() => rx.got.length >= 1, 'the replies webhook');
  verify(acct.callback_secret, rx.got[0].headers, rx.got[0].body);
  const hook = JSON.parse(rx.got[0].body);
  assert.equal(hook.channel, 'viber');
  assert.equal(hook.from, P);
  assert.equal(hook.text, 'Stop.');
  assert.equal(hook.message, first.id);
  assert.equal(hook.user_id, U);
  assert.ok(Math.abs(Date.parse(hook.at) - Date.now()) < 60000, hook.at);

  // One stop-list: the SMS is refused too, and the consent is withdrawn.
  r = await req('POST', '/v1/messages', ad);
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'stop_listed');
  r = await req('GET', `/v1/consents/${P}`);
  assert.equal(r.json.current, false);
  assert.equal(r.json.consents[0].withdrawn_by, 'reply');

  r = await req('GET', '/v1/replies?channel=viber');
  assert.equal(r.status, 200, r.text);
  const reply = r.json.replies[0];
  assert.equal(reply.channel, 'viber');
  assert.equal(reply.from, P);
  assert.equal(reply.phone, P);
  assert.equal(reply.user_id, U);
  assert.equal(reply.text, 'Stop.');
  assert.equal(reply.attributed_by, 'last_message');
  assert.equal(reply.in_reply_to, first.id);
  r = await req('GET', `/v1/replies?from=${P}&channel=viber`);
  assert.equal(r.json.replies.length, 1);

  // START removes the entry and is answered on Viber.
  await viberWrites(sim, U, 'старт');
  await waitUntil(async () => (await req('GET', `/v1/stoplist/${P}`)).status === 404, 'the entry removed');
  await waitUntil(async () => (await viberTo(sim, U)).some((b) => b.text?.startsWith('Вы снова подписаны')), 'the start answer on Viber');
  r = await req('POST', '/v1/messages', { ...ad, class: 'service' });
  assert.equal(r.status, 202, r.text);

  // A Viber user kaskad never wrote to: kept without a phone or account.
  await viberWrites(sim, 'vb-stranger', 'STOP');
  r = await req('GET', '/v1/replies?channel=viber');
  assert.equal(r.json.replies.length, 2, 'the stranger belongs to no account');
  r = await req('GET', '/v1/replies?channel=viber&from=vb-stranger');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.replies.length, 0);
  r = await req('GET', '/v1/replies?from=vb-stranger');
  assert.equal(r.json.error?.code, 'invalid_phone', 'a messenger id needs its channel');
  await finish();
});

test('a Telegram STOP to the operator\'s bot given to the account: the phone from its contact, attributed by bot', { timeout: 90000 }, async (t) => {
  const { k, key, sim, finish } = await world(t);
  const req = (m, p, body) => k.request(m, p, { key, body });
  const Q = '79161237711';
  const acct = await k.call('GET', '/v1/account', { key });
  // A misspelt key would empty the set a PUT replaces: refused.
  let r = await k.request('PUT', `/v1/accounts/${acct.id}/inbound`, { body: { bot: ['telegram'] } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'unknown_field');
  r = await k.request('PUT', `/v1/accounts/${acct.id}/inbound`, { body: { bots: ['telegram'] } });
  assert.equal(r.status, 200, r.text);
  r = await req('PUT', `/v1/contacts/${Q}`, { name: 'Ира', telegram_chat_id: '5551' });
  assert.ok(r.status === 200 || r.status === 201, r.text);

  const up = await sim.call('POST', '/telegram/update', { token: APPS.telegram.token, chat_id: 5551, text: 'СТОП!' });
  assert.equal(up.status, 200, JSON.stringify(up));
  const entry = await waitUntil(async () => {
    const x = await req('GET', `/v1/stoplist/${Q}`);
    return x.status === 200 ? x.json : null;
  }, 'the stop-list entry');
  assert.equal(entry.channel, 'telegram');
  r = await req('GET', '/v1/replies?channel=telegram');
  assert.equal(r.json.replies[0].phone, Q);
  assert.equal(r.json.replies[0].user_id, '5551');
  assert.equal(r.json.replies[0].attributed_by, 'bot');
  await waitUntil(async () => (await sim.requests('telegram')).some((x) => {
    const b = JSON.parse(x.body || '{}');
    return String(b.chat_id) === '5551' && b.text?.startsWith('Вы отписаны');
  }), 'the confirmation in Telegram');
  await finish();
});

/** What kaskad sent to a VK user (messages.send's parameters), oldest first. */
async function vkTo(sim, user) {
  const params = (body) => (body.startsWith('{') ? JSON.parse(body) : Object.fromEntries(new URLSearchParams(body)));
  return (await sim.requests('vk')).map((r) => params(r.body ?? ''))
    .filter((p) => String(p.peer_id ?? p.user_id) === user);
}

test('a VK СТОП lists the phone for every channel and is confirmed in VK', { timeout: 90000 }, async (t) => {
  const { k, key, sim, finish } = await world(t);
  const req = (m, p, body) => k.request(m, p, { key, body });
  const P = '79161237721';
  const U = '700123';
  const ad = { to: P, text: 'Скидка 15% на всё', sender: 'KASKAD', class: 'advertising' };
  await k.call('PUT', `/v1/consents/${P}`, { key, body: { source: 'shop' } }, 201);
  const first = await k.send(key, { ...ad, vk_id: U, cascade: [{ channel: 'vk', wait: 'read', timeout: '30s' }, { channel: 'sms' }] });
  await waitUntil(async () => (await vkTo(sim, U)).length === 1, 'the VK send');

  // A bad request to the simulator is refused before anything is posted.
  await assert.rejects(sim.call('POST', '/vk/inbound', { token: APPS.vk.token, user_id: 'x', text: 'СТОП' }), /400/);
  // The person answers in VK; kaskad answers the Callback API with "ok".
  let r = await sim.call('POST', '/vk/inbound', { token: APPS.vk.token, user_id: Number(U), text: ' СТОП ' });
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.equal(r.body, 'ok');
  const entry = await waitUntil(async () => {
    const x = await req('GET', `/v1/stoplist/${P}`);
    return x.status === 200 ? x.json : null;
  }, 'the stop-list entry');
  assert.equal(entry.reason, 'reply');
  assert.equal(entry.channel, 'vk');
  await waitUntil(async () => (await vkTo(sim, U)).some((p) => p.message?.startsWith('Вы отписаны')), 'the confirmation in VK');

  r = await req('GET', '/v1/replies?channel=vk');
  assert.equal(r.status, 200, r.text);
  const reply = r.json.replies[0];
  assert.deepEqual([reply.channel, reply.phone, reply.user_id, reply.text.trim(), reply.attributed_by, reply.in_reply_to],
    ['vk', P, U, 'СТОП', 'last_message', first.id]);
  // One stop-list: the next advertising SMS is refused, the consent withdrawn.
  r = await req('POST', '/v1/messages', ad);
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'stop_listed');
  r = await req('GET', `/v1/consents/${P}`);
  assert.equal(r.json.current, false);
  await finish();
});
