// Money on routes end to end: a prepaid account's SMS is held at the price
// of the route it will take (per operator and lane, not the price table) and
// charged as much, and its sms_only_cost (and a campaign dry run's) is at
// that price too; a charged SMS the SMSC then rejects (receipt REJECTD) is
// refunded once and then costs 0 (the message, the campaign report and
// recipients.csv add up to the log) while an undeliverable one stays billed; a campaign against a
// balance for fewer recipients than its audience makes exactly as many
// messages as the balance pays, the rest rejected insufficient_balance; a
// messenger that fails after accepting a message gives its charge back; an
// SMS is held at the most it can cost (the dearest route it can fail over
// to), so one that fails over is charged in full and the balance never goes
// below zero, and a charge above its hold (prices raised after accept) is
// taken at the hold and counted.
// kaskad and independent SMSCs (npm smpp), on either store.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { metricSum, setup, waitUntil } from './lib/harness.mjs';
import { APPS, Sim, pointChannelsAtSim } from './lib/sim.mjs';
import { account, kop, logAddsUp, prepaid, unheld } from './lib/money.mjs';
import { MEGAFON, MEGAFON_PHONE, MTS, MTS_PHONE, twoRoutes } from './lib/routes.mjs';

// 71 Cyrillic characters: two segments
const TWO = 'Ваш заказ №12345 собран и передан в доставку. Курьер позвонит заранее!!';

test('held at the price of the route the SMS takes for its operator, charged as much', async (t) => {
  // a: cheap for МТС, dear for the rest; b: cheaper for МегаФон
  const { k, smscB, acct, key } = await twoRoutes(t, {
    smsc: { autoReceipt: 'DELIVRD' },
    a: { prices: { default: 3.0, operators: { [MTS]: 1.5 } } },
    b: { prices: { default: 2.0, operators: { [MEGAFON]: 1.75 } } },
  });
  // The price table says otherwise: it is not what an SMS on a priced route costs.
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 9.99 } } }, 200);
  // A campaign's dry run prices each recipient's SMS on its route: МТС on a
  // at 1.50, МегаФон on b at 1.75, two segments each.
  const csv = `phone,name\n79161234567,А\n${MEGAFON_PHONE},Б\n`;
  const imp = await k.request('POST', '/v1/contacts/import?list=two&country=RU', {
    key, body: Buffer.from(csv), headers: { 'content-type': 'text/csv' },
  });
  assert.equal(imp.status, 202, imp.text);
  await waitUntil(async () => (await k.call('GET', `/v1/imports/${imp.json.id}`, { key }, 200)).status === 'done',
    'the import', 60000, 50);
  await k.call('PUT', '/v1/templates/two', { key, body: { text: TWO } }, 200);
  await k.call('PUT', '/v1/campaigns/two', { key, body: { audience: { list: 'two' }, template: 'two', class: 'transactional' } }, 200);
  const dry = await k.call('POST', '/v1/campaigns/two/dry-run', { key }, 200);
  assert.equal(dry.accepted, 2, JSON.stringify(dry));
  assert.deepEqual([kop(dry.cost), kop(dry.sms_only_cost), dry.saving], [650, 650, 0], JSON.stringify(dry));
  await prepaid(k, acct, 10);

  // Route b answers late: the hold is seen while the message waits for it.
  // It is the most the SMS can cost: route a (3.00 for МегаФон) may take it
  // should b go down.
  smscB.forDest(MEGAFON_PHONE, { status: 0, delayMs: 1500 });
  const m = await k.send(key, { to: MEGAFON_PHONE, text: TWO, sender: 'KASKAD', class: 'transactional', campaign: 'routes' });
  assert.equal(m.segments, 2);
  const held = await account(k, key);
  assert.equal(kop(held.reserved), 600, 'held: 2 segments at the dearest route\'s МегаФон price');
  assert.equal(kop(held.available), 400);
  const done = await k.waitStatus(key, m.id, 'delivered');
  assert.equal(done.attempts[0].route, 'b');
  assert.equal(done.attempts[0].price, 1.75);
  // What SMS alone would cost: on the route it takes, not at the table's 9.99.
  assert.equal(kop(done.sms_only_cost), 350);
  const report = await k.call('GET', '/v1/campaigns/routes/report', { key }, 200);
  assert.deepEqual([kop(report.cost), kop(report.sms_only_cost), report.savings], [350, 350, 0]);
  const a = await unheld(k, key);
  assert.equal(kop(a.balance), 650, 'charged what was held');
  const { rows } = await logAddsUp(k, key);
  assert.deepEqual(rows.map((x) => [x.kind, kop(x.amount)]), [['topup', 1000], ['charge', -350]]);

  // Six segments at 1.75 (10.50) do not fit in 6.50 though the table's price
  // is not looked at; three segments to МТС, held at b's 2.00 (6.00), do,
  // and go by route a at 1.50 (4.50).
  const r = await k.request('POST', '/v1/messages', { key, body: { to: MEGAFON_PHONE, text: TWO + TWO + TWO, sender: 'KASKAD' } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'insufficient_balance');
  const three = await k.send(key, { to: '79161234567', text: TWO + TWO, sender: 'KASKAD' });
  assert.equal(three.segments, 3);
  const sent = await k.waitStatus(key, three.id, 'delivered');
  assert.equal(sent.attempts[0].route, 'a');
  const b = await unheld(k, key);
  assert.equal(kop(b.balance), 200);
  await logAddsUp(k, key);
  await k.stopClean();
});

