// Lanes: on a route, service and transactional messages go on the stream
// lane and advertising on the bulk lane, each with its own queue; stream
// always goes first on the shared session and bulk takes what is left;
// within a lane the accounts take turns.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';

const PHONE = (i) => `7916${String(5550000 + i).padStart(7, '0')}`;

test('lanes: a stream message submitted before queued bulk ones on the same session', async (t) => {
  // One session, one submit in flight at a time, each answered after 100 ms:
  // advertising queues up behind the window.
  const { k, key, smsc, finish } = await setup(t, { route: { sessions: 1, window: 1 } });
  smsc.handler = () => ({ status: 0, delayMs: 100 });
  const bulk = [];
  await k.consent(key, Array.from({ length: 12 }, (_, i) => PHONE(i)));
  for (let i = 0; i < 12; i++) bulk.push({ to: PHONE(i), text: `sale ${i}`, sender: 'KASKAD', class: 'advertising' });
  const b = await k.call('POST', '/v1/messages/batch', { key, body: { messages: bulk } }, [200, 202, 207]);
  assert.equal(b.results.filter((r) => r.status === 'accepted').length, 12, JSON.stringify(b));
  await smsc.waitFor(() => smsc.submits.length >= 1, 'the first advertising submit');
  const code = await k.send(key, { to: PHONE(99), text: 'code 4242', sender: 'KASKAD', class: 'transactional' });
  await smsc.waitFor(() => smsc.submits.length >= 13, 'every submit', 20000);
  const order = smsc.submits.map((s) => s.text);
  const at = order.indexOf('code 4242');
  assert.ok(at >= 1 && at <= 2, `the code went out right after the submit in flight: ${order.join(', ')}`);
  assert.ok(order.slice(at + 1).filter((x) => x.startsWith('sale')).length >= 9,
    'most advertising went after it');
  assert.ok(smsc.submits.every((s) => s.sessionId === smsc.submits[0].sessionId), 'one session');
  const m = await k.waitStatus(key, code.id, ['sent', 'delivered']);
  assert.equal(m.attempts[0].route, 'main');
  await finish();
});

test('lanes: one account\'s backlog on a shared route does not hold another account\'s message', async (t) => {
  // One session, one submit in flight, each answered after 100 ms: account
  // A's 12 transactional messages queue in the stream lane; B's one comes
  // after them and goes next in turn, not after A's backlog.
  const { k, key, smsc, finish } = await setup(t, { route: { sessions: 1, window: 1 } });
  smsc.handler = () => ({ status: 0, delayMs: 100 });
  const b = await k.createAccount('second');
  const mine = Array.from({ length: 12 }, (_, i) => ({ to: PHONE(i), text: `order ${i}`, sender: 'KASKAD', class: 'transactional' }));
  const r = await k.call('POST', '/v1/messages/batch', { key, body: { messages: mine } }, [200, 202, 207]);
  assert.equal(r.results.filter((x) => x.status === 'accepted').length, 12, JSON.stringify(r));
  await smsc.waitFor(() => smsc.submits.length >= 1, 'the first submit of A');
  const theirs = await k.send(b.key, { to: PHONE(99), text: 'code 5151', sender: 'KASKAD', class: 'transactional' });
  await smsc.waitFor(() => smsc.submits.length >= 13, 'every submit', 20000);
  const order = smsc.submits.map((s) => s.text);
  const at = order.indexOf('code 5151');
  assert.ok(at >= 1 && at <= 3, `B's message went out next in turn: ${order.join(', ')}`);
  assert.ok(order.slice(at + 1).filter((x) => x.startsWith('order')).length >= 9, 'most of A\'s went after it');
  // each account's own messages keep their order
  const a = order.filter((x) => x.startsWith('order'));
  assert.deepEqual(a, mine.map((m) => m.text));
  await k.waitStatus(b.key, theirs.id, ['sent', 'delivered']);
  await finish();
});

test('lanes: each lane has its own rate; GET /v1/routes shows the lane queues', async (t) => {
  const { k, key, smsc, finish } = await setup(t, {
    route: { sessions: 1, window: 10, max_sps: { stream: 0, bulk: 5 } },
  });
  const r = await k.route('main');
  assert.deepEqual(r.max_sps, { stream: 0, bulk: 5 });
  assert.equal(r.lane, 'both');
  const bulk = [];
  await k.consent(key, Array.from({ length: 20 }, (_, i) => PHONE(i)));
  for (let i = 0; i < 20; i++) bulk.push({ to: PHONE(i), text: `promo ${i}`, sender: 'KASKAD', class: 'advertising' });
  await k.call('POST', '/v1/messages/batch', { key, body: { messages: bulk } }, [200, 202, 207]);
  // Bulk drains at 5 a second: most of it still waits in its lane...
  await smsc.waitFor(() => smsc.submits.length >= 1, 'the first advertising submit');
  const lanes = (await k.route('main')).queued_lanes;
  assert.ok(lanes.bulk >= 5, `bulk waits in its lane: ${JSON.stringify(lanes)}`);
  // ...while service messages go at once, past it.
  const before = smsc.submits.length;
  const ids = [];
  for (let i = 0; i < 5; i++) {
    ids.push((await k.send(key, { to: PHONE(50 + i), text: `otp ${i}`, sender: 'KASKAD', class: 'service' })).id);
  }
  await smsc.waitFor(() => smsc.submits.filter((s) => s.text.startsWith('otp')).length === 5, 'the service submits');
  const promosMeanwhile = smsc.submits.slice(before).filter((s) => s.text.startsWith('promo')).length;
  assert.ok(promosMeanwhile <= 10, `bulk kept its rate meanwhile (${promosMeanwhile})`);
  await smsc.waitFor(() => smsc.submits.length >= 25, 'every submit', 20000);
  await k.settled(key, []);
  await finish();
});
