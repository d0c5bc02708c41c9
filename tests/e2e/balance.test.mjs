// Balances end to end: a prepaid account's messages are held at accept,
// charged per segment when the SMSC accepts them, given back when the SMSC
// refuses them for good; 1,000 concurrent sends against a balance for 500;
// a postpaid account is never refused; after kill -9 while charging, the
// balance and the transaction log still add up. kaskad and an independent
// SMSC (npm smpp), on either store.
import test from 'node:test';
import assert from 'node:assert/strict';
import { E2E_STORE, Kaskad, setup } from './lib/harness.mjs';
import { STATUS } from './lib/smsc.mjs';
import { account, kop, logAddsUp, prepaid, transactions, unheld } from './lib/money.mjs';

test('a new account is postpaid and never refused for money', async (t) => {
  const { k, key, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.5 } } }, 200);
  const a = await account(k, key);
  assert.equal(a.billing, 'postpaid');
  assert.equal(a.balance, 0);
  const r = await k.send(key, { to: '79161230001', text: 'postpaid', sender: 'KASKAD' });
  await k.waitStatus(key, r.id, 'delivered');
  const after = await account(k, key);
  assert.equal(after.balance, 0);
  assert.deepEqual(await transactions(k, key), []);
  // validation
  for (const [body, code] of [[{ billing: 'free' }, 'invalid_billing'], [{ credit_limit: -1 }, 'invalid_credit_limit']]) {
    const x = await k.request('PATCH', `/v1/accounts/${a.id}`, { body });
    assert.equal(x.status, 422);
    assert.equal(x.json.error.code, code);
  }
  for (const body of [{ amount: 0 }, { amount: -5 }, { amount: 'ten' }, {}]) {
    const x = await k.request('POST', `/v1/accounts/${a.id}/balance`, { body });
    assert.equal(x.status, 422);
    assert.equal(x.json.error.code, 'invalid_amount');
  }
  const own = await k.request('POST', `/v1/accounts/${a.id}/balance`, { key, body: { amount: 5 } });
  assert.equal(own.status, 403, 'an account cannot top itself up');
  await finish();
});

test('charged per segment; a permanent SMSC failure costs nothing; refused when it does not cover', async (t) => {
  const { k, smsc, key, acct, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.5 } } }, 200);
  await prepaid(k, acct, 10);
  // 71 Cyrillic characters: two segments, 5.00
  const two = 'Ваш заказ №12345 собран и передан в доставку. Курьер позвонит заранее!!';
  const r = await k.send(key, { to: '79161230002', text: two, sender: 'KASKAD' });
  assert.equal(r.segments, 2);
  await k.waitStatus(key, r.id, 'delivered');
  let a = await unheld(k, key);
  assert.equal(kop(a.balance), 500);
  let { rows } = await logAddsUp(k, key);
  assert.deepEqual(rows.map((x) => [x.kind, kop(x.amount)]), [['topup', 1000], ['charge', -500]]);
  assert.equal(rows[1].message, r.id);
  assert.equal(rows[1].channel, 'sms');
  assert.equal(rows[0].ref, 'invoice-1');

  // The SMSC refuses it for good: held while it goes, then given back.
  smsc.forDest('79161230003', { status: STATUS.ESME_RINVDSTADR });
  const f = await k.send(key, { to: '79161230003', text: 'no such number', sender: 'KASKAD' });
  await k.waitStatus(key, f.id, 'failed');
  a = await unheld(k, key);
  assert.equal(kop(a.balance), 500);
  assert.equal(kop(a.available), 500);
  ({ rows } = await logAddsUp(k, key));
  assert.equal(rows.length, 2, 'nothing charged for the refused message');

  // Three segments (7.50) do not fit in 5.00: refused, nothing stored.
  const three = two + two;
  const no = await k.request('POST', '/v1/messages', { key, body: { to: '79161230004', text: three, sender: 'KASKAD' } });
  assert.equal(no.status, 422);
  assert.equal(no.json.error.code, 'insufficient_balance');
  // a credit limit lets it through
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { credit_limit: 2.5 } }, 200);
  const yes = await k.send(key, { to: '79161230004', text: three, sender: 'KASKAD' });
  await k.waitStatus(key, yes.id, 'delivered');
  a = await unheld(k, key);
  assert.equal(kop(a.balance), -250);
  assert.equal(kop(a.available), 0);
  assert.equal(a.billing, 'prepaid');
  const op = await k.call('GET', `/v1/accounts/${acct.id}`, {}, 200);
  assert.deepEqual([op.billing, kop(op.balance), kop(op.credit_limit)], ['prepaid', -250, 250]);
  await logAddsUp(k, key);
  await finish();
});

