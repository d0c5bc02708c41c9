// Outbound requests go only where they may: tenant-set URLs that lead to
// loopback, private, link-local or metadata addresses are refused at the API
// and, for what gets past it (a host name, a range no longer allowed), when
// kaskad connects; provider tokens and ids are checked before they reach a
// URL; provider answers are not echoed; SMTP requires TLS unless told.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Kaskad, setup, waitUntil, metricSum } from './lib/harness.mjs';
import { Sim } from './lib/sim.mjs';

const PHONE = '79161234567';

/* A local listener standing in for a provider (or a customer's callback
   endpoint): records every request, answers with reply(req, body). */
async function listener(reply = () => [200, '{}']) {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      got.push({ method: req.method, url: req.url, body });
      const [status, text] = reply(req, body);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return { got, port, url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

/* A Telegram Bot API stand-in: sendMessage succeeds, setWebhook answers
   what `webhook` says. */
function telegramReply(webhook = [200, '{"ok":true,"result":true}']) {
  return (req) => (req.url.endsWith('/setWebhook') ? webhook : [200, '{"ok":true,"result":{"message_id":7}}']);
}

async function expect422(k, method, path, opts, code, field) {
  const r = await k.request(method, path, opts);
  assert.equal(r.status, 422, `${method} ${path} ${JSON.stringify(opts.body)} -> ${r.status} ${r.text}`);
  assert.equal(r.json.error.code, code, r.text);
  if (field) assert.equal(r.json.error.field, field, r.text);
  return r.json.error;
}

test('without outbound_allow the API refuses URLs that lead inside', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t, { outboundAllow: null });
  const rx = await listener(telegramReply());
  t.after(() => rx.close());
  const tg = (base_url) => ({ key, body: { base_url, token: '123:abc' } });
  for (const url of [rx.url, `http://localhost:${rx.port}`, `http://[::1]:${rx.port}`,
    `http://[::ffff:127.0.0.1]:${rx.port}`, `http://2130706433:${rx.port}`, 'http://10.0.0.7',
    'http://192.168.1.1', 'http://169.254.169.254', 'http://[fd00:ec2::254]', 'http://0.0.0.0:80',
    'http://user:pw@api.telegram.org']) {
    const e = await expect422(k, 'PUT', '/v1/channels/telegram', tg(url), 'url_not_allowed', 'base_url');
    assert.ok(!/pw/.test(e.message), 'the password is not echoed');
  }
  await expect422(k, 'PUT', '/v1/channels/email',
    { key, body: { smtp_url: `smtp://127.0.0.1:${rx.port}/?tls=off`, from: 'a@b.test' } }, 'url_not_allowed', 'smtp_url');
  await expect422(k, 'PUT', '/v1/channels/email',
    { key, body: { smtp_url: 'smtps://mail.example.com:465/?tls=off', from: 'a@b.test' } }, 'invalid_settings', 'smtp_url');
  await expect422(k, 'PUT', '/v1/channels/email',
    { key, body: { smtp_url: 'smtp://mail.example.com:25/?x=1', from: 'a@b.test' } }, 'invalid_settings', 'smtp_url');
  for (const url of [`${rx.url}/cb`, `http://localhost:${rx.port}/cb`, 'http://169.254.169.254/latest/meta-data/']) {
    await expect422(k, 'POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', callback_url: url } },
      'url_not_allowed', 'callback_url');
  }
  await expect422(k, 'POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', callback_url: 'ftp://example.com/' } },
    'invalid_callback_url', 'callback_url');
  // A public host name is fine (only stored here; nothing is sent).
  await k.call('PUT', '/v1/channels/telegram', tg('https://api.telegram.org'), 200);
  assert.equal(rx.got.length, 0, 'nothing reached the listener');
  await finish();
});

test('the metadata address stays refused when 127.0.0.1 is allowed', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  for (const url of ['http://169.254.169.254', 'http://[::ffff:169.254.169.254]', 'http://127.0.0.2:80']) {
    await expect422(k, 'PUT', '/v1/channels/vk', { key, body: { base_url: url, token: 'vk-tok' } },
      'url_not_allowed', 'base_url');
  }
  await finish();
});

