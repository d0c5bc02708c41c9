// A campaign's report and its per-recipient export: a campaign over given
// phones (those that are contacts bring their fields) runs to the end; the
// report's per-channel and per-variant figures add up to the recipients
// (each in exactly one final state), and recipients.csv has one row per
// recipient with a formula-like cell neutralised.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil } from './lib/harness.mjs';
import { importList, waitCampaign } from './lib/campaigns.mjs';

const CONTACTS = [
  ['79163000001', 'Анна', 'Омск'],
  ['79163000002', '=HYPERLINK("x.example","click")', 'Казань'],   // no http://: not a tracked link
  ['79163000003', 'Пётр', 'Омск'],
  ['79163000004', 'Ирина', 'Казань'],
  ['79163000005', '+Олег', 'Омск'],
];
const STRANGERS = ['79163000098', '79163000099'];   // not contacts: no name, no city

/** Splits CSV text into rows of cells (quotes, doubled quotes, CRLF-free). */
function parseCsv(text) {
  const rows = [];
  let row = [], cell = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') q = false;
      else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; }
    else cell += c;
  }
  return rows;
}

test('campaign report per channel and variant adds up; recipients.csv one row each', { timeout: 120000 }, async (t) => {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 } });
  const { k, key, smsc, finish } = env;
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.5 } } }, 200);
  await k.call('PUT', '/v1/templates/a', { key, body: { text: '{{name}}, скидка 10% в {{city}}' } }, 200);
  await k.call('PUT', '/v1/templates/b', { key, body: { text: '{{name}}, скидка 15%' } }, 200);
  const csv = ['phone,name,city']
    .concat(CONTACTS.map(([p, n, c]) => `${p},"${n.replace(/"/g, '""')}",${c}`)).join('\n') + '\n';
  await importList(k, key, 'few', csv);

  const phones = CONTACTS.map((c) => c[0]).concat(STRANGERS);
  await k.call('PUT', '/v1/campaigns/mix', { key, body: {
    audience: { phones }, variants: [{ template: 'a', share: 50 }, { template: 'b', share: 50 }], class: 'service',
  } }, 200);
  // A campaign with no recipient yet: an empty report and a CSV of its header alone.
  const empty = await k.call('GET', '/v1/campaigns/mix/report', { key }, 200);
  assert.equal(empty.recipients, 0);
  assert.equal(empty.messages, 0);
  assert.deepEqual(empty.by_variant.map((v) => v.template), ['a', 'b']);
  let r = await k.request('GET', '/v1/campaigns/mix/recipients.csv', { key });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'phone,name,variant,channel,status,reason,planned_at,created_at,final_at,cost,clicks,message\n');
  assert.equal((await k.request('GET', '/v1/campaigns/nothing/recipients.csv', { key })).status, 404);
  assert.equal((await k.request('GET', '/v1/campaigns/no%20pe/recipients.csv', { key })).status, 422);

  await k.call('POST', '/v1/campaigns/mix/start', { key }, 200);
  await waitCampaign(k, key, 'mix', 'done');
  const all = (await k.call('GET', '/v1/campaigns/mix/recipients?limit=200', { key }, 200)).recipients;
  assert.equal(all.length, phones.length);
  // The contacts' fields filled the templates; the strangers had none.
  for (const x of all) {
    if (STRANGERS.includes(x.phone)) {
      assert.equal(x.status, 'rejected');
      assert.equal(x.reason, 'missing_variable');
    } else {
      assert.equal(x.status, 'created', JSON.stringify(x));
    }
  }
  const made = all.filter((x) => x.message).map((x) => x.message);
  await k.settled(key, made);
  const first = smsc.submits.find((x) => x.destination_addr.endsWith(CONTACTS[0][0]));
  assert.match(first.text, /^Анна, скидка/);

  const rep = await k.call('GET', '/v1/campaigns/mix/report', { key }, 200);
  assert.equal(rep.recipients, phones.length);
  assert.deepEqual(rep.by_recipient_status, { created: CONTACTS.length, rejected: STRANGERS.length });
  assert.equal(rep.messages, CONTACTS.length);
  assert.deepEqual(rep.by_status, { delivered: CONTACTS.length });
  assert.deepEqual(rep.channels, {
    sms: { messages: 5, sent: 5, delivered: 5, read: 0, failed: 0, expired: 0, opted_out: 0, cost: 12.5,
      sms_only_cost: 12.5, savings: 0, delivered_twice: 0 },
  });
  assert.equal(rep.cost, 12.5);
  // Per variant: the recipients of each as the recipients' list shows them,
  // and every recipient in exactly one final state.
  assert.equal(rep.by_variant.length, 2);
  let recipients = 0, delivered = 0;
  for (const v of rep.by_variant) {
    const mine = all.filter((x) => x.variant === v.variant);
    assert.equal(v.recipients, mine.length);
    const states = Object.values(v.by_recipient_status).reduce((a, b) => a + b, 0);
    assert.equal(states, v.recipients);
    assert.equal(v.delivered + (v.by_recipient_status.rejected || 0), v.recipients);
    recipients += v.recipients;
    delivered += v.delivered;
  }
  assert.equal(recipients, phones.length);
  assert.equal(delivered, rep.channels.sms.delivered);

  r = await k.request('GET', '/v1/campaigns/mix/recipients.csv', { key });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/csv/);
  const rows = parseCsv(r.text);
  assert.deepEqual(rows[0], ['phone', 'name', 'variant', 'channel', 'status', 'reason', 'planned_at',
    'created_at', 'final_at', 'cost', 'clicks', 'message']);
  assert.equal(rows.length - 1, phones.length, 'one row per recipient');
  const byPhone = new Map(rows.slice(1).map((c) => [c[0], c]));
  for (const x of all) {
    const c = byPhone.get(x.phone);
    assert.ok(c, x.phone);
    assert.equal(c[2], String(x.variant));
    assert.equal(c[11], x.message || '');
    assert.equal(c[10], '0');
    if (x.message) {
      assert.equal(c[3], 'sms');
      assert.equal(c[4], 'delivered');
      assert.equal(c[9], '2.5');
      assert.ok(c[7] && c[8], 'created and final times');
    } else {
      assert.deepEqual([c[3], c[4], c[5], c[9]], ['', 'rejected', 'missing_variable', '0']);
    }
  }
  assert.equal(byPhone.get(CONTACTS[0][0])[1], 'Анна');
  // Cells a spreadsheet would run as a formula are prefixed with '.
  assert.equal(byPhone.get(CONTACTS[1][0])[1], `'${CONTACTS[1][1]}`);
  assert.equal(byPhone.get(CONTACTS[4][0])[1], "'+Олег");
  assert.ok(r.text.includes(`"'=HYPERLINK(""x.example"",""click"")"`), r.text);
  await finish();
});

