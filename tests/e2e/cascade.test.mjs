// Cascades end to end: kaskad, the simulator's messenger providers (real
// request and callback formats, signed), and an independent SMSC (npm smpp)
// for the SMS steps.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { setup, sleep, waitUntil, metricSum } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim, APPS } from './lib/sim.mjs';

/** kaskad + SMSC (auto DELIVRD receipts) + simulator with every channel pointed at it. */
async function world(t, { knobs = {}, smsc = {} } = {}) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50, ...smsc } });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({
    vk: { reach: 1, read: 1, deliver_ms: [20, 20], read_ms: [30, 30] },
    viber: { reach: 1, read: 1, deliver_ms: [20, 20], read_ms: [30, 30] },
    telegram_gateway: { reach: 1, read: 1, deliver_ms: [20, 20], read_ms: [30, 30] },
    whatsapp: { reach: 1, read: 1, deliver_ms: [20, 20], read_ms: [30, 30] },
    ...knobs,
  });
  env.channels = await pointChannelsAtSim(env.k, sim);
  env.sim = sim;
  return env;
}

const PHONE = '79161234567';

test('delivered on the first channel: nothing else is sent', { timeout: 60000 }, async (t) => {
  const { k, key, sim, smsc, finish } = await world(t, { knobs: { viber: { reach: 1, read: 0 } } });
  const m = await k.send(key, {
    to: PHONE, text: 'Заказ 1234 доставлен', viber_id: 'vb-user-1',
    cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
  });
  assert.equal(m.channel, 'viber');
  const done = await k.waitStatus(key, m.id, 'delivered');
  assert.equal(done.channel, 'viber');
  assert.equal(done.finished, true);
  assert.equal(done.attempts.length, 1);
  assert.equal(done.attempts[0].status, 'delivered');
  assert.match(done.attempts[0].provider_id, /^\d+$/);
  await k.settled(key, [m.id]);
  await sim.settled();
  assert.equal(smsc.submits.length, 0, 'no SMS was sent');
  assert.equal((await sim.requests('viber')).length, 1);
  await finish();
});

test('fall-through on timeout: VK never read, SMS delivers', { timeout: 60000 }, async (t) => {
  const { k, key, sim, smsc, finish } = await world(t, { knobs: { vk: { reach: 1, read: 0 } } });
  const m = await k.send(key, {
    to: PHONE, text: 'code 4821', vk_id: '1001',
    cascade: [{ channel: 'vk', wait: 'read', timeout: '2s' }, { channel: 'sms', wait: 'delivered' }],
  });
  const done = await k.waitStatus(key, m.id, 'delivered', 20000);
  assert.equal(done.channel, 'sms');
  assert.deepEqual(done.attempts.map((a) => [a.channel, a.status]), [['vk', 'timeout'], ['sms', 'delivered']]);
  assert.ok(done.attempts[0].sent_at, 'the VK message was sent');
  const sentMs = Date.parse(done.attempts[1].created_at) - Date.parse(done.attempts[0].created_at);
  assert.ok(sentMs >= 1900, `SMS started ${sentMs} ms after VK, not before the 2 s timeout`);
  assert.equal(smsc.submits.length, 1);
  assert.equal((await sim.requests('vk')).length, 1);
  await finish();
});

test('fall-through on a hard failure and on a skipped channel', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t, { knobs: { vk: { reach: 0 } } });
  const m = await k.send(key, {
    to: PHONE, text: 'Ваш код 5555', vk_id: '2002',
    cascade: [
      { channel: 'telegram', timeout: '30s' },          // no telegram_chat_id: skipped
      { channel: 'vk', wait: 'read', timeout: '30s' },  // VK error 901: fails at once
      { channel: 'sms' },
    ],
  });
  const done = await k.waitStatus(key, m.id, 'delivered', 15000);
  assert.deepEqual(done.attempts.map((a) => [a.channel, a.status]),
    [['telegram', 'skipped'], ['vk', 'failed'], ['sms', 'delivered']]);
  assert.match(done.attempts[0].error, /telegram_chat_id/);
  assert.match(done.attempts[1].error, /^901 /);
  assert.equal(smsc.submits.length, 1);
  await finish();
});