test('a provider URL that leads to loopback gets no connection: address_not_allowed', { timeout: 90000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  const rx = await listener(telegramReply());
  t.after(() => rx.close());
  // Stored while 127.0.0.1 was allowed (the operator narrows the list
  // later): one account by address, one by the name localhost, which is
  // resolved when kaskad connects.
  await k.call('PUT', '/v1/channels/telegram', { key, body: { base_url: rx.url, token: '123:abc' } }, 200);
  const other = await k.createAccount();
  await k.call('PUT', '/v1/channels/telegram',
    { key: other.key, body: { base_url: `http://localhost:${rx.port}`, token: '123:abc' } }, 200);
  await k.stopClean();
  k.outboundAllow = null;
  await k.restart();
  const msg = { to: PHONE, text: 'hello', telegram_chat_id: '42', cascade: [{ channel: 'telegram' }] };
  const a = await k.send(key, msg);
  const done = await k.waitStatus(key, a.id, 'failed');
  assert.match(done.attempts[0].error, /^address_not_allowed: 127\.0\.0\.1 is a loopback address/);
  const byName = await k.send(other.key, msg);
  const doneByName = await k.waitStatus(other.key, byName.id, 'failed');
  assert.match(doneByName.attempts[0].error, /^address_not_allowed: .* loopback address/);
  assert.equal(rx.got.length, 0, 'the listener got no request');
  // Allowed again: the same settings work.
  await k.stopClean();
  k.outboundAllow = '127.0.0.1/32';
  await k.restart();
  const b = await k.send(other.key, msg);
  const ok = await k.waitStatus(other.key, b.id, 'sent');
  assert.equal(ok.attempts[0].provider_id, '7');
  assert.equal(rx.got.length, 1);
  assert.match(rx.got[0].url, /^\/bot123:abc\/sendMessage$/);
  await finish();
});

test('a customer callback to loopback is refused at connect and counted as a failed try', { timeout: 90000 }, async (t) => {
  const { k, key, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const rx = await listener(() => [500, '']);
  t.after(() => rx.close());
  const m = await k.send(key, { to: PHONE, text: 'cb', callback_url: `${rx.url}/hook` });
  await k.waitStatus(key, m.id, 'delivered');
  await waitUntil(() => rx.got.length >= 2, 'both callbacks tried once', 20000);
  await k.stopClean();
  const before = rx.got.length;
  k.outboundAllow = null;
  await k.restart();
  // The rows are due again 5 s after their failed try.
  await waitUntil(async () => metricSum(await k.metrics(), 'kaskad_callback_failed_tries_total') >= 2,
    'the retries to fail', 30000, 200);
  assert.equal(rx.got.length, before, 'no callback reached the listener');
  assert.match(k.stderr, /connection to 127\.0\.0\.1 refused: a loopback address/);
  await finish();
});

test('tokens and ids that go into URLs are checked against the provider\'s characters', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  const bad = [
    ['telegram', { token: '123:abc/../../admin' }, 'invalid_token', 'token'],
    ['telegram', { token: '../123:abc' }, 'invalid_token', 'token'],
    ['telegram', { token: 'abc' }, 'invalid_token', 'token'],
    ['whatsapp', { token: 'wa', phone_number_id: '10/../../me' }, 'invalid_phone_number_id', 'phone_number_id'],
    ['whatsapp', { token: 'wa', phone_number_id: '10', api_version: 'v1/../x' }, 'invalid_api_version', 'api_version'],
    ['whatsapp', { token: 'wa tok', phone_number_id: '10' }, 'invalid_token', 'token'],
    ['viber', { token: 'tok?x=1' }, 'invalid_token', 'token'],
    ['vk', { token: 'tok&v=1' }, 'invalid_token', 'token'],
    ['telegram_gateway', { token: 'a b' }, 'invalid_token', 'token'],
  ];
  for (const [ch, body, code, field] of bad) {
    await expect422(k, 'PUT', `/v1/channels/${ch}`, { key, body }, code, field);
  }
  await k.call('PUT', '/v1/channels/telegram', { key, body: { token: '123456:ABC-def_GHI' } }, 200);
  await k.call('PUT', '/v1/channels/whatsapp', { key, body: { token: 'EAAG.x', phone_number_id: '1055', api_version: 'v21.0' } }, 200);
  await finish();
});

