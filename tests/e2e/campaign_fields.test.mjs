// Campaign fields end to end: an audience given as a saved segment, a cascade
// given by the name of a saved one, and the campaign's sender. Over an
// imported base of 30 contacts, a segment of those in one city, a saved
// cascade of a single SMS step and a campaign with the segment, that cascade
// and a sender of the account's own: exactly the segment's phones get an SMS,
// each from that sender, and the figures add up. A cascade name that is not
// saved is refused when the campaign is saved; a segment name that is not
// saved is refused by the dry run; a sender the account may not use leaves
// every recipient rejected with the code.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { importList, waitCampaign, allRecipients } from './lib/campaigns.mjs';

const N = 30;
const phoneOf = (i) => `7916${String(3000000 + i).padStart(7, '0')}`;
const cityOf = (i) => (i % 3 === 0 ? 'Казань' : i % 3 === 1 ? 'Омск' : 'Самара');
const KAZAN = Array.from({ length: N }, (_, i) => i).filter((i) => cityOf(i) === 'Казань').map(phoneOf);

function base() {
  const rows = ['phone,name,city,consent'];
  for (let i = 0; i < N; i++) rows.push(`${phoneOf(i)},Имя${i},${cityOf(i)},yes`);
  return rows.join('\n') + '\n';
}

/** A daemon with an account that may send as KASKAD and SHOP, the base, a
 * template, the segment `kazan` and the saved cascade `sms-only`. */
async function world(t) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 }, args: ['--test_clock', 'on'] });
  const { k } = env;
  env.acct = await k.createAccount('shop', { senders: ['KASKAD', 'SHOP'] });
  const key = env.key = env.acct.key;
  await importList(k, key, 'base', base());
  await k.call('PUT', '/v1/templates/hello', { key, body: { text: '{{name}}, скидка в {{city}}' } }, 200);
  const seg = await k.call('PUT', '/v1/segments/kazan', { key, body: { filter: "city = 'Казань'" } }, 200);
  assert.equal(seg.count, KAZAN.length);
  await k.call('PUT', '/v1/cascades/sms-only', { key, body: { steps: [{ channel: 'sms' }] } }, [200, 201]);
  return env;
}

test('campaign fields: a segment audience, a saved cascade and a sender; exactly the segment gets SMS from that sender', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  const spec = { audience: { segment: 'kazan' }, template: 'hello', cascade: 'sms-only', sender: 'SHOP', class: 'service' };
  const put = await k.call('PUT', '/v1/campaigns/kazan-sale', { key, body: spec }, 200);
  assert.equal(put.status, 'draft');
  const got = await k.call('GET', '/v1/campaigns/kazan-sale', { key }, 200);
  assert.deepEqual(got.audience, { segment: 'kazan' });
  assert.equal(got.cascade, 'sms-only');
  assert.equal(got.sender, 'SHOP');

  await k.call('POST', '/v1/campaigns/kazan-sale/start', { key }, 200);
  const done = await waitCampaign(k, key, 'kazan-sale', 'done');
  assert.equal(done.recipients, KAZAN.length);
  assert.equal(done.by_recipient_status.created, KAZAN.length);
  assert.equal(done.by_recipient_status.planned, 0);
  assert.equal(done.messages, KAZAN.length);

  const all = await allRecipients(k, key, 'kazan-sale');
  assert.deepEqual(all.map((x) => x.phone).sort(), [...KAZAN].sort(), 'the segment, every one once');
  assert.ok(all.every((x) => x.status === 'created' && x.message), JSON.stringify(all[0]));
  // Each message is the campaign's: its sender, and the saved cascade's one SMS step.
  const m = await k.message(key, all[0].message);
  assert.equal(m.campaign, 'kazan-sale');
  assert.equal(m.sender, 'SHOP');

  await k.settled(key, all.map((x) => x.message));
  assert.deepEqual(smsc.submits.map((s) => s.destination_addr).sort(), [...KAZAN].sort(),
    'exactly the segment\'s phones got an SMS, each one');
  for (const s of smsc.submits) {
    assert.equal(s.source_addr, 'SHOP', `the SMS to ${s.destination_addr} is from the campaign's sender`);
    assert.match(s.text, /Казань/);
  }
  const rep = await k.call('GET', '/v1/campaigns/kazan-sale/report', { key }, 200);
  assert.equal(rep.messages, KAZAN.length, JSON.stringify(rep));
  assert.equal(rep.by_recipient_status.created, KAZAN.length);
  const byStatus = Object.values(rep.by_status).reduce((a, b) => a + b, 0);
  assert.equal(byStatus, rep.messages, 'the messages by status add up to the messages');
  await finish();
});