test('a charged SMS the SMSC then rejects (REJECTD) is refunded once; UNDELIV stays billed', async (t) => {
  const { k, smsc, key, acct, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.5 } } }, 200);
  await prepaid(k, acct, 10);
  const rejectd = { status: 0, receipt: 'REJECTD', receiptDelayMs: 300 };
  smsc.forDest('79161230011', rejectd, rejectd);
  const rej = await k.send(key, { to: '79161230011', text: TWO, sender: 'KASKAD' });
  const failed = await k.waitStatus(key, rej.id, 'failed');
  assert.match(failed.attempts[0].error ?? failed.error?.message ?? '', /REJECTD/);
  let a = await unheld(k, key);
  assert.equal(kop(a.balance), 1000, 'the balance is back');
  let { rows } = await logAddsUp(k, key);
  assert.deepEqual(rows.map((x) => [x.kind, kop(x.amount), x.message]),
    [['topup', 1000, null], ['charge', -500, rej.id], ['refund', 500, rej.id]]);
  assert.equal(rows[2].channel, 'sms');

  // The same receipt again (an SMSC that repeats itself) refunds nothing more.
  const sub = smsc.submits.find((s) => s.destination_addr === '79161230011');
  await smsc.sendReceipt(sub, 'REJECTD');
  await new Promise((r) => setTimeout(r, 500));
  ({ rows } = await logAddsUp(k, key));
  assert.equal(rows.filter((x) => x.kind === 'refund').length, 1, 'refunded once');
  // What it shows as its cost is what was finally charged: nothing.
  const shown = await k.message(key, rej.id);
  assert.equal(shown.cost, 0, JSON.stringify(shown));
  assert.equal(shown.attempts[0].cost, 0);

  smsc.forDest('79161230012', { status: 0, receipt: 'UNDELIV' });
  const und = await k.send(key, { to: '79161230012', text: 'undeliverable', sender: 'KASKAD' });
  await k.waitStatus(key, und.id, 'failed');
  a = await unheld(k, key);
  assert.equal(kop(a.balance), 750, 'an undeliverable SMS is billed');
  ({ rows } = await logAddsUp(k, key));
  assert.deepEqual(rows.map((x) => x.kind), ['topup', 'charge', 'refund', 'charge']);
  const billed = await k.message(key, und.id);
  assert.equal(kop(billed.cost), 250);
  assert.equal(kop(billed.attempts[0].cost), 250);
  await finish();
});

