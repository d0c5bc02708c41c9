// Delivery receipts and submit errors turn into message and attempt statuses.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, metricSum } from './lib/harness.mjs';
import { STATUS } from './lib/smsc.mjs';

function smsAttempt(msg) {
  const a = (msg.attempts ?? []).filter((x) => x.channel === 'sms');
  assert.ok(a.length >= 1, `message ${msg.id} has an sms attempt: ${JSON.stringify(msg)}`);
  return a.at(-1);
}

test('DELIVRD receipt: sent, then delivered with the provider id', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const r = await k.send(key, { to: '79161234501', text: 'Your code is 1234', sender: 'KASKAD' });
  const sub = await smsc.waitFor(() => smsc.submits.find((s) => s.destination_addr === '79161234501' && s.message_id),
    'the submit_sm to be answered');

  const sent = await k.waitStatus(key, r.id, 'sent');
  const a1 = smsAttempt(sent);
  assert.equal(a1.status, 'sent');
  assert.equal(a1.provider_id, sub.message_id, 'provider_id is the submit_sm_resp message_id');
  assert.ok(a1.sent_at, 'sent_at set');
  assert.ok(!a1.delivered_at, 'not delivered yet');
  assert.equal(a1.segments, 1);

  assert.equal(await smsc.sendReceipt(sub, 'DELIVRD'), 0, 'deliver_sm_resp OK');
  const done = await k.waitStatus(key, r.id, 'delivered');
  const a2 = smsAttempt(done);
  assert.equal(a2.status, 'delivered');
  assert.equal(a2.provider_id, sub.message_id);
  assert.ok(a2.delivered_at, 'delivered_at set');
  assert.ok(Date.parse(a2.delivered_at) >= Date.parse(a2.sent_at), 'delivered_at after sent_at');
  assert.equal(done.channel, 'sms');

  const m = await k.metrics();
  assert.ok(metricSum(m, 'kaskad_messages_delivered_total') >= 1, 'delivered counter in /metrics');
  await finish();
});

test('UNDELIV receipt: failed with the receipt error', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const r = await k.send(key, { to: '79161234502', text: 'hello', sender: 'KASKAD' });
  const sub = await smsc.waitFor(() => smsc.submits.find((s) => s.message_id), 'the submit_sm to be answered');
  await k.waitStatus(key, r.id, 'sent');
  await smsc.sendReceipt(sub, 'UNDELIV', { err: '011' });
  const m = await k.waitStatus(key, r.id, 'failed');
  const a = smsAttempt(m);
  assert.equal(a.status, 'failed');
  assert.match(a.error ?? '', /UNDELIV/, 'attempt error names the receipt state');
  assert.ok(!a.delivered_at, 'no delivered_at on a failed attempt');
  await finish();
});

test('two-part message is delivered only after both parts are', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const long = 'Ваш заказ №123456 собран и передан в службу доставки. Курьер позвонит за час до приезда.';
  assert.ok(long.length > 70 && long.length <= 134);
  const r = await k.send(key, { to: '79161234503', text: long, sender: 'KASKAD' });
  assert.equal(r.segments, 2);
  const parts = await smsc.waitFor(() => {
    const p = smsc.submits.filter((s) => s.destination_addr === '79161234503' && s.message_id);
    return p.length === 2 ? p : null;
  }, 'both parts answered');
  assert.notEqual(parts[0].message_id, parts[1].message_id);
  await k.waitStatus(key, r.id, 'sent');

  await smsc.sendReceipt(parts[0], 'DELIVRD');
  // A barrier: a single-part message's receipt sent after part 1's. Once that
  // message is delivered, part 1's receipt has been handled too.
  const b = await k.send(key, { to: '79161234599', text: 'barrier' });
  const bsub = await smsc.waitFor(() => smsc.submits.find((s) => s.destination_addr === '79161234599' && s.message_id),
    'the barrier submit_sm');
  await smsc.sendReceipt(bsub, 'DELIVRD');
  await k.waitStatus(key, b.id, 'delivered');
  const mid = await k.message(key, r.id);
  assert.equal(mid.status, 'sent', 'one part of two delivered: still sent');

  await smsc.sendReceipt(parts[1], 'DELIVRD');
  const done = await k.waitStatus(key, r.id, 'delivered');
  assert.ok(smsAttempt(done).delivered_at);
  await finish();
});

test('submit refused with ESME_RINVDSTADR: failed, error names the status', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  smsc.forDest('79161234504', { status: STATUS.ESME_RINVDSTADR });
  const r = await k.send(key, { to: '79161234504', text: 'hello', sender: 'KASKAD' });
  const m = await k.waitStatus(key, r.id, 'failed');
  const a = smsAttempt(m);
  assert.equal(a.status, 'failed');
  assert.match(a.error ?? '', /ESME_RINVDSTADR/);
  // A permanent error is not retried.
  assert.equal(smsc.submits.filter((s) => s.destination_addr === '79161234504').length, 1, 'submitted once');
  await finish();
});

test('receipt without TLVs, id only in the text, is matched', async (t) => {
  const { k, smsc, key, finish } = await setup(t, { smsc: { receiptTlvs: false } });
  const r = await k.send(key, { to: '79161234505', text: 'text only receipt' });
  const sub = await smsc.waitFor(() => smsc.submits.find((s) => s.message_id), 'the submit_sm to be answered');
  await k.waitStatus(key, r.id, 'sent');
  await smsc.sendReceipt(sub, 'DELIVRD', { tlvs: false });
  await k.waitStatus(key, r.id, 'delivered');
  await finish();
});

test('receipt id in decimal matches a hex submit_sm_resp id', async (t) => {
  const { k, smsc, key, finish } = await setup(t, { smsc: { receiptTlvs: false } });
  smsc.forDest('79161234506', { status: 0, messageId: '1A2B3C4D' });
  const r = await k.send(key, { to: '79161234506', text: 'hex id' });
  const sub = await smsc.waitFor(() => smsc.submits.find((s) => s.message_id), 'the submit_sm to be answered');
  await k.waitStatus(key, r.id, 'sent');
  // 0x1A2B3C4D = 439041101
  await smsc.sendReceipt(sub, 'DELIVRD', { tlvs: false, idInText: '439041101' });
  await k.waitStatus(key, r.id, 'delivered', 5000);
  await finish();
});

test('a receipt that comes before its submit_sm_resp is held and applied', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  smsc.forDest('79161234507', { status: 0, messageId: 'EARLY07', delayMs: 800 });
  const r = await k.send(key, { to: '79161234507', text: 'early receipt' });
  await smsc.waitFor(() => smsc.submits.find((s) => s.destination_addr === '79161234507'), 'the submit_sm');
  // The SMSC reports delivery while its submit_sm_resp is still on the way.
  assert.equal(await smsc.sendReceipt('EARLY07', 'DELIVRD'), 0, 'receipt acknowledged');
  const early = await k.message(key, r.id);
  assert.equal(early.status, 'accepted', 'no submit_sm_resp yet');
  const m = await k.waitStatus(key, r.id, 'delivered', 5000);
  assert.equal(m.attempts[0].provider_id, 'EARLY07');
  const met = await k.metrics();
  assert.equal(metricSum(met, 'kaskad_receipts_early_total'), 1);
  await finish();
});