test('campaign fields: an unknown cascade is refused at PUT, an unknown segment by the dry run; a sender not the account\'s rejects each recipient', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  // A cascade by a name not saved: refused when the campaign is saved.
  let r = await k.request('PUT', '/v1/campaigns/c1', { key, body: { audience: { segment: 'kazan' }, template: 'hello', cascade: 'nope', class: 'service' } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'unknown_cascade');
  assert.equal((await k.request('GET', '/v1/campaigns/c1', { key })).status, 404, 'nothing saved');
  // Another account's cascade of the same name is not this account's.
  const other = await k.createAccount();
  await k.call('PUT', '/v1/cascades/theirs', { key: other.key, body: { steps: [{ channel: 'sms' }] } }, [200, 201]);
  r = await k.request('PUT', '/v1/campaigns/c1', { key, body: { audience: { list: 'base' }, template: 'hello', cascade: 'theirs', class: 'service' } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'unknown_cascade');

  // A segment by a name not saved: the audience is read at start, not at
  // PUT, so the draft is saved; the dry run, which reads it, refuses it.
  await k.call('PUT', '/v1/campaigns/c2', { key, body: { audience: { segment: 'nope' }, template: 'hello', class: 'service' } }, 200);
  r = await k.request('POST', '/v1/campaigns/c2/dry-run', { key });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'unknown_audience');
  // Another account's segment is not this account's either.
  await importList(k, other.key, 'theirs', 'phone,city\n79163330001,Казань\n');
  await k.call('PUT', '/v1/segments/their-seg', { key: other.key, body: { filter: "city = 'Казань'" } }, 200);
  await k.call('PUT', '/v1/campaigns/c3', { key, body: { audience: { segment: 'their-seg' }, template: 'hello', class: 'service' } }, 200);
  r = await k.request('POST', '/v1/campaigns/c3/dry-run', { key });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'unknown_audience');

  // A sender of the right form the account may not use: saved (the form is
  // checked), but each recipient's message is refused as a send would be.
  r = await k.request('PUT', '/v1/campaigns/c4', { key, body: { audience: { segment: 'kazan' }, template: 'hello', sender: 'bad sender!!', class: 'service' } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'invalid_sender');
  await k.call('PUT', '/v1/campaigns/c4', { key, body: { audience: { segment: 'kazan' }, template: 'hello', cascade: 'sms-only', sender: 'OTHER', class: 'service' } }, 200);
  await k.call('POST', '/v1/campaigns/c4/start', { key }, 200);
  const done = await waitCampaign(k, key, 'c4', 'done');
  assert.equal(done.recipients, KAZAN.length);
  assert.equal(done.by_recipient_status.rejected, KAZAN.length, JSON.stringify(done));
  assert.equal(done.by_recipient_status.created, 0);
  assert.equal(done.messages, 0);
  const all = await allRecipients(k, key, 'c4');
  assert.ok(all.every((x) => x.status === 'rejected' && x.reason === 'sender_not_allowed' && !x.message), JSON.stringify(all[0]));
  await k.settled(key);
  assert.equal(smsc.submits.length, 0, 'nothing sent');
  await finish();
});
