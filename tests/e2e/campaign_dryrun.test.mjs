// A campaign's dry run: against a known audience (contacts with and
// without a VK id, and phones that are no contact), the recipients, the
// rejections by reason, the messages and segments per channel from the
// given or measured reach, the cost and the saving against SMS alone, and
// the planned finish; nothing is stored.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { importList, waitCampaign } from './lib/campaigns.mjs';

const CONTACTS = [
  ['79164000001', 'Анна', '101'],
  ['79164000002', 'Борис', '102'],
  ['79164000003', 'Вера', '103'],
  ['79164000004', 'Глеб', '104'],
  ['79164000005', 'Дина', ''],
  ['79164000006', 'Егор', ''],
];
const STRANGERS = ['79164000098', '79164000099'];

test('campaign dry run: recipients, rejections, channels, cost, saving and finish; nothing stored', { timeout: 120000 }, async (t) => {
  const { k, key, finish } = await setup(t, {});
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.5, vk: 0.5 } } }, 200);
  await k.call('PUT', '/v1/templates/hi', { key, body: { text: '{{name}}, привет' } }, 200);
  const csv = ['phone,name,vk_id'].concat(CONTACTS.map((c) => c.join(','))).join('\n') + '\n';
  await importList(k, key, 'few', csv);
  const phones = CONTACTS.map((c) => c[0]).concat(STRANGERS);
  await k.call('PUT', '/v1/campaigns/try', { key, body: {
    audience: { phones }, template: 'hi', class: 'service', rate_per_minute: 60,
    cascade: [{ channel: 'vk', wait: 'read', timeout: '1m' }, { channel: 'sms' }],
  } }, 200);

  assert.equal((await k.request('POST', '/v1/campaigns/none/dry-run', { key })).status, 404);
  let r = await k.request('POST', '/v1/campaigns/try/dry-run', { key, body: { reach: { vk: 2 } } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'invalid_reach');

  // Given reach: half of those VK can be tried on get it there.
  const d = await k.call('POST', '/v1/campaigns/try/dry-run', { key, body: { reach: { vk: 0.5 } } }, 200);
  assert.equal(d.recipients, 8);
  assert.equal(d.accepted, 6);
  assert.deepEqual(d.rejected, { missing_variable: 2 });
  assert.deepEqual(d.channels, {
    vk: { messages: 4, delivered: 2 },
    sms: { messages: 4, delivered: 4, segments: 4 },
  });
  assert.deepEqual(d.reach, { vk: { value: 0.5, source: 'given' } });
  assert.equal(d.cost, 12);           // 4 × 0.5 on VK + 4 × 2.5 by SMS
  assert.equal(d.sms_only_cost, 15);  // 6 × 2.5
  assert.equal(d.saving, 3);
  assert.deepEqual(d.deferred, { quiet_hours: 0, outside_window: 0 });
  // 60 a minute: the eighth a little over seven seconds after the first.
  const span = Date.parse(d.planned_finish_at) - Date.parse(d.planned_start_at);
  assert.ok(span >= 6000 && span <= 9000, `${d.planned_start_at} .. ${d.planned_finish_at}`);

  // Measured reach: no VK message yet, so none reached there.
  const m = await k.call('POST', '/v1/campaigns/try/dry-run', { key }, 200);
  assert.deepEqual(m.reach, { vk: { value: 0, source: 'measured' } });
  assert.deepEqual(m.channels.sms, { messages: 6, delivered: 6, segments: 6 });
  assert.equal(m.saving, -2);

  // Nothing stored: the campaign is a draft without recipients, no message made.
  const c = await k.call('GET', '/v1/campaigns/try', { key }, 200);
  assert.equal(c.status, 'draft');
  assert.equal(c.recipients, 0);
  assert.equal((await k.call('GET', '/v1/messages', { key }, 200)).messages.length, 0);

  // Started: no dry run any more.
  await k.call('POST', '/v1/campaigns/try/start', { key }, 200);
  r = await k.request('POST', '/v1/campaigns/try/dry-run', { key });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'not_draft');
  await finish();
});

test('campaign dry run: a tracked link counts at its real length, as the run sends it', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  // 50 Cyrillic characters and a short URL: one segment as written (63 of
  // 70), two once the URL is the recipient's {public_url}/r/{code}
  const text = 'Весенняя распродажа: скидки на всё до воскресенья ' + 'http://a.ru/s';
  await k.call('PUT', '/v1/templates/sale', { key, body: { text } }, 200);
  const phones = ['79164100001', '79164100002', '79164100003'];
  await k.call('PUT', '/v1/campaigns/tracked', { key, body: { audience: { phones }, template: 'sale', class: 'service' } }, 200);
  const d = await k.call('POST', '/v1/campaigns/tracked/dry-run', { key }, 200);
  assert.equal(d.accepted, 3);
  assert.deepEqual(d.channels.sms, { messages: 3, delivered: 3, segments: 6 });

  // The run sends what the dry run counted.
  await k.call('POST', '/v1/campaigns/tracked/start', { key }, 200);
  await waitCampaign(k, key, 'tracked', 'done');
  const list = (await k.call('GET', '/v1/messages?campaign=tracked', { key }, 200)).messages;
  assert.equal(list.length, 3);
  assert.equal(list.reduce((n, m) => n + m.segments, 0), d.channels.sms.segments);
  await smsc.waitFor(() => smsc.submits.length >= d.channels.sms.segments, 'every segment sent');
  assert.equal(smsc.submits.length, d.channels.sms.segments);
  await finish();
});

