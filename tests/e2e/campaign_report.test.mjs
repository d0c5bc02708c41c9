// Campaigns end to end: messages sent with a "campaign" name, listed by it,
// and added up by GET /v1/campaigns/{campaign}/report (statuses, channels,
// "delivered twice", cost and savings), per account only. kaskad, the
// simulator's messenger providers and an independent SMSC (npm smpp).
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

const PHONE = '79161234567';
const CAMPAIGN = 'spring-sale.2026_A';

/** kaskad + SMSC (auto DELIVRD receipts) + simulator with every channel pointed at it. */
async function world(t, knobs) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 } });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config(knobs);
  env.channels = await pointChannelsAtSim(env.k, sim);
  env.sim = sim;
  return env;
}

/** Waits until a message's cascade has ended; returns it. */
async function finished(k, key, id) {
  let last = null;
  return waitUntil(async () => {
    last = await k.message(key, id);
    return last.finished ? last : null;
  }, `message ${id} to finish (last: ${JSON.stringify(last)})`, 20000, 50);
}

const report = (k, key, campaign) => k.request('GET', `/v1/campaigns/${campaign}/report`, { key });

/** Every id of a listing, following next_cursor. */
async function listAll(k, key, query) {
  const ids = [];
  let cursor = null;
  do {
    const page = await k.call('GET', `/v1/messages?${query}${cursor ? `&cursor=${cursor}` : ''}`, { key }, 200);
    for (const m of page.messages) ids.push(m);
    cursor = page.next_cursor;
  } while (cursor);
  return ids;
}

test('a campaign report: statuses, channels, delivered twice, cost and savings', { timeout: 90000 }, async (t) => {
  const { k, key, finish } = await world(t, {
    viber: { reach: 1, read: 0, deliver_ms: [20, 20] },   // delivered, never read
    vk: { reach: 0 },                                      // VK refuses at once
  });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.35, viber: 0.4, vk: 0.1 } } }, 200);

  // Delivered on Viber, which is what the step waits for.
  const a = await k.send(key, {
    to: PHONE, text: 'Sale: -20% today', viber_id: 'vb-a', campaign: CAMPAIGN,
    cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
  });
  // Waits for a read that never comes: falls through to SMS, which delivers too.
  const b = await k.send(key, {
    to: '79161234568', text: 'Sale: -20% today', viber_id: 'vb-b', campaign: CAMPAIGN,
    cascade: [{ channel: 'viber', wait: 'read', timeout: '1s' }, { channel: 'sms' }],
  });
  // 71 Cyrillic characters: 2 SMS segments.
  const cyr = 'Ваш заказ №12345 собран и передан в доставку. Курьер позвонит заранее!!';
  assert.equal([...cyr].length, 71);
  const batch = await k.request('POST', '/v1/messages/batch', { key, body: { messages: [
    { to: '79161234569', text: cyr, campaign: CAMPAIGN },
    { to: '79161234570', text: 'vk only', vk_id: '9009', campaign: CAMPAIGN, cascade: [{ channel: 'vk', wait: 'read' }] },
    { to: '79161234571', text: 'another campaign', campaign: 'other' },
    { to: '79161234572', text: 'no campaign' },
    { to: '79161234573', text: 'refused', campaign: 'black friday' },
  ] } });
  assert.equal(batch.status, 202);
  assert.equal(batch.json.accepted, 4);
  assert.equal(batch.json.rejected, 1);
  const refused = batch.json.results[4].error;
  assert.equal(refused.code, 'invalid_campaign');
  assert.equal(refused.field, 'campaign');
  const [c, d, other, none] = batch.json.results.slice(0, 4).map((r) => r.id);

  const ma = await finished(k, key, a.id);
  assert.equal(ma.status, 'delivered');
  assert.equal(ma.channel, 'viber');
  assert.equal(ma.campaign, CAMPAIGN);
  const mb = await waitUntil(async () => {
    const x = await k.message(key, b.id);
    return x.finished && x.attempts[1]?.status === 'delivered' ? x : null;
  }, 'message b to be delivered by SMS as well', 20000, 50);
  assert.deepEqual(mb.attempts.map((x) => [x.channel, x.status]), [['viber', 'timeout'], ['sms', 'delivered']]);
  assert.ok(mb.attempts[0].delivered_at, 'Viber delivered it before the step timed out');
  assert.equal(mb.delivered_twice, 1, 'both channels reached the person');
  assert.equal(mb.status, 'delivered');
  assert.equal(mb.channel, 'viber', 'the channel that reached the status first');
  const mc = await finished(k, key, c);
  assert.equal(mc.status, 'delivered');
  assert.equal(mc.segments, 2);
  const md = await finished(k, key, d);
  assert.equal(md.status, 'failed');
  assert.equal((await finished(k, key, other)).campaign, 'other');
  assert.equal((await finished(k, key, none)).campaign, null);

  // The per-message money, as GET /v1/messages/{id} shows it.
  assert.deepEqual([ma, mb, mc, md].map((m) => [m.cost, m.sms_only_cost]),
    [[0.4, 2.35], [2.75, 2.35], [4.7, 4.7], [0, 2.35]]);

  const r = await report(k, key, CAMPAIGN);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, {
    campaign: CAMPAIGN,
    messages: 4,
    by_status: { delivered: 3, failed: 1 },
    by_channel: { sms: 1, viber: 2 },
    delivered_twice: 1,
    messages_delivered_twice: 1,
    cost: 7.85,
    sms_only_cost: 11.75,
    savings: 3.9,
    opted_out: 0,
    // per channel: sent counts what reached sent or better there
    channels: {
      sms: { messages: 1, sent: 1, delivered: 1, read: 0, failed: 0, expired: 0, opted_out: 0, cost: 4.7,
        sms_only_cost: 4.7, savings: 0, delivered_twice: 0 },
      viber: { messages: 2, sent: 2, delivered: 2, read: 0, failed: 0, expired: 0, opted_out: 0, cost: 3.15,
        sms_only_cost: 4.7, savings: 1.55, delivered_twice: 1 },
      vk: { messages: 1, sent: 0, delivered: 0, read: 0, failed: 1, expired: 0, opted_out: 0, cost: 0,
        sms_only_cost: 2.35, savings: 2.35, delivered_twice: 0 },
    },
    by_variant: [],   // sent by the API: no variants
    // no tracked links in these texts: nothing clicked (links.test.mjs)
    clicks: { clicked: 0, clicked_unique: 0, previews: 0, converted: 0, value: 0, by_channel: {}, by_variant: {} },
  });
  // The same figures as the messages' own, added up.
  const sum = (f) => Math.round([ma, mb, mc, md].reduce((s, m) => s + f(m), 0) * 10000) / 10000;
  assert.equal(r.json.cost, sum((m) => m.cost));
  assert.equal(r.json.sms_only_cost, sum((m) => m.sms_only_cost));
  assert.equal(r.json.delivered_twice, sum((m) => m.delivered_twice));

  const ro = await report(k, key, 'other');
  assert.equal(ro.status, 200);
  assert.equal(ro.json.messages, 1);
  assert.deepEqual(ro.json.by_status, { delivered: 1 });
  assert.equal(ro.json.cost, 2.35);
  assert.equal(ro.json.savings, 0);

  // Listing by campaign, a page at a time; every item shows its campaign.
  const listed = await listAll(k, key, `campaign=${CAMPAIGN}&limit=3`);
  assert.deepEqual(new Set(listed.map((m) => m.id)), new Set([a.id, b.id, c, d]));
  assert.equal(listed.length, 4);
  assert.ok(listed.every((m) => m.campaign === CAMPAIGN));
  const failedOnly = await listAll(k, key, `campaign=${CAMPAIGN}&status=failed`);
  assert.deepEqual(failedOnly.map((m) => m.id), [d]);
  const everything = await listAll(k, key, 'limit=100');
  assert.equal(everything.length, 6);
  assert.equal(everything.find((m) => m.id === none).campaign, null);

  let x = await report(k, key, 'no-such-campaign');
  assert.equal(x.status, 404);
  assert.equal(x.json.error.code, 'not_found');

  // Another account sees none of it; its own message of the same name is
  // its own campaign.
  const acct2 = await k.createAccount();
  x = await report(k, acct2.key, CAMPAIGN);
  assert.equal(x.status, 404);
  assert.equal(x.json.error.code, 'not_found');
  assert.ok(!x.text.includes(a.id));
  assert.deepEqual(await listAll(k, acct2.key, `campaign=${CAMPAIGN}`), []);
  const own = await k.send(acct2.key, { to: PHONE, text: 'theirs', campaign: CAMPAIGN });
  await finished(k, acct2.key, own.id);
  x = await report(k, acct2.key, CAMPAIGN);
  assert.equal(x.status, 200);
  assert.equal(x.json.messages, 1);
  assert.equal((await report(k, key, CAMPAIGN)).json.messages, 4);
  x = await k.request('GET', `/v1/messages/${a.id}`, { key: acct2.key });
  assert.equal(x.status, 404);
  // The operator key has no account.
  x = await report(k, undefined, CAMPAIGN);
  assert.equal(x.status, 403);
  await finish();
});