test('the webhook registration does not echo the provider\'s answer', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  let webhook = [200, '{"ok":false,"error_code":400,"description":"INTERNAL-SECRET-1"}'];
  const rx = await listener((req) => telegramReply(webhook)(req));
  t.after(() => rx.close());
  const put = () => k.call('PUT', '/v1/channels/telegram',
    { key, body: { base_url: rx.url, token: '123:abc', secret: 'tg_secret' } }, 200);
  let r = await put();
  assert.equal(r.webhook_registration.registered, false);
  assert.match(r.webhook_registration.error, /HTTP 200, code 400/);
  assert.ok(!JSON.stringify(r).includes('INTERNAL-SECRET'), JSON.stringify(r));
  webhook = [200, 'root:x:0:0:root:/root:/bin/bash'];
  r = await put();
  assert.equal(r.webhook_registration.registered, true, 'no verdict in the body: as before');
  webhook = [403, 'root:x:0:0:root:/root:/bin/bash'];
  r = await put();
  assert.equal(r.webhook_registration.registered, false);
  assert.match(r.webhook_registration.error, /HTTP 403/);
  assert.ok(!JSON.stringify(r).includes('root:'), JSON.stringify(r));
  await finish();
});

test('an attempt\'s error carries the status and the provider\'s code, not its text', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  const rx = await listener(() => [400, '{"ok":false,"error_code":400,"description":"INTERNAL-SECRET-2"}']);
  t.after(() => rx.close());
  await k.call('PUT', '/v1/channels/telegram', { key, body: { base_url: rx.url, token: '123:abc' } }, 200);
  const m = await k.send(key, { to: PHONE, text: 'x', telegram_chat_id: '42', cascade: [{ channel: 'telegram' }] });
  const done = await k.waitStatus(key, m.id, 'failed');
  assert.equal(done.attempts[0].error, '400 the provider refused the message (HTTP 400)');
  assert.ok(!JSON.stringify(done).includes('INTERNAL-SECRET'));
  await finish();
});

test('smtp:// requires STARTTLS unless the URL ends in ?tls=off', { timeout: 90000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  const mail = { to: PHONE, text: 'hello by mail', email: 'anna@example.com', cascade: [{ channel: 'email', wait: 'sent' }] };
  await k.call('PUT', '/v1/channels/email',
    { key, body: { smtp_url: `smtp://127.0.0.1:${sim.smtpPort}`, from: 'noreply@kaskad.test' } }, 200);
  const a = await k.send(key, mail);
  const failed = await k.waitStatus(key, a.id, 'failed');
  assert.match(failed.attempts[0].error, /^tls_required: /);
  assert.equal((await sim.requests('email')).length, 0, 'nothing was sent in the clear');
  await k.call('PUT', '/v1/channels/email',
    { key, body: { smtp_url: `smtp://127.0.0.1:${sim.smtpPort}/?tls=off`, from: 'noreply@kaskad.test' } }, 200);
  const b = await k.send(key, mail);
  await k.waitStatus(key, b.id, 'sent');
  assert.equal((await sim.requests('email')).length, 1);
  await finish();
});

test('a malformed outbound_allow stops kaskad at start', { timeout: 30000 }, async (t) => {
  const k = new Kaskad({ outboundAllow: '127.0.0.1/32,10.0.0.1/8' });
  t.after(() => k.cleanup());
  await assert.rejects(k.start(10000));
  await k.exited;
  assert.equal(k.exit.code, 2);
  assert.match(k.stderr, /outbound_allow: "10\.0\.0\.1\/8" is not an address range/);
});
