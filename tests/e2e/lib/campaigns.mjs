// Helpers of the campaign tests: importing a base and waiting for a
// campaign's status.
import assert from 'node:assert/strict';
import { waitUntil } from './harness.mjs';

/** Imports csv into list and waits for the import to end done; the import. */
export async function importList(k, key, list, csv) {
  const r = await k.request('POST', `/v1/contacts/import?list=${list}&country=RU`, {
    key, body: Buffer.from(csv), headers: { 'content-type': 'text/csv' },
  });
  assert.equal(r.status, 202, r.text);
  let imp;
  await waitUntil(async () => {
    imp = (await k.request('GET', `/v1/imports/${r.json.id}`, { key })).json;
    return imp.status !== 'running';
  }, 'the import to end', 60000, 50);
  assert.equal(imp.status, 'done', JSON.stringify(imp));
  return imp;
}

/** Waits for campaign name to be status; its last GET in the error. */
export async function waitCampaign(k, key, name, status, ms = 60000) {
  let last;
  try {
    return await waitUntil(async () => {
      last = await k.call('GET', `/v1/campaigns/${name}`, { key }, 200);
      return last.status === status ? last : null;
    }, `campaign ${name} to be ${status}`, ms, 100);
  } catch (e) {
    e.message += `; last seen: ${JSON.stringify(last)}`;
    throw e;
  }
}

/** All recipients of campaign name (of status, when given), page by page. */
export async function allRecipients(k, key, name, status) {
  const out = [];
  let cursor = null;
  for (;;) {
    const q = new URLSearchParams({ limit: '200', ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) });
    const r = await k.call('GET', `/v1/campaigns/${name}/recipients?${q}`, { key }, 200);
    out.push(...r.recipients);
    if (!r.next_cursor) return out;
    cursor = r.next_cursor;
  }
}