test('a campaign against a balance for fewer recipients: exactly as many messages as it pays', { timeout: 120000 }, async (t) => {
  const { k, key, acct, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' }, route: { window: 20 } });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 1.5 } } }, 200);
  await prepaid(k, acct, 1.5 * 7);
  const rows = ['phone,name,consent'];
  for (let i = 0; i < 12; i++) rows.push(`7916${String(4000000 + i)},Имя${i},yes`);
  const imp = await k.request('POST', '/v1/contacts/import?list=few&country=RU', {
    key, body: Buffer.from(rows.join('\n') + '\n'), headers: { 'content-type': 'text/csv' },
  });
  assert.equal(imp.status, 202, imp.text);
  await waitUntil(async () => (await k.call('GET', `/v1/imports/${imp.json.id}`, { key }, 200)).status === 'done',
    'the import', 60000, 50);
  await k.call('PUT', '/v1/templates/hi', { key, body: { text: '{{name}}, hello' } }, 200);
  await k.call('PUT', '/v1/campaigns/few', { key, body: { audience: { list: 'few' }, template: 'hi', class: 'service' } }, 200);
  await k.call('POST', '/v1/campaigns/few/start', { key }, 200);
  // direct sends race the campaign for the same money
  const direct = await Promise.all(Array.from({ length: 5 }, (_, i) => k.request('POST', '/v1/messages', {
    key, body: { to: `7916${String(4100000 + i)}`, text: 'direct', sender: 'KASKAD' },
  })));
  const directOk = direct.filter((r) => r.status === 202).length;
  for (const r of direct) if (r.status !== 202) assert.equal(r.json.error.code, 'insufficient_balance');
  const camp = await waitUntil(async () => {
    const c = await k.call('GET', '/v1/campaigns/few', { key }, 200);
    return c.status === 'done' ? c : null;
  }, 'the campaign to end', 60000, 100);
  const created = camp.by_recipient_status.created;
  assert.equal(created + directOk, 7, JSON.stringify({ camp, directOk }));
  assert.equal(camp.by_recipient_status.rejected, 12 - created);
  const rcpts = (await k.call('GET', '/v1/campaigns/few/recipients?status=rejected&limit=100', { key }, 200)).recipients;
  assert.equal(rcpts.length, 12 - created);
  for (const x of rcpts) assert.equal(x.reason, 'insufficient_balance');
  await smsc.waitFor(() => smsc.submits.length >= 7, 'the paid messages to go', 30000);
  const a = await unheld(k, key);
  assert.equal(kop(a.balance), 0, 'balance exactly 0');
  const { rows: log } = await logAddsUp(k, key);
  assert.equal(log.filter((x) => x.kind === 'charge').length, 7);
  await finish();
});

test('a campaign recipient refunded (REJECTD): its cost is 0 in the report and recipients.csv, which add up to the log', { timeout: 120000 }, async (t) => {
  const { k, key, acct, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 1.5 } } }, 200);
  await prepaid(k, acct, 10);
  const phones = ['79164200000', '79164200001', '79164200002'];
  const rejectd = { status: 0, receipt: 'REJECTD', receiptDelayMs: 200 };
  smsc.forDest(phones[0], rejectd);
  const csv = ['phone,name,consent', ...phones.map((p, i) => `${p},Имя${i},yes`)].join('\n') + '\n';
  const imp = await k.request('POST', '/v1/contacts/import?list=ref&country=RU', {
    key, body: Buffer.from(csv), headers: { 'content-type': 'text/csv' },
  });
  assert.equal(imp.status, 202, imp.text);
  await waitUntil(async () => (await k.call('GET', `/v1/imports/${imp.json.id}`, { key }, 200)).status === 'done',
    'the import', 60000, 50);
  await k.call('PUT', '/v1/templates/hi', { key, body: { text: '{{name}}, hello' } }, 200);
  await k.call('PUT', '/v1/campaigns/ref', { key, body: { audience: { list: 'ref' }, template: 'hi', class: 'service' } }, 200);
  await k.call('POST', '/v1/campaigns/ref/start', { key }, 200);
  await waitUntil(async () => (await k.call('GET', '/v1/campaigns/ref', { key }, 200)).status === 'done',
    'the campaign to end', 60000, 100);
  const camp = await waitUntil(async () => {
    const c = await k.call('GET', '/v1/campaigns/ref/report', { key }, 200);
    return (c.by_status.delivered ?? 0) === 2 && (c.by_status.failed ?? 0) === 1 ? c : null;
  }, 'the campaign\'s messages to end', 60000, 100);
  await unheld(k, key);
  const { rows } = await logAddsUp(k, key);
  assert.deepEqual(rows.map((x) => x.kind).sort(), ['charge', 'charge', 'charge', 'refund', 'topup']);
  const spent = -rows.filter((x) => x.kind !== 'topup').reduce((a, x) => a + kop(x.amount), 0);
  assert.equal(spent, 300, 'two SMS paid for');
  assert.equal(kop(camp.cost), spent, 'the report\'s cost adds up to the log');
  assert.equal(kop(camp.channels.sms.cost), spent);
  const r = await k.request('GET', '/v1/campaigns/ref/recipients.csv', { key });
  assert.equal(r.status, 200);
  const lines = r.text.trim().split('\n');
  const col = lines[0].split(',').indexOf('cost');
  const cost = Object.fromEntries(lines.slice(1).map((l) => [l.split(',')[0], kop(Number(l.split(',')[col]))]));
  assert.deepEqual(cost, { [phones[0]]: 0, [phones[1]]: 150, [phones[2]]: 150 });
  await finish();
});

