// Graceful shutdown: SIGTERM while messages are being accepted and submitted
// exits 0 after unbinding, and a restart sends every acknowledged message
// that was not yet submitted, none twice.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil } from './lib/harness.mjs';

const TOTAL = 20000;           // an upper bound: the senders run until kaskad stops
const BATCH = 50;
const TERM_AFTER_SUBMITS = 300;

test('SIGTERM under load: exit 0, unbind, nothing lost or sent twice after restart', { timeout: 90000 }, async (t) => {
  const { k, smsc, key, finish } = await setup(t, {
    // Slow answers keep submits in flight when the signal comes.
    smsc: {},
    route: { window: 10, resp_timeout_ms: 5000 },
  });
  smsc.handler = () => ({ status: 0, delayMs: 20 });
  const log = (s) => console.log(`shutdown: ${s}`);

  const acked = new Map();
  let next = 0;
  let stopped = false;
  let termAt = 0;
  const refused = [];           // { status, afterTerm } of every non-202 answer
  let transportErrors = 0;
  async function sender() {
    while (!stopped && next < TOTAL) {
      const start = next;
      next += BATCH;
      const messages = [];
      for (let i = start; i < Math.min(start + BATCH, TOTAL); i++) {
        messages.push({ to: `79${String(200000000 + i)}`, text: `term n=${i}` });
      }
      let r;
      try {
        r = await k.request('POST', '/v1/messages/batch', { key, body: { messages }, timeoutMs: 20000 });
      } catch {
        transportErrors++;
        continue;
      }
      if (r.status !== 202) {
        refused.push({ status: r.status, afterTerm: termAt > 0 });
        continue;
      }
      for (const res of r.json.results) if (res.id) acked.set(start + res.index, res.id);
    }
  }
  const senders = [sender(), sender()];

  await smsc.waitFor(() => smsc.submits.length >= TERM_AFTER_SUBMITS, `${TERM_AFTER_SUBMITS} submits`, 30000);
  termAt = Date.now();
  k.proc.kill('SIGTERM');
  let timer;
  const exit = await Promise.race([
    k.exited,
    new Promise((r) => { timer = setTimeout(() => r(null), 30000); }),
  ]);
  clearTimeout(timer);
  stopped = true;
  await Promise.all(senders);
  if (!exit) {
    await k.kill9();
    assert.fail(`kaskad did not exit within 30 s of SIGTERM:\n${k.tail()}`);
  }
  log(`exit ${JSON.stringify(exit)} ${Date.now() - termAt} ms after SIGTERM; acknowledged ${acked.size}; ` +
    `SMSC submits ${smsc.submits.length}; refused ${refused.length} (${[...new Set(refused.map((x) => x.status))].join(',')}); ` +
    `transport errors ${transportErrors}`);
  assert.deepEqual(refused.filter((x) => !x.afterTerm), [], 'no batch refused before SIGTERM');
  for (const x of refused) assert.equal(x.status, 503, 'requests during shutdown are refused with 503');
  k.checkSanitizer();
  assert.equal(exit.code, 0, `exit code 0 on SIGTERM (got ${JSON.stringify(exit)}):\n${k.tail()}`);
  assert.ok(smsc.unbinds.length >= 1, 'the SMSC saw an unbind');
  const unanswered = smsc.submits.filter((s) => s.status === null);
  assert.equal(unanswered.length, 0, 'kaskad waited for every response before unbinding');
  const beforeRestart = smsc.submits.length;

  await k.restart();
  const want = new Set(acked.keys());
  const okCount = new Map();
  const allCount = new Map();
  const count = () => {
    okCount.clear();
    allCount.clear();
    for (const s of smsc.submits) {
      const m = /^term n=(\d+)$/.exec(s.text);
      if (!m) continue;
      const i = Number(m[1]);
      allCount.set(i, (allCount.get(i) ?? 0) + 1);
      if (s.status === 0) okCount.set(i, (okCount.get(i) ?? 0) + 1);
    }
    let missing = 0;
    for (const i of want) if (!okCount.has(i)) missing++;
    return missing;
  };
  await waitUntil(() => count() === 0, 'every acknowledged message submitted after the restart', 60000, 100)
    .catch((e) => { e.message += ` (${count()} missing)`; throw e; });
  // Settle: nothing more should come.
  await waitUntil(async () => {
    const r = await k.route('main');
    return r && r.state.inflight === 0 && r.state.queued === 0;
  }, 'the route to go idle', 20000, 100);
  count();
  const twice = [...okCount.entries()].filter(([, c]) => c > 1).map(([i]) => i);
  const resent = [...allCount.entries()].filter(([, c]) => c > 1).length;
  log(`after restart: ${smsc.submits.length - beforeRestart} more submits; acknowledged ${want.size}; ` +
    `accepted by the SMSC twice ${twice.length}; submitted more than once ${resent}`);
  assert.equal(twice.length, 0, `messages accepted twice by the SMSC: n=${twice.slice(0, 10).join(',')}`);
  for (const i of want) assert.equal(okCount.get(i), 1, `message n=${i} accepted exactly once`);

  // Statuses survived the restart.
  const ids = [...acked.values()];
  for (const id of ids.filter((_, j) => j % Math.ceil(ids.length / 20) === 0)) {
    await k.waitStatus(key, id, 'sent', 15000);
  }
  await finish();
  assert.ok(smsc.unbinds.length >= 2, 'unbind on the second shutdown too');
});

test('a receipt that comes while kaskad unbinds at SIGTERM is refused for later, not a crash', { timeout: 60000 }, async (t) => {
  // The SMSC answers the unbind after 1.5 s and sends the receipt 300 ms
  // after the submit: it arrives on a session whose route is closing.
  const { k, smsc, key } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 300, unbindDelayMs: 1500 },
  });
  const m = await k.send(key, { to: '79161234599', text: 'receipt during unbind' });
  await waitUntil(() => smsc.submits.length === 1 && smsc.submits[0].status === 0, 'the submit to be answered');
  await k.stopClean(20000);
  assert.equal(smsc.unbinds.length, 1);
  await waitUntil(() => smsc.receipts.length === 1, 'the receipt to be sent', 5000);
  assert.notEqual(smsc.receipts[0].status, 0, 'kaskad asked for the receipt again later');
  // After the restart the message is there, sent (the SMSC delivers the receipt again later).
  await k.restart(30000);
  const x = await k.message(key, m.id);
  assert.equal(x.status, 'sent');
});