test('wait: read waits past delivered; wait: delivered does not', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t, { knobs: { viber: { reach: 1, read: 0 } } });
  const a = await k.send(key, {
    to: PHONE, text: 'delivered is enough', viber_id: 'vb-a',
    cascade: [{ channel: 'viber', wait: 'delivered', timeout: '2s' }, { channel: 'sms' }],
  });
  const b = await k.send(key, {
    to: '79161234568', text: 'must be read', viber_id: 'vb-b',
    cascade: [{ channel: 'viber', wait: 'read', timeout: '2s' }, { channel: 'sms' }],
  });
  const da = await k.waitStatus(key, a.id, 'delivered');
  assert.equal(da.channel, 'viber');
  const db = await waitUntil(async () => {
    const x = await k.message(key, b.id);
    return x.attempts.length === 2 && x.attempts[1].status === 'delivered' ? x : null;
  }, 'message b to fall through to SMS', 15000);
  assert.deepEqual(db.attempts.map((x) => [x.channel, x.status]), [['viber', 'timeout'], ['sms', 'delivered']]);
  assert.ok(db.attempts[0].delivered_at, 'viber delivered but was not read');
  assert.equal(db.delivered_twice, 1, 'both channels reached the person');
  assert.equal(smsc.submits.length, 1);
  await finish();
});

test('a status after fall-through is recorded and starts nothing', { timeout: 60000 }, async (t) => {
  const { k, key, smsc, sim, finish } = await world(t, {
    knobs: { vk: { reach: 1, read: 1, deliver_ms: [10, 10], read_ms: [2500, 2500] } },
  });
  const m = await k.send(key, {
    to: PHONE, text: 'late read', vk_id: '3003',
    cascade: [{ channel: 'vk', wait: 'read', timeout: '1s' }, { channel: 'sms' }],
  });
  await k.waitStatus(key, m.id, 'delivered', 15000);
  const late = await waitUntil(async () => {
    const x = await k.message(key, m.id);
    return x.attempts[0].read_at ? x : null;
  }, 'the late VK read', 15000);
  assert.equal(late.attempts[0].status, 'read');
  assert.equal(late.attempts[1].status, 'delivered');
  assert.equal(late.attempts.length, 2, 'no step started again');
  assert.equal(late.delivered_twice, 1);
  assert.equal(late.status, 'read', 'the best outcome any attempt reached');
  await k.settled(key, [m.id]);
  await sim.settled();
  assert.equal(smsc.submits.length, 1);
  assert.equal((await sim.requests('vk')).length, 1);
  const metrics = await k.metrics();
  assert.ok(metricSum(metrics, 'kaskad_cascade_late_statuses_total') >= 1);
  await finish();
});