test('campaign names are checked', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const bad = ['', 'black friday', 'весна', 'a/b', 'x'.repeat(65), 'semi;colon', 42, true, ['a'], { name: 'a' }];
  for (const campaign of bad) {
    const r = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', campaign } });
    assert.equal(r.status, 422, `campaign ${JSON.stringify(campaign)}: ${r.text}`);
    assert.equal(r.json.error.code, 'invalid_campaign');
    assert.equal(r.json.error.field, 'campaign');
  }
  let r = await k.request('POST', '/v1/messages/batch', { key, body: { messages: [{ to: PHONE, text: 'x', campaign: 'a b' }] } });
  assert.equal(r.status, 422);
  assert.equal(r.json.results[0].error.code, 'invalid_campaign');
  assert.deepEqual((await k.call('GET', '/v1/messages', { key }, 200)).messages, [], 'nothing was stored');

  // The longest name, and null for none.
  const longest = 'x'.repeat(64);
  const m = await k.send(key, { to: PHONE, text: 'x', campaign: longest });
  assert.equal((await k.message(key, m.id)).campaign, longest);
  const n = await k.send(key, { to: PHONE, text: 'x', campaign: null });
  assert.equal((await k.message(key, n.id)).campaign, null);
  assert.equal((await report(k, key, longest)).json.messages, 1);
  // Both delivered before the stop, so no receipt arrives while it drains.
  await finished(k, key, m.id);
  await finished(k, key, n.id);

  r = await k.request('GET', '/v1/messages?campaign=a%20b', { key });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'invalid_campaign');
  r = await report(k, key, 'x'.repeat(65));
  assert.equal(r.status, 422);
  assert.equal(r.json.error.field, 'campaign');
  r = await report(k, key, 'semi;colon');
  assert.equal(r.status, 422);
  r = await k.request('POST', `/v1/campaigns/${longest}/report`, { key });
  assert.equal(r.status, 405);
  await finish();
});
