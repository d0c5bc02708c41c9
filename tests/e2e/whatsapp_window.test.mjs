// WhatsApp's 24-hour customer-service window end to end: kaskad, the
// simulator's WhatsApp (which keeps windows of its own and fails a text sent
// outside one with 131047), and an independent SMSC (npm smpp) for the SMS
// step the cascade falls through to.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { setup, waitUntil } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim, APPS } from './lib/sim.mjs';

const TEMPLATE = { name: 'order_status', language: 'ru', params: ['12345'] };
const TEXT = 'Заказ 12345 готов к выдаче';

/** kaskad + SMSC (auto DELIVRD receipts) + simulator with every channel pointed at it. */
async function world(t) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 } });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ whatsapp: { reach: 1, read: 0, deliver_ms: [20, 20] } });
  env.channels = await pointChannelsAtSim(env.k, sim);
  env.sim = sim;
  return env;
}

/** WhatsApp, then SMS; with or without a template. */
function waMessage(to, withTemplate) {
  return {
    to, text: TEXT, ...(withTemplate ? { whatsapp_template: TEMPLATE } : {}),
    cascade: [{ channel: 'whatsapp', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
  };
}

/** The bodies kaskad sent to the simulator's WhatsApp, oldest first. */
async function waBodies(sim) {
  return (await sim.requests('whatsapp')).map((r) => JSON.parse(r.body));
}

/** The person writes to the business through the simulator, which calls kaskad's webhook. */
async function personWrites(sim, from) {
  const r = await sim.call('POST', '/whatsapp/inbound', { token: APPS.whatsapp.token, from, text: 'Когда доставка?' });
  assert.equal(r.status, 200, 'kaskad stored the message before it answered');
}

test('a template outside the window, a text inside it, kept over a restart', { timeout: 90000 }, async (t) => {
  const { k, key, sim, smsc, finish } = await world(t);
  const phone = '79161234567';

  // Nobody has written yet: the template goes.
  let m = await k.send(key, waMessage(phone, true));
  let done = await k.waitStatus(key, m.id, 'delivered');
  assert.deepEqual(done.attempts.map((a) => [a.channel, a.status]), [['whatsapp', 'delivered']]);
  let bodies = await waBodies(sim);
  assert.equal(bodies.length, 1);
  assert.equal(bodies[0].type, 'template');
  assert.equal(bodies[0].to, phone);
  assert.equal(bodies[0].template.name, 'order_status');

  // The person writes: the next message goes as text, template or not.
  await personWrites(sim, phone);
  m = await k.send(key, waMessage(phone, true));
  done = await k.waitStatus(key, m.id, 'delivered');
  assert.equal(done.channel, 'whatsapp');
  bodies = await waBodies(sim);
  assert.equal(bodies.length, 2);
  assert.deepEqual(bodies[1], {
    messaging_product: 'whatsapp', recipient_type: 'individual', to: phone, type: 'text',
    text: { body: TEXT, preview_url: false },
  });

  // The window is in the store: after a kill and a restart a message
  // without a template still goes as text.
  await k.kill9();
  await k.restart();
  const list = (await k.call('GET', '/v1/channels', {}, 200)).channels;
  await sim.addApp({ channel: 'whatsapp', ...APPS.whatsapp, callback_url: list.find((c) => c.channel === 'whatsapp').webhook_url });
  await smsc.waitFor(() => smsc.boundSessions().length >= 1, 'kaskad to bind again');
  m = await k.send(key, waMessage(phone, false));
  done = await k.waitStatus(key, m.id, 'delivered', 15000);
  assert.deepEqual(done.attempts.map((a) => [a.channel, a.status]), [['whatsapp', 'delivered']]);
  bodies = await waBodies(sim);
  assert.equal(bodies.length, 3);
  assert.equal(bodies[2].type, 'text');
  assert.equal(smsc.submits.length, 0, 'no SMS was needed');
  await finish();
});

test('window closed and no template: the step fails without a request, SMS goes out', { timeout: 60000 }, async (t) => {
  const { k, key, sim, smsc, finish } = await world(t);
  const phone = '79161234500';
  const m = await k.send(key, waMessage(phone, false));
  const done = await k.waitStatus(key, m.id, 'delivered', 15000);
  assert.equal(done.channel, 'sms');
  assert.deepEqual(done.attempts.map((a) => [a.channel, a.status]), [['whatsapp', 'failed'], ['sms', 'delivered']]);
  const wa = done.attempts[0];
  assert.match(wa.error, /^whatsapp_window_closed: /);
  assert.equal(wa.provider_id, null);
  assert.equal(wa.sent_at, null);
  assert.equal(wa.cost, 0);
  assert.equal((await sim.requests('whatsapp')).length, 0, 'nothing was sent to WhatsApp');
  assert.equal(smsc.submits.length, 1);
  assert.equal(smsc.submits[0].destination_addr, phone);
  const sentMs = Date.parse(done.attempts[1].created_at) - Date.parse(done.attempts[0].created_at);
  assert.ok(sentMs < 5000, `SMS started ${sentMs} ms after WhatsApp, not after the 30 s timeout`);
  await finish();
});

test('a text the provider refuses with 131047 fails the step at once', { timeout: 60000 }, async (t) => {
  // kaskad hears of a message the simulator does not know of (a signed
  // webhook straight to kaskad): kaskad sends a text, WhatsApp reports
  // re-engagement required, and the cascade moves on without waiting.
  const { k, key, sim, smsc, finish } = await world(t);
  const phone = '79161234511';
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '1055', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp', metadata: { phone_number_id: APPS.whatsapp.phone_number_id },
      messages: [{ from: phone, id: 'wamid.OUTSIDE1', timestamp: String(Math.floor(Date.now() / 1000)),
        type: 'text', text: { body: 'hi' } }] } }] }],
  });
  const sig = crypto.createHmac('sha256', APPS.whatsapp.secret).update(body).digest('hex');
  const r = await k.request('POST', '/v1/hooks/whatsapp/default', { key: null, body, headers: { 'x-hub-signature-256': `sha256=${sig}` } });
  assert.equal(r.status, 200);

  const m = await k.send(key, waMessage(phone, true));
  const done = await k.waitStatus(key, m.id, 'delivered', 15000);
  assert.deepEqual(done.attempts.map((a) => [a.channel, a.status]), [['whatsapp', 'failed'], ['sms', 'delivered']]);
  assert.match(done.attempts[0].error, /^131047 /);
  const bodies = await waBodies(sim);
  assert.equal(bodies.length, 1, 'not sent again as the template');
  assert.equal(bodies[0].type, 'text');
  assert.equal(smsc.submits.length, 1);
  const sentMs = Date.parse(done.attempts[1].created_at) - Date.parse(done.attempts[0].created_at);
  assert.ok(sentMs < 5000, `SMS started ${sentMs} ms after WhatsApp, not after the 30 s timeout`);
  await waitUntil(async () => (await k.message(key, m.id)).finished, 'the cascade to finish');
  await finish();
});