test('forged and malformed callbacks are refused and change nothing', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await world(t, { knobs: { viber: { reach: 1, read: 0, deliver_ms: [60000, 60000] } } });
  const m = await k.send(key, {
    to: PHONE, text: 'forge me', viber_id: 'vb-f',
    cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
  });
  const sent = await k.waitStatus(key, m.id, 'sent');
  const token = sent.attempts[0].provider_id;
  // The token passes 2^53: written as it came, not through a JS number.
  const body = `{"event":"delivered","timestamp":${Date.now()},"message_token":${token}}`;
  const hook = '/v1/hooks/viber/default';
  const forged = crypto.createHmac('sha256', 'not-the-token').update(body).digest('hex');
  let r = await k.request('POST', hook, { key: null, body, headers: { 'x-viber-content-signature': forged } });
  assert.equal(r.status, 403);
  r = await k.request('POST', hook, { key: null, body });
  assert.equal(r.status, 403, 'unsigned');
  const vkForged = { type: 'message_read', group_id: APPS.vk.group_id, secret: 'wrong', object: { peer_id: 1, read_message_id: 99 } };
  r = await k.request('POST', '/v1/hooks/vk/default', { key: null, body: vkForged });
  assert.equal(r.status, 403);
  const good = crypto.createHmac('sha256', APPS.viber.token).update('{not json').digest('hex');
  r = await k.request('POST', hook, { key: null, body: '{not json', headers: { 'x-viber-content-signature': good } });
  assert.equal(r.status, 400);
  r = await k.request('GET', `/v1/hooks/whatsapp/default?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42`, { key: null });
  assert.equal(r.status, 403);
  const after = await k.message(key, m.id);
  assert.equal(after.status, 'sent');
  assert.equal(after.attempts[0].status, 'sent');
  const metrics = await k.metrics();
  assert.ok(metricSum(metrics, 'kaskad_channel_callbacks_total') >= 4);
  assert.match(metrics.text, /kaskad_channel_callbacks_total\{channel="viber",result="verification_failed"\} 2/);
  assert.match(k.stderr, /viber callback .* refused/);
  // A correctly signed one is applied.
  const sig = crypto.createHmac('sha256', APPS.viber.token).update(body).digest('hex');
  r = await k.request('POST', hook, { key: null, body, headers: { 'x-viber-content-signature': sig } });
  assert.equal(r.status, 200);
  const ok = await k.waitStatus(key, m.id, 'delivered');
  assert.equal(ok.channel, 'viber');
  await finish();
});

test('restart in the middle of a cascade: every step sent exactly once', { timeout: 90000 }, async (t) => {
  const { k, key, smsc, sim, finish } = await world(t, { knobs: { vk: { reach: 1, read: 0 } } });
  const ids = [];
  for (let i = 0; i < 20; i++) {
    const m = await k.send(key, {
      to: `7916100${String(i).padStart(4, '0')}`, text: `restart ${i}`, vk_id: String(5000 + i),
      cascade: [{ channel: 'vk', wait: 'read', timeout: '3s' }, { channel: 'sms' }],
    });
    ids.push(m.id);
  }
  await waitUntil(async () => (await sim.requests('vk')).length === 20, 'every VK send', 15000);
  await k.waitStatus(key, ids[19], 'sent');
  await k.kill9();
  await sleep(500);
  await k.restart();
  // The webhook URL moved with the new port: tell the "provider console".
  const list = (await k.call('GET', '/v1/channels', {}, 200)).channels;
  await sim.addApp({ channel: 'vk', ...APPS.vk, callback_url: list.find((c) => c.channel === 'vk').webhook_url });
  for (const id of ids) await k.waitStatus(key, id, 'delivered', 20000);
  await k.settled(key, ids);
  await sim.settled();
  assert.equal((await sim.requests('vk')).length, 20, 'no VK message sent twice');
  assert.equal(smsc.submits.length, 20, 'one SMS per message');
  const tos = new Set(smsc.submits.map((s) => s.destination_addr));
  assert.equal(tos.size, 20);
  await finish();
});

test('cost and savings are exact', { timeout: 60000 }, async (t) => {
  const { k, key, acct, finish } = await world(t, { knobs: { vk: { reach: 1, read: 0 }, viber: { reach: 1, read: 0 } } });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.35, vk: 0.1, viber: 0.45 } } }, 200);
  await k.call('PUT', '/v1/prices', { body: { account: acct.id, prices: { viber: 0.4 } } }, 200);
  const prices = await k.call('GET', '/v1/prices', { key }, 200);
  assert.deepEqual(prices.prices, { sms: 2.35, vk: 0.1, viber: 0.4 });
  // 71 Cyrillic characters: 2 SMS segments.
  const text = 'Ваш заказ №12345 собран и передан в доставку. Курьер позвонит заранее!!';
  assert.equal([...text].length, 71);
  const m = await k.send(key, {
    to: PHONE, text, vk_id: '7007', viber_id: 'vb-cost',
    cascade: [{ channel: 'vk', wait: 'read', timeout: '1s' }, { channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
  });
  const done = await k.waitStatus(key, m.id, 'delivered', 15000);
  assert.equal(done.channel, 'viber');
  assert.deepEqual(done.attempts.map((a) => a.cost), [0.1, 0.4]);
  assert.equal(done.cost, 0.5);
  assert.equal(done.sms_only_cost, 4.7);
  assert.equal(done.segments, 2);
  await finish();
});