test('campaign recipients refused for no route are tried again: made once a route is back, rejected after the tries', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 }, args: ['--test_clock', 'on'] });
  const shift = (by) => k.call('POST', '/v1/test/clock', { body: { shift: by } }, 200);
  const rcpts = async (name) => (await k.call('GET', `/v1/campaigns/${name}/recipients?limit=200`, { key }, 200)).recipients;
  await k.call('PUT', '/v1/templates/plain', { key, body: { text: 'Скидка 10% до пятницы' } }, 200);
  const del = await k.request('DELETE', '/v1/routes/main');
  assert.ok([200, 204].includes(del.status), del.text);
  await smsc.waitFor(() => smsc.boundSessions().length === 0, 'the session to close');

  // No route and none coming: tried again with longer waits, then rejected.
  await k.call('PUT', '/v1/campaigns/never', { key, body: { audience: { phones: ['79165000001'] }, template: 'plain', class: 'service' } }, 200);
  await k.call('POST', '/v1/campaigns/never/start', { key }, 200);
  await waitUntil(async () => (await rcpts('never'))[0]?.reason === 'no_route', 'a first refusal', 20000, 100);
  assert.equal((await rcpts('never'))[0].status, 'planned');
  const done = await waitUntil(async () => {
    const [x] = await rcpts('never');
    if (x.status === 'planned') await shift('5m');
    return x.status !== 'planned' ? x : null;
  }, 'the tries to run out', 60000, 300);
  assert.deepEqual([done.status, done.reason, done.message], ['rejected', 'no_route', null]);
  await waitCampaign(k, key, 'never', 'done');

  // A route that comes back: the recipients refused meanwhile get their messages.
  await k.call('PUT', '/v1/campaigns/later', { key, body: { audience: { phones: ['79165000002', '79165000003'] }, template: 'plain', class: 'service' } }, 200);
  await k.call('POST', '/v1/campaigns/later/start', { key }, 200);
  await waitUntil(async () => (await rcpts('later')).every((x) => x.reason === 'no_route' && x.status === 'planned') || null,
    'both refused for no route', 20000, 100);
  await k.putRoute('main', smsc.routeConfig());
  await smsc.waitFor(() => smsc.boundSessions().length >= 1, 'kaskad to bind again');
  await shift('1m');
  await waitCampaign(k, key, 'later', 'done');
  const made = await rcpts('later');
  assert.deepEqual(made.map((x) => x.status), ['created', 'created']);
  await k.settled(key, made.map((x) => x.message));
  const rep = await k.call('GET', '/v1/campaigns/later/report', { key }, 200);
  assert.deepEqual(rep.by_recipient_status, { created: 2 });
  assert.equal(rep.channels.sms.delivered, 2);
  await finish();
});
