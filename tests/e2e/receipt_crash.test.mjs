// A delivery receipt that kaskad acknowledged with deliver_sm_resp survives
// kill -9: kaskad answers a receipt only after the commit that records it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';

const N = 2000;

test('an acknowledged receipt survives kill -9', { timeout: 90000 }, async (t) => {
  const { k, smsc, key, finish } = await setup(t, { args: ['--sync', 'full', '--rate_key', '0', '--rate_account', '0'], route: { window: 50 } });
  const messages = [];
  for (let i = 0; i < N; i++) messages.push({ to: `79${String(200000000 + i)}`, text: `rc n=${i}` });
  const ids = new Map();                 // index -> kaskad id
  for (let b = 0; b < N; b += 1000) {
    const r = await k.call('POST', '/v1/messages/batch', { key, body: { messages: messages.slice(b, b + 1000) } });
    for (const res of r.results) ids.set(b + res.index, res.id);
  }
  assert.equal(ids.size, N);
  await smsc.waitFor(() => smsc.submits.filter((s) => s.status === 0).length >= N, 'every submit answered', 30000);
  // Wait until kaskad has stored every submit_sm_resp (status "sent").
  for (const id of [ids.get(0), ids.get(N - 1)]) await k.waitStatus(key, id, ['sent'], 20000);

  // Receipts in concurrent waves of 200; kaskad is killed once a quarter are
  // acknowledged, while the rest of its wave is still in flight. No wave
  // starts after the kill, so the kill always lands in the middle.
  const subs = smsc.submits.filter((s) => s.status === 0);
  let answered = 0;
  let killing = null;
  for (let w = 0; w < subs.length && !killing; w += 200) {
    await Promise.all(subs.slice(w, w + 200).map((s) => smsc.sendReceipt(s, 'DELIVRD').then((st) => {
      if (st === 0 && ++answered === N / 4) killing = k.kill9();
    }, () => null)));
  }
  assert.ok(killing, 'kaskad was killed');
  await killing;
  const acked = smsc.receipts.filter((x) => x.status === 0).map((x) => x.messageId);
  console.log(`receipt_crash: ${acked.length} of ${N} receipts acknowledged before the kill`);

  await k.restart();
  const byProvider = new Map(subs.map((s) => [s.message_id, Number(/n=(\d+)/.exec(s.text)[1])]));
  let delivered = 0;
  for (const pid of acked) {
    const m = await k.message(key, ids.get(byProvider.get(pid)));
    if (m.status === 'delivered') delivered++;
    else assert.fail(`message ${m.id}: receipt acknowledged before the kill, status now ${m.status}`);
  }
  assert.equal(delivered, acked.length);
  assert.ok(acked.length >= N / 4 && acked.length < N, 'the kill came in the middle of the receipts');
  await finish();
});