test('named cascades, impossible waits and channel settings', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await world(t);
  let r = await k.request('PUT', '/v1/cascades/cheap', { key, body: { steps: [{ channel: 'vk', wait: 'delivered', timeout: '1m' }, { channel: 'sms' }] } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'wait_unsupported');
  assert.equal(r.json.error.field, 'steps[0].wait');
  r = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', cascade: [{ channel: 'sms', wait: 'read' }] } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'wait_unsupported');
  r = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', cascade: [{ channel: 'telegram', wait: 'delivered', timeout: '1m' }, { channel: 'sms' }] } });
  assert.equal(r.json.error.code, 'wait_unsupported');
  r = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', cascade: [{ channel: 'vk', wait: 'read' }, { channel: 'sms' }] } });
  assert.equal(r.json.error.code, 'timeout_required');
  const saved = await k.call('PUT', '/v1/cascades/cheap', { key, body: { steps: [{ channel: 'viber', wait: 'delivered', timeout: '90s' }, { channel: 'sms' }] } }, 200);
  assert.deepEqual(saved.steps, [{ channel: 'viber', wait: 'delivered', timeout: '90s' }, { channel: 'sms', wait: 'delivered' }]);
  const m = await k.send(key, { to: PHONE, text: 'by name', viber_id: 'vb-n', cascade: 'cheap' });
  assert.equal((await k.waitStatus(key, m.id, ['delivered', 'read'])).channel, 'viber');
  r = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', cascade: 'nope' } });
  assert.equal(r.json.error.code, 'unknown_cascade');
  // Settings: secrets masked, webhook URLs listed, an account's own override.
  const list = (await k.call('GET', '/v1/channels', { key }, 200)).channels;
  const vk = list.find((c) => c.channel === 'vk');
  assert.equal(vk.source, 'default');
  assert.equal(vk.token, '****0001');
  assert.ok(!JSON.stringify(list).includes(APPS.vk.token));
  assert.match(vk.webhook_url, /\/v1\/hooks\/vk\/default$/);
  assert.deepEqual(vk.reports, ['sent', 'read']);
  const own = await k.call('PUT', '/v1/channels/vk', { key, body: { base_url: 'http://127.0.0.1:1', token: 'account-own-token-9999', secret: 's', group_id: 1 } }, 200);
  assert.equal(own.source, 'account');
  assert.match(own.webhook_url, /\/v1\/hooks\/vk\/acc_/);
  assert.ok(!k.allStderr.includes('account-own-token-9999'), 'no secret in the log');
  r = await k.request('PUT', '/v1/channels/vk', { key, body: { token: 'x', secrett: 'typo' } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.field, 'secrett');
  await finish();
});

test('every channel end to end through its provider', { timeout: 60000 }, async (t) => {
  const { k, key, sim, finish } = await world(t);
  const cases = [
    [{ telegram_chat_id: '555001', cascade: [{ channel: 'telegram', wait: 'sent' }] }, 'sent', 'telegram'],
    [{ cascade: [{ channel: 'telegram_gateway', wait: 'read' }], text: 'Код входа: 7391' }, 'read', 'telegram_gateway'],
    [{ whatsapp_template: { name: 'order_status', language: 'ru', params: ['12345'] }, cascade: [{ channel: 'whatsapp', wait: 'read' }] }, 'read', 'whatsapp'],
    [{ email: 'anna@example.com', subject: 'Заказ', cascade: [{ channel: 'email', wait: 'sent' }] }, 'sent', 'email'],
    [{ vk_id: '8008', cascade: [{ channel: 'vk', wait: 'read' }] }, 'read', 'vk'],
  ];
  for (const [extra, want, ch] of cases) {
    const m = await k.send(key, { to: PHONE, text: 'Ваш заказ 12345 готов', ...extra });
    const done = await k.waitStatus(key, m.id, want, 15000);
    assert.equal(done.channel, ch);
    assert.equal(done.attempts[0].status, want);
    assert.ok(done.attempts[0].provider_id, `${ch} provider id`);
    const reqs = await sim.requests(ch);
    assert.equal(reqs.length, 1, `${ch}: one request`);
  }
  const gw = (await sim.requests('telegram_gateway'))[0];
  assert.equal(JSON.parse(gw.body).code, '7391');
  const wa = JSON.parse((await sim.requests('whatsapp'))[0].body);
  assert.equal(wa.type, 'template');
  const mail = (await sim.requests('email'))[0];
  assert.match(mail.body, /To: anna@example.com/);
  await finish();
});

test('a provider status that overtakes the answer to the send is kept and applied', { timeout: 60000 }, async (t) => {
  // A stand-in Viber that calls back "delivered" (signed) before it answers
  // the send: kaskad has no provider id to match yet.
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const http = await import('node:http');
  const token = 'fast-viber-token-0001';
  let hook = null;
  let sends = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      if (req.url === '/pa/set_webhook') {
        hook = JSON.parse(Buffer.concat(chunks).toString()).url;
        res.end('{"status":0,"status_message":"ok"}');
        return;
      }
      sends++;
      const mt = 5741311803571799000 + sends;
      const body = `{"event":"delivered","timestamp":${Date.now()},"message_token":${mt}}`;
      const sig = crypto.createHmac('sha256', token).update(body).digest('hex');
      const r = await fetch(hook, { method: 'POST', body, headers: { 'x-viber-content-signature': sig } });
      await r.text();
      res.end(`{"status":0,"status_message":"ok","message_token":${mt}}`);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  await k.call('PUT', '/v1/channels/viber', { body: { base_url: `http://127.0.0.1:${server.address().port}`, token } }, 200);
  const m = await k.send(key, {
    to: PHONE, text: 'fast', viber_id: 'vb-fast',
    cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
  });
  const done = await k.waitStatus(key, m.id, 'delivered', 15000);
  assert.equal(done.channel, 'viber');
  assert.equal(done.attempts.length, 1);
  assert.ok(done.attempts[0].delivered_at);
  assert.equal(sends, 1);
  assert.equal(smsc.submits.length, 0);
  await finish();
});

test("a step's time runs from the provider's answer, not from a send still under way", { timeout: 60000 }, async (t) => {
  // A stand-in VK that takes 2.5 s to answer messages.send; the step waits
  // 1 s for a read that never comes. The step must not time out while its
  // request is still under way (nothing reached the provider yet), but 1 s
  // after the answer.
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const http = await import('node:http');
  let sends = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      sends++;
      setTimeout(() => res.end(JSON.stringify({ response: 500 + sends })), 2500);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  await k.call('PUT', '/v1/channels/vk', { body: { base_url: `http://127.0.0.1:${server.address().port}`,
    token: 'slow-vk-token-0001', secret: 'slow-secret', group_id: 7, confirmation: 'ok' } }, 200);
  const m = await k.send(key, {
    to: PHONE, text: 'slow provider', vk_id: '2002',
    cascade: [{ channel: 'vk', wait: 'read', timeout: '1s' }, { channel: 'sms', wait: 'delivered' }],
  });
  const done = await k.waitStatus(key, m.id, 'delivered', 20000);
  assert.deepEqual(done.attempts.map((a) => [a.channel, a.status]), [['vk', 'timeout'], ['sms', 'delivered']]);
  const vk = done.attempts[0];
  assert.ok(vk.sent_at, 'VK answered and the attempt is sent');
  const fromSent = Date.parse(done.attempts[1].created_at) - Date.parse(vk.sent_at);
  assert.ok(fromSent >= 900, `SMS started ${fromSent} ms after VK's answer, not before the 1 s window`);
  assert.equal(sends, 1, 'VK was asked once');
  assert.equal(smsc.submits.length, 1);
  await finish();
});
