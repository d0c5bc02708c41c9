// Two kaskad nodes on one PostgreSQL database: a scheduled SMS accepted by
// node B waits in B's memory for its time; DELETE /v1/messages/{id} on node
// A cancels it, and B does not send it when the time comes (the store
// decides between the cancel and the send: whichever commits first). A
// scheduled message nobody cancelled goes out on B, and a cancel that comes
// after it started is refused with 409 not_scheduled.
import test from 'node:test';
import assert from 'node:assert/strict';
import { sleep, waitUntil } from './lib/harness.mjs';
import { NODES_SKIP, twoNodes } from './lib/nodes.mjs';

test('a scheduled SMS held by node B is cancelled through node A and never sent',
  { skip: NODES_SKIP, timeout: 120000 }, async (t) => {
    const { a, b, key, smsc } = await twoNodes(t, { autoReceipt: 'DELIVRD', receiptDelayMs: 30 });

    const at = new Date(Date.now() + 5000).toISOString();
    const send = (to, text) => b.call('POST', '/v1/messages', { key, body: { to, text, send_at: at } }, 202);
    const gone = await send('79167000001', 'Отменён на другом узле');
    const keep = await send('79167000002', 'Уйдёт в своё время');
    assert.equal(gone.status, 'scheduled');
    assert.equal(keep.status, 'scheduled');

    const r = await a.request('DELETE', `/v1/messages/${gone.id}`, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'cancelled');

    // The time comes: the one not cancelled goes (through B), the cancelled one does not.
    await waitUntil(async () => (await a.call('GET', `/v1/messages/${keep.id}`, { key }, 200)).status === 'delivered',
      'the message not cancelled to be delivered', 30000, 100);
    await sleep(1500);
    const to = smsc.submits.map((s) => s.destination_addr);
    assert.deepEqual(to.filter((x) => x.startsWith('7916700')), ['79167000002']);
    assert.equal((await b.call('GET', `/v1/messages/${gone.id}`, { key }, 200)).status, 'cancelled');
    assert.equal((await a.call('GET', `/v1/messages/${gone.id}`, { key }, 200)).status, 'cancelled');

    // Once under way, a cancel on either node is refused.
    for (const k of [a, b]) {
      const x = await k.request('DELETE', `/v1/messages/${keep.id}`, { key });
      assert.equal(x.status, 409, x.text);
      assert.equal(x.json.error.code, 'not_scheduled');
    }
  });