const OPEN = ['--max_conns_per_ip', '2000', '--rate_key', '0', '--rate_account', '0'];

/** 1,000 sends at once against a balance for 500, spread over the nodes. */
async function race(t, nodes) {
  const { k, key, acct, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD' }, route: { window: 50 }, args: OPEN,
  });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 1.37 } } }, 200);
  await prepaid(k, acct, 500 * 1.37);
  const ks = [k];
  for (let n = 1; n < nodes; n++) {
    // another node on the same database (its keys and routes come from it)
    const k2 = new Kaskad({ args: OPEN, adminKey: k.adminKey });
    k2.storeDb = k.storeDb;
    t.after(async () => {
      if (t.passed === false || process.env.KASKAD_E2E_VERBOSE) {
        for (const line of k2.allStderr.split('\n').slice(-30)) t.diagnostic(`  node 2: ${line}`);
      }
      await k2.stop();
      k2.storeDb = null;
      await k2.cleanup();
    });
    await k2.start();
    ks.push(k2);
  }
  const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => ks[i % ks.length].request('POST', '/v1/messages', {
    key, body: { to: `7916${String(2000000 + i)}`, text: `n=${i}`, sender: 'KASKAD' }, timeoutMs: 60000,
  })));
  const ok = results.filter((r) => r.status === 202);
  const refused = results.filter((r) => r.status === 422);
  const statuses = {};
  for (const r of results) statuses[`${r.status} ${r.json?.error?.code ?? ''}`] = (statuses[`${r.status} ${r.json?.error?.code ?? ''}`] ?? 0) + 1;
  assert.equal(ok.length, 500, JSON.stringify(statuses));
  assert.equal(refused.length, 500);
  for (const r of refused) assert.equal(r.json.error.code, 'insufficient_balance');
  let a = await account(k, key);
  assert.equal(kop(a.available), 0);
  a = await unheld(k, key);
  assert.equal(kop(a.balance), 0);
  const { rows } = await logAddsUp(k, key);
  const charges = rows.filter((x) => x.kind === 'charge');
  assert.equal(charges.length, 500);
  assert.deepEqual(new Set(charges.map((x) => x.message)), new Set(ok.map((r) => r.json.id)));
  // Two nodes take turns at the account's row: receipts may wait for it past
  // the SMSC's patience, which is not what this test is about.
  if (nodes === 1) await finish();
  else await k.stopClean();
}

test('1,000 concurrent sends against a balance for 500: exactly 500 accepted, balance exactly 0', { timeout: 180000 }, (t) => race(t, 1));

test('two nodes on one PostgreSQL: the holds add up across them', { timeout: 180000, skip: !E2E_STORE && 'PostgreSQL only' }, (t) => race(t, 2));

test('kill -9 while charging: after a restart the balance and the log add up', { timeout: 180000 }, async (t) => {
  const { k, smsc, key, acct, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 5, redeliver: true }, route: { window: 20 },
  });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 1 } } }, 200);
  await prepaid(k, acct, 400);
  const ids = [];
  for (let b = 0; b < 4; b++) {
    const messages = Array.from({ length: 100 }, (_, i) => ({ to: `7916${String(3000000 + b * 100 + i)}`, text: `k=${i}`, sender: 'KASKAD' }));
    const r = await k.call('POST', '/v1/messages/batch', { key, body: { messages } }, 202);
    for (const x of r.results) ids.push(x.id);
  }
  assert.equal(ids.length, 400);
  await smsc.waitFor(() => smsc.submits.length >= 100, 'some submits', 30000);
  await k.kill9();
  await k.restart();
  await smsc.waitFor(() => smsc.boundSessions().length >= 1, 'kaskad to bind again', 15000);
  const a = await unheld(k, key);
  const { rows } = await logAddsUp(k, key);
  const charged = new Set(rows.filter((x) => x.kind === 'charge').map((x) => x.message));
  assert.equal(rows.filter((x) => x.kind === 'charge').length, charged.size, 'no message charged twice');
  // every message went (each at most once charged), the balance is what they cost
  assert.equal(charged.size, 400);
  assert.equal(kop(a.balance), 0);
  await finish();
});