test('a messenger that fails after accepting the message: its charge comes back, the SMS is charged', { timeout: 60000 }, async (t) => {
  const { k, key, acct, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  // Viber accepts the message and says nothing more: the failure comes from the test
  await sim.config({ viber: { reach: 1, read: 0, deliver_ms: [60000, 60000] } });
  await pointChannelsAtSim(k, sim);
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.5, viber: 1.2 } } }, 200);
  await prepaid(k, acct, 10);
  const m = await k.send(key, {
    to: '79161230021', text: 'Заказ 77 готов', viber_id: 'vb-refund',
    cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
  });
  const sent = await k.waitStatus(key, m.id, 'sent');
  const held = await account(k, key);
  assert.equal(kop(held.balance), 880, 'Viber charged when it accepted the message');
  const body = `{"event":"failed","timestamp":${Date.now()},"message_token":${sent.attempts[0].provider_id},"desc":"receiver is not registered"}`;
  const sig = crypto.createHmac('sha256', APPS.viber.token).update(body).digest('hex');
  const r = await k.request('POST', '/v1/hooks/viber/default', { key: null, body, headers: { 'x-viber-content-signature': sig } });
  assert.equal(r.status, 200);
  const done = await k.waitStatus(key, m.id, 'delivered');
  assert.deepEqual(done.attempts.map((a) => [a.channel, a.status]), [['viber', 'failed'], ['sms', 'delivered']]);
  const a = await unheld(k, key);
  assert.equal(kop(a.balance), 750, 'only the SMS is paid for');
  const { rows } = await logAddsUp(k, key);
  assert.deepEqual(rows.map((x) => [x.kind, x.channel, kop(x.amount)]),
    [['topup', null, 1000], ['charge', 'viber', -120], ['refund', 'viber', 120], ['charge', 'sms', -250]]);
  const shown = await k.message(key, m.id);
  assert.deepEqual(shown.attempts.map((x) => [x.channel, kop(x.cost)]), [['viber', 0], ['sms', 250]]);
  assert.equal(kop(shown.cost), 250, 'the message costs what was finally charged');
  await finish();
});

test('no overdraft: an SMS that fails over to a dearer route is held and charged at that price, the balance exactly 0', { timeout: 60000 }, async (t) => {
  // a: 1.50 for МТС, b: 2.50; route a is down 2 s after its SMSC goes
  const { k, smscA, smscB, acct, key } = await twoRoutes(t, {
    args: ['--route_down', '2s'],
    smsc: { autoReceipt: 'DELIVRD' },
    a: { prices: { default: 3.0, operators: { [MTS]: 1.5 } } },
    b: { prices: { default: 2.0, operators: { [MTS]: 2.5 } } },
  });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 1.0 } } }, 200);
  // The balance covers one message at the dear price, not two at the cheap one.
  await prepaid(k, acct, 2.5);
  const before = await k.metrics();
  // The cheap SMSC goes: the message is accepted while route a still counts
  // as up, waits on it, and is moved to b when a is down.
  await smscA.close();
  const m = await k.send(key, { to: MTS_PHONE, text: 'one code', sender: 'KASKAD', class: 'transactional' });
  const held = await account(k, key);
  assert.equal(kop(held.reserved), 250, 'held at the dearest route that can take it');
  assert.equal(kop(held.available), 0);
  const r = await k.request('POST', '/v1/messages', { key, body: { to: MTS_PHONE, text: 'another', sender: 'KASKAD' } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'insufficient_balance');
  await smscB.waitFor(() => smscB.submits.some((s) => s.text === 'one code'), 'failover to route b', 15000);
  const done = await k.waitStatus(key, m.id, 'delivered');
  assert.equal(done.attempts[0].route, 'b');
  assert.equal(done.attempts[0].price, 2.5);
  const a = await unheld(k, key);
  assert.equal(kop(a.balance), 0, 'balance exactly 0');
  assert.equal(kop(a.available), 0);
  const { rows } = await logAddsUp(k, key);
  assert.deepEqual(rows.map((x) => [x.kind, kop(x.amount)]), [['topup', 250], ['charge', -250]]);
  for (const x of rows) assert.ok(kop(x.balance) >= 0, `never below zero: ${JSON.stringify(x)}`);
  // The hold covered it: no charge had to be capped.
  const after = await k.metrics();
  assert.equal(metricSum(after, 'kaskad_money_charge_capped_total'), metricSum(before, 'kaskad_money_charge_capped_total'));
  await k.stopClean();
});

test('no overdraft: a charge above the hold (a price raised after accept) is taken at the hold and counted', { timeout: 60000 }, async (t) => {
  const { k, smsc, acct, key, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 1.5 } } }, 200);
  await prepaid(k, acct, 1.5);
  // The SMSC answers late; meanwhile the price goes up.
  smsc.forDest('79161230031', { status: 0, delayMs: 1500 });
  const m = await k.send(key, { to: '79161230031', text: 'raised', sender: 'KASKAD' });
  assert.equal(kop((await account(k, key)).reserved), 150);
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 4.0 } } }, 200);
  await k.waitStatus(key, m.id, 'delivered');
  const a = await unheld(k, key);
  assert.equal(kop(a.balance), 0, 'charged at most the hold');
  const { rows } = await logAddsUp(k, key);
  assert.deepEqual(rows.map((x) => [x.kind, kop(x.amount)]), [['topup', 150], ['charge', -150]]);
  assert.equal(metricSum(await k.metrics(), 'kaskad_money_charge_capped_total'), 1);
  await finish();
});