test('campaign dry runs: one at a time per account, two at once in all', { timeout: 120000 }, async (t) => {
  const { k, key, finish } = await setup(t, {});
  await k.call('PUT', '/v1/templates/hi', { key, body: { text: 'привет' } }, 200);
  // An audience large enough that a dry run is still going when the next asks.
  const phones = Array.from({ length: 2000 }, (_, i) => String(79165000000 + i));
  await k.call('PUT', '/v1/campaigns/big', { key, body: {
    audience: { phones }, template: 'hi', class: 'service', cascade: [{ channel: 'sms' }],
  } }, 200);
  const [a, b] = await Promise.all([
    k.request('POST', '/v1/campaigns/big/dry-run', { key }),
    k.request('POST', '/v1/campaigns/big/dry-run', { key }),
  ]);
  const codes = [a.status, b.status].sort();
  assert.deepEqual(codes, [200, 409]);
  const busy = a.status === 409 ? a : b;
  assert.equal(busy.json.error.code, 'dry_run_running');
  assert.equal((a.status === 200 ? a : b).json.recipients, 2000);
  // Once answered, the account may ask again.
  assert.equal((await k.call('POST', '/v1/campaigns/big/dry-run', { key }, 200)).recipients, 2000);
  // Three accounts at once: two run, the third is asked to come back.
  const others = [await k.createAccount(), await k.createAccount()];
  for (const o of others) {
    await k.call('PUT', '/v1/templates/hi', { key: o.key, body: { text: 'привет' } }, 200);
    await k.call('PUT', '/v1/campaigns/big', { key: o.key, body: {
      audience: { phones }, template: 'hi', class: 'service', cascade: [{ channel: 'sms' }],
    } }, 200);
  }
  const all = await Promise.all([key, others[0].key, others[1].key].map((x) =>
    k.request('POST', '/v1/campaigns/big/dry-run', { key: x })));
  assert.deepEqual(all.map((r) => r.status).sort(), [200, 200, 429]);
  assert.equal(all.find((r) => r.status === 429).json.error.code, 'dry_runs_busy');
  await finish();
});

test('campaign dry run: a recipient with an address for no step is rejected with no_address, as the run rejects it', { timeout: 120000 }, async (t) => {
  const { k, key, finish } = await setup(t, {});
  await k.call('PUT', '/v1/templates/hi', { key, body: { text: '{{name}}, привет' } }, 200);
  const csv = ['phone,name,vk_id'].concat(CONTACTS.map((c) => c.join(','))).join('\n') + '\n';
  await importList(k, key, 'few', csv);
  const noVk = CONTACTS.filter((c) => !c[2]).map((c) => c[0]).sort();
  // VK alone: a contact without a VK id has nowhere to get it
  await k.call('PUT', '/v1/campaigns/vkonly', { key, body: {
    audience: { list: 'few' }, template: 'hi', class: 'service', cascade: [{ channel: 'vk' }],
  } }, 200);
  const d = await k.call('POST', '/v1/campaigns/vkonly/dry-run', { key, body: { reach: { vk: 1 } } }, 200);
  assert.equal(d.recipients, CONTACTS.length);
  assert.equal(d.accepted, CONTACTS.length - noVk.length);
  assert.deepEqual(d.rejected, { no_address: noVk.length });
  assert.deepEqual(d.channels, { vk: { messages: 4, delivered: 4 } });

  // The run rejects the same recipients with the same code.
  await k.call('POST', '/v1/campaigns/vkonly/start', { key }, 200);
  const done = await waitCampaign(k, key, 'vkonly', 'done');
  assert.equal(done.by_recipient_status.rejected, noVk.length);
  assert.equal(done.by_recipient_status.created, d.accepted);
  const all = (await k.call('GET', '/v1/campaigns/vkonly/recipients?limit=100', { key }, 200)).recipients;
  const rejected = all.filter((x) => x.status === 'rejected');
  assert.deepEqual(rejected.map((x) => x.phone).sort(), noVk);
  assert.ok(rejected.every((x) => x.reason === 'no_address'), JSON.stringify(rejected));

  // A message by the API: the same refusal, nothing stored.
  const r = await k.request('POST', '/v1/messages', { key, body: { to: noVk[0], text: 'привет', cascade: [{ channel: 'vk' }] } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'no_address');
  await finish();
});
