// A provider request under way when kaskad is killed: a provider without an
// idempotency key (here Viber) is not asked again after the restart (the
// step fails as interrupted and the cascade goes on), VK is (its random_id
// makes the repeat harmless).
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { setup, waitUntil } from './lib/harness.mjs';

const PHONE = '79161234567';

/** A stand-in provider that answers webhook registrations and holds every send. */
async function holdingProvider(t, isSend, answer) {
  const sends = [];
  const held = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      if (!isSend(req.url)) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ status: 0, status_message: 'ok', response: 1 }));
        return;
      }
      sends.push(body);
      if (sends.length === 1) held.push(res);       // the first is never answered
      else res.end(JSON.stringify(answer(sends.length)));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => { for (const r of held) r.destroy(); server.close(); });
  return { url: `http://127.0.0.1:${server.address().port}`, sends };
}

test('kill -9 with a Viber request under way: not sent again, the next step goes', { timeout: 90000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const viber = await holdingProvider(t, (u) => u.includes('send_message'),
    (n) => ({ status: 0, status_message: 'ok', message_token: 900 + n }));
  await k.call('PUT', '/v1/channels/viber', { body: { base_url: viber.url, token: 'held-viber-token-1', sender: 'Kaskad' } }, 200);
  const m = await k.send(key, {
    to: PHONE, text: 'held by Viber', viber_id: 'vb-held',
    cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms', wait: 'delivered' }],
  });
  await waitUntil(() => viber.sends.length === 1, 'the Viber request to arrive', 10000);
  await k.kill9();
  await k.restart(30000);
  const done = await k.waitStatus(key, m.id, 'delivered', 20000);
  assert.deepEqual(done.attempts.map((a) => [a.channel, a.status]), [['viber', 'failed'], ['sms', 'delivered']]);
  assert.match(done.attempts[0].error, /^interrupted/);
  await k.settled(key, [m.id]);
  assert.equal(viber.sends.length, 1, 'Viber was asked once');
  assert.equal(smsc.submits.length, 1);
  await finish();
});

test('kill -9 with a VK request under way: sent again with the same random_id', { timeout: 90000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const vk = await holdingProvider(t, (u) => u.includes('messages.send'), (n) => ({ response: 700 + n }));
  await k.call('PUT', '/v1/channels/vk', { body: { base_url: vk.url, token: 'held-vk-token-0001',
    secret: 's', group_id: 7, confirmation: 'ok' } }, 200);
  const m = await k.send(key, {
    to: PHONE, text: 'held by VK', vk_id: '4004',
    cascade: [{ channel: 'vk', wait: 'sent', timeout: '30s' }, { channel: 'sms' }],
  });
  await waitUntil(() => vk.sends.length === 1, 'the VK request to arrive', 10000);
  await k.kill9();
  await k.restart(30000);
  const done = await k.waitStatus(key, m.id, 'sent', 20000);
  assert.equal(done.channel, 'vk');
  assert.equal(done.attempts.length, 1);
  assert.equal(done.attempts[0].provider_id, '702');
  const rid = (body) => new URLSearchParams(body).get('random_id');
  assert.equal(vk.sends.length, 2);
  assert.equal(rid(vk.sends[1]), rid(vk.sends[0]), 'the repeat carries the same random_id');
  assert.equal(smsc.submits.length, 0);
  await finish();
});
