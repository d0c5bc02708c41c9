// Helpers of the money end-to-end tests: amounts in kopecks, an account made
// prepaid with a top-up, its transaction log checked against its balance.
import assert from 'node:assert/strict';
import { waitUntil } from './harness.mjs';

/** Amounts are compared in kopecks: JSON carries currency units. */
export const kop = (x) => Math.round(x * 100);

/** The account of key as GET /v1/account shows it. */
export const account = (k, key) => k.call('GET', '/v1/account', { key }, 200);

/** Makes acct prepaid (extra: more of the PATCH) and tops it up by amount (0: none). */
export async function prepaid(k, acct, amount, extra = {}, ref = 'invoice-1') {
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { billing: 'prepaid', ...extra } }, 200);
  if (amount) {
    const r = await k.call('POST', `/v1/accounts/${acct.id}/balance`, { body: { amount, ref } }, 200);
    assert.equal(r.transaction.kind, 'topup');
  }
}

/** Every row of the log, oldest first. */
export async function transactions(k, key) {
  const rows = [];
  let cursor = null;
  do {
    const page = await k.call('GET', `/v1/account/transactions?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { key }, 200);
    rows.push(...page.transactions);
    cursor = page.next_cursor;
  } while (cursor);
  return rows.reverse();
}

/** The log adds up to the balance, each row's balance is the running sum. */
export async function logAddsUp(k, key) {
  const acc = await account(k, key);
  const rows = await transactions(k, key);
  let sum = 0;
  for (const r of rows) {
    sum += kop(r.amount);
    assert.equal(kop(r.balance), sum, `running balance at ${JSON.stringify(r)}`);
  }
  assert.equal(sum, kop(acc.balance), 'the log adds up to the balance');
  return { acc, rows };
}

/** Waits until nothing is held for the account any more. */
export const unheld = (k, key) => waitUntil(async () => {
  const a = await account(k, key);
  return kop(a.reserved) === 0 ? a : null;
}, 'the holds to be released', 60000, 50);
