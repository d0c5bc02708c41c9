// Throttling and temporary SMSC errors: resent later, accepted exactly once.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, metricSum } from './lib/harness.mjs';
import { STATUS } from './lib/smsc.mjs';

const gaps = (subs) => subs.slice(1).map((s, i) => s.at - subs[i].at);

test('ESME_RTHROTTLED three times: resent, accepted once, delivered', async (t) => {
  const { k, smsc, key, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD' },
    route: { throttle_pause_ms: 100 },
  });
  smsc.queue(
    { status: STATUS.ESME_RTHROTTLED },
    { status: STATUS.ESME_RTHROTTLED },
    { status: STATUS.ESME_RTHROTTLED },
  );
  const r = await k.send(key, { to: '79161230101', text: 'throttled n=1', sender: 'KASKAD' });
  const m = await k.waitStatus(key, r.id, 'delivered', 15000);
  const subs = smsc.submits.filter((s) => s.text === 'throttled n=1');
  assert.equal(subs.length, 4, 'three throttled submits and one accepted');
  assert.deepEqual(subs.map((s) => s.status), [0x58, 0x58, 0x58, 0]);
  assert.equal(subs.filter((s) => s.status === 0).length, 1, 'accepted exactly once');
  // Three refusals are no run: the message goes again at once, no pause.
  for (const g of gaps(subs)) assert.ok(g < 80, `resent without a session pause (gap ${g} ms)`);
  assert.equal(m.attempts.filter((a) => a.channel === 'sms').at(-1).provider_id, subs[3].message_id);
  const met = await k.metrics();
  assert.ok(metricSum(met, 'kaskad_sms_throttled_total') >= 3, 'throttled counter');
  await finish();
});

test('a run of ESME_RTHROTTLED pauses the session for throttle_pause_ms', async (t) => {
  const { k, smsc, key, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD' },
    route: { throttle_pause_ms: 300 },
  });
  let calls = 0;
  smsc.handler = () => (++calls <= 12 ? { status: STATUS.ESME_RTHROTTLED } : undefined);
  const r = await k.send(key, { to: '79161230103', text: 'run of throttles' });
  await k.waitStatus(key, r.id, 'delivered', 15000);
  const subs = smsc.submits.filter((s) => s.text === 'run of throttles');
  assert.equal(subs.length, 13, 'twelve refusals, then accepted');
  const g = gaps(subs);
  const paused = g.filter((x) => x >= 250);
  assert.ok(paused.length >= 1, `the session paused during the run (gaps ${g.join(',')})`);
  assert.ok(g.slice(0, 5).every((x) => x < 250), `the first refusals are resent at once (gaps ${g.join(',')})`);
  await finish();
});

test('throttling under load: every message accepted exactly once', async (t) => {
  const { k, smsc, key, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 5 },
    route: { throttle_pause_ms: 50, window: 5 },
  });
  // Every third submit of the first 45 is throttled.
  let calls = 0;
  smsc.handler = () => (++calls <= 45 && calls % 3 === 0 ? { status: STATUS.ESME_RTHROTTLED } : undefined);
  const ids = [];
  for (let i = 0; i < 30; i++) {
    const r = await k.send(key, { to: `7916123${String(2000 + i)}`, text: `load n=${i}` });
    ids.push(r.id);
  }
  for (const id of ids) await k.waitStatus(key, id, 'delivered', 20000);
  for (let i = 0; i < 30; i++) {
    const ok = smsc.submits.filter((s) => s.text === `load n=${i}` && s.status === 0);
    assert.equal(ok.length, 1, `message n=${i} accepted exactly once (got ${ok.length})`);
  }
  await finish();
});

test('ESME_RMSGQFUL is resent later', async (t) => {
  const { k, smsc, key, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD' },
    route: { throttle_pause_ms: 100 },
  });
  smsc.forDest('79161230102', { status: STATUS.ESME_RMSGQFUL });
  const r = await k.send(key, { to: '79161230102', text: 'queue full' });
  await k.waitStatus(key, r.id, 'delivered');
  const subs = smsc.submits.filter((s) => s.destination_addr === '79161230102');
  assert.deepEqual(subs.map((s) => s.status), [0x14, 0]);
  await finish();
});

test('temporary error 0x08 is retried with backoff', async (t) => {
  const { k, smsc, key, finish } = await setup(t, {
    args: ['--retry-min', '200ms', '--retry-max', '2s'],
    smsc: { autoReceipt: 'DELIVRD' },
  });
  smsc.forDest('79161230103', { status: STATUS.ESME_RSYSERR }, { status: STATUS.ESME_RSYSERR });
  const r = await k.send(key, { to: '79161230103', text: 'retry me' });
  // After the first error the message is still in progress, not failed.
  await smsc.waitFor(() => smsc.submits.find((s) => s.destination_addr === '79161230103' && s.status === 0x08),
    'the first ESME_RSYSERR answer');
  const mid = await k.message(key, r.id);
  assert.ok(!['failed', 'expired'].includes(mid.status), `still in progress after one temporary error: ${mid.status}`);
  const m = await k.waitStatus(key, r.id, 'delivered', 15000);
  const subs = smsc.submits.filter((s) => s.destination_addr === '79161230103');
  assert.deepEqual(subs.map((s) => s.status), [0x08, 0x08, 0]);
  const [g1, g2] = gaps(subs);
  assert.ok(g1 >= 180, `first retry after about retry-min (${g1} ms)`);
  assert.ok(g2 >= 360, `second retry backs off (${g2} ms)`);
  assert.ok(g1 < 5000 && g2 < 5000, 'retries are not absurdly late');
  assert.equal(m.status, 'delivered');
  const met = await k.metrics();
  assert.ok(metricSum(met, 'kaskad_sms_retried_total') >= 2, 'retried counter');
  await finish();
});

test('temporary errors until the validity ends: expired', async (t) => {
  // A request's ttl is at least 30s; the validity of a message without one
  // is its class's setting (ttl_service), which may be shorter: a few
  // seconds of retries instead of half a minute.
  const { k, smsc, key, finish } = await setup(t, {
    args: ['--retry-min', '200ms', '--retry-max', '400ms', '--ttl_service', '4s'],
  });
  smsc.handler = (s) => (s.destination_addr === '79161230104' ? { status: STATUS.ESME_RSYSERR } : undefined);
  const r = await k.send(key, { to: '79161230104', text: 'never' });
  const sent = await k.message(key, r.id);
  assert.equal(Date.parse(sent.expires_at) - Date.parse(sent.created_at), 4000, 'the class validity');
  const m = await k.waitStatus(key, r.id, 'expired', 20000);
  const a = m.attempts.filter((x) => x.channel === 'sms').at(-1);
  assert.ok(a, 'an sms attempt');
  assert.match(a.error ?? '', /ESME_RSYSERR/, 'the last SMSC error is kept');
  const n = smsc.submits.filter((s) => s.destination_addr === '79161230104').length;
  assert.ok(n >= 2, `retried before expiring (${n} submits)`);
  await finish();
});
