// Campaigns end to end: PUT while draft, start (the audience resolved once
// and planned, each recipient with its variant and time), the runner making
// the messages through the accept path as recipients come due, pause and
// resume, cancel (each stopping the batch under way at once: only the
// slices already given are made, and a recipient whose message was made is
// created, not cancelled), and a kill -9 in the middle after which every recipient
// gets exactly one message, and one in the middle of the planning (a batch
// at a time) after which it goes on from the last batch stored. The test clock stands in for waiting.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil } from './lib/harness.mjs';
import { allRecipients, importList, waitCampaign } from './lib/campaigns.mjs';

function base(n, from = 0) {
  const rows = ['phone,name,city,consent'];
  for (let i = 0; i < n; i++) rows.push(`7916${String(2000000 + from + i).padStart(7, '0')},Имя${i},${i % 2 ? 'Казань' : 'Омск'},yes`);
  return rows.join('\n') + '\n';
}

async function shift(k, by) {
  const r = await k.request('POST', '/v1/test/clock', { body: { shift: by } });
  assert.equal(r.status, 200, r.text);
}

async function world(t, smsc = {}, args = []) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20, ...smsc }, args: ['--test_clock', 'on', ...args] });
  const { k, key } = env;
  await k.call('PUT', '/v1/templates/a', { key, body: { text: '{{name}}, скидка 10% в {{city}}' } }, 200);
  await k.call('PUT', '/v1/templates/b', { key, body: { text: '{{name}}, скидка 15%' } }, 200);
  return env;
}

const recipients = allRecipients;

test('campaigns: draft, validation, runs to the end over an imported list; the figures add up', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  await importList(k, key, 'base', base(300));
  // Refusals: no audience, both template and variants, an unknown template, a bad window.
  let r = await k.request('PUT', '/v1/campaigns/spring', { key, body: { template: 'a' } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'invalid_audience');
  r = await k.request('PUT', '/v1/campaigns/spring', { key, body: { audience: { list: 'base' }, template: 'nope' } });
  assert.equal(r.json.error.code, 'unknown_template');
  r = await k.request('PUT', '/v1/campaigns/spring', { key, body: { audience: { list: 'base' }, template: 'a', window: { from: '25:00', to: '10:00' } } });
  assert.equal(r.json.error.code, 'invalid_window');
  r = await k.request('PUT', '/v1/campaigns/spring', { key, body: { audience: { list: 'base' }, template: 'a', rate_per_minute: 10, spread: '1h' } });
  assert.equal(r.json.error.code, 'invalid_rate');

  const spec = { audience: { list: 'base' }, variants: [{ template: 'a', share: 50 }, { template: 'b', share: 50 }], class: 'service' };
  const put = await k.call('PUT', '/v1/campaigns/spring', { key, body: spec }, 200);
  assert.equal(put.status, 'draft');
  const got = await k.call('GET', '/v1/campaigns/spring', { key }, 200);
  assert.equal(got.status, 'draft');
  assert.deepEqual(got.audience, { list: 'base' });
  const list = await k.call('GET', '/v1/campaigns', { key }, 200);
  assert.deepEqual(list.campaigns.map((c) => c.name), ['spring']);
  assert.equal((await k.request('POST', '/v1/campaigns/spring/resume', { key })).status, 409);
  assert.equal((await k.request('POST', '/v1/campaigns/nothing/start', { key })).status, 404);

  const st = await k.call('POST', '/v1/campaigns/spring/start', { key }, 200);
  assert.equal(st.status, 'planning');
  // Not a draft any more: no changes.
  r = await k.request('PUT', '/v1/campaigns/spring', { key, body: spec });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'not_draft');
  const done = await waitCampaign(k, key, 'spring', 'done');
  assert.equal(done.recipients, 300);
  assert.equal(done.by_recipient_status.created, 300);
  assert.equal(done.by_recipient_status.planned, 0);
  const all = await recipients(k, key, 'spring');
  assert.equal(all.length, 300);
  assert.equal(new Set(all.map((x) => x.phone)).size, 300, 'each recipient once');
  assert.equal(new Set(all.map((x) => x.message)).size, 300, 'each with its own message');
  const byVariant = [0, 1].map((v) => all.filter((x) => x.variant === v).length);
  assert.ok(byVariant[0] > 100 && byVariant[1] > 100, JSON.stringify(byVariant));
  // The variant is what the message says.
  const m = await k.message(key, all.find((x) => x.variant === 1).message);
  assert.equal(m.campaign, 'spring');
  await waitUntil(async () => {
    const rep = await k.call('GET', '/v1/campaigns/spring/report', { key }, 200);
    return rep.by_status.delivered === 300 ? rep : null;
  }, 'every message delivered', 60000, 200);
  assert.equal(smsc.submits.length, 300);
  const texts = smsc.submits.map((s) => s.text);
  assert.equal(texts.filter((x) => /15%/.test(x)).length, byVariant[1]);
  await finish();
});

test('campaigns: rate and window plan the times; pause stops, resume goes on; cancel marks the rest', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  await importList(k, key, 'base', base(40));
  // 10 a minute: 40 recipients over four minutes of the test clock.
  await k.call('PUT', '/v1/campaigns/slow', { key, body: { audience: { list: 'base' }, template: 'a', class: 'service', rate_per_minute: 10 } }, 200);
  await k.call('POST', '/v1/campaigns/slow/start', { key }, 200);
  await waitCampaign(k, key, 'slow', 'running');
  const plan = await recipients(k, key, 'slow');
  const times = plan.map((x) => Date.parse(x.planned_at)).sort((a, b) => a - b);
  assert.ok(times[39] - times[0] >= 38 * 6000 - 1000, `${times[0]} .. ${times[39]}`);
  await waitUntil(async () => (await recipients(k, key, 'slow', 'created')).length >= 1, 'the first message', 20000, 100);
  await k.call('POST', '/v1/campaigns/slow/pause', { key }, 200);
  const before = (await recipients(k, key, 'slow', 'created')).length;
  await shift(k, '2m');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await recipients(k, key, 'slow', 'created')).length, before, 'nothing made while paused');
  await k.call('POST', '/v1/campaigns/slow/resume', { key }, 200);
  await waitUntil(async () => (await recipients(k, key, 'slow', 'created')).length > before, 'more after resume', 20000, 100);
  await k.call('POST', '/v1/campaigns/slow/cancel', { key }, 200);
  const c = await k.call('GET', '/v1/campaigns/slow', { key }, 200);
  assert.equal(c.status, 'cancelled');
  assert.equal(c.by_recipient_status.planned, 0);
  assert.equal(c.by_recipient_status.created + c.by_recipient_status.cancelled, 40);
  assert.ok(c.by_recipient_status.cancelled > 0);
  const made = c.by_recipient_status.created;
  await shift(k, '10m');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await k.call('GET', '/v1/campaigns/slow', { key }, 200)).by_recipient_status.created, made);
  await k.settled(key, []);
  assert.equal(smsc.submits.length, made);
  assert.equal((await k.request('POST', '/v1/campaigns/slow/resume', { key })).status, 409);
  await finish();
});

test('campaigns: a running campaign\'s report is kept a moment and read again; a pause or cancel is seen at once; another account\'s is its own', { timeout: 120000 }, async (t) => {
  const { k, key, finish } = await world(t);
  await importList(k, key, 'base', base(30));
  await k.call('PUT', '/v1/campaigns/watch', { key, body: { audience: { list: 'base' }, template: 'b', class: 'service', rate_per_minute: 10 } }, 200);
  await k.call('POST', '/v1/campaigns/watch/start', { key }, 200);
  await waitCampaign(k, key, 'watch', 'running');
  await waitUntil(async () => (await recipients(k, key, 'watch', 'created')).length >= 1, 'the first message', 20000, 100);
  // Two reads in a row while it runs: the second is the kept one.
  const r1 = await k.call('GET', '/v1/campaigns/watch/report', { key }, 200);
  assert.ok(r1.by_recipient_status.planned > 0, JSON.stringify(r1));
  const kept = async () => (await k.metrics()).get('kaskad_campaign_reports_total{from="kept"}');
  const kept0 = await kept();
  const r2 = await k.call('GET', '/v1/campaigns/watch/report', { key }, 200);
  assert.deepEqual(r2, r1);
  assert.equal(await kept() - kept0, 1, 'the second read answered from the kept report');
  // Another account asking for the same name is not answered from it.
  const other = await k.createAccount();
  assert.equal((await k.request('GET', '/v1/campaigns/watch/report', { key: other.key })).status, 404);
  // As the campaign goes on, the kept report is read again behind the reads.
  await shift(k, '1m');
  await waitUntil(async () => {
    const x = await k.call('GET', '/v1/campaigns/watch/report', { key }, 200);
    return x.by_recipient_status.created > r1.by_recipient_status.created;
  }, 'the report to follow the campaign', 20000, 100);
  // A cancel through the API: the next report is read afresh.
  await k.call('GET', '/v1/campaigns/watch/report', { key }, 200);
  await k.call('POST', '/v1/campaigns/watch/cancel', { key }, 200);
  const r3 = await k.call('GET', '/v1/campaigns/watch/report', { key }, 200);
  assert.equal(r3.by_recipient_status.planned || 0, 0, JSON.stringify(r3));
  assert.ok(r3.by_recipient_status.cancelled > 0, JSON.stringify(r3));
  assert.equal(r3.recipients, 30);
  // Once nothing is left to create, every read goes to the store.
  const c = await k.call('GET', '/v1/campaigns/watch', { key }, 200);
  assert.equal(r3.by_recipient_status.created, c.by_recipient_status.created);
  await finish();
});

// KASKAD_E2E_CAMPAIGN_N sets the campaign's size (2,000 by default; the
// issue's check runs it by hand with 100000): a kill -9 once a quarter of the
// recipients are created, at most, and every recipient once after the restart.
const KILL_N = Number(process.env.KASKAD_E2E_CAMPAIGN_N || 2000);

test(`campaigns: kill -9 in the middle of ${KILL_N} recipients; after the restart none is skipped and none sent twice`, { timeout: 180000 + KILL_N * 12 }, async (t) => {
  const { k, key, smsc, finish } = await world(t, { redeliver: true });
  const N = KILL_N;
  await importList(k, key, 'big', base(N));
  // 600 a minute (a larger campaign: all of it a minute), the clock moved a
  // minute at a time
  const rate = Math.max(600, N);
  await k.call('PUT', '/v1/campaigns/big', { key, body: { audience: { list: 'big' }, template: 'b', class: 'service', rate_per_minute: rate } }, 200);
  await k.call('POST', '/v1/campaigns/big/start', { key }, 200);
  await waitCampaign(k, key, 'big', 'running', 60000 + N);
  await shift(k, '1m');
  const some = N <= 2000 ? 300 : Math.floor(N / 4);
  await waitUntil(async () => (await k.call('GET', '/v1/campaigns/big', { key }, 200)).by_recipient_status.created >= some,
    'a part made', 60000 + N, 100);
  await k.kill9();
  // what the SMSC took before the kill: a send again after the restart may
  // only be one of these (its result was not stored yet)
  const before = new Set(smsc.submits.map((s) => s.destination_addr));
  await k.restart();
  await smsc.waitFor(() => smsc.boundSessions().length >= 1, 'kaskad to bind again');
  // the killed process's hold on the campaign runs out
  await shift(k, '5m');
  const done = await waitCampaign(k, key, 'big', 'done', 120000 + N * 5);
  assert.equal(done.by_recipient_status.created, N);
  const all = await recipients(k, key, 'big');
  assert.equal(all.length, N);
  assert.equal(new Set(all.map((x) => x.message)).size, N, 'one message each');
  const msgs = await k.call('GET', '/v1/campaigns/big/report', { key }, 200);
  assert.equal(msgs.messages, N, 'no recipient got two messages');
  await waitUntil(() => new Set(smsc.submits.map((s) => s.destination_addr)).size === N ? true : null, 'every recipient submitted', 60000 + N * 3, 200);
  const seen = new Map();
  for (const s of smsc.submits) seen.set(s.destination_addr, (seen.get(s.destination_addr) || 0) + 1);
  const twice = [...seen].filter(([, n]) => n > 1).map(([d]) => d);
  assert.ok(twice.every((d) => before.has(d)), `sent again though not sent before the kill: ${twice.filter((d) => !before.has(d)).slice(0, 5)}`);
  assert.ok(twice.every((d) => seen.get(d) === 2), 'none more than twice');
  t.diagnostic(`${N} recipients, ${before.size} submitted before the kill, ${twice.length} sent again after it`);
  await finish();
});

test('campaigns: kill -9 while it is planned; the planning goes on from its last batch, each recipient once, at the rate', { timeout: 240000 }, async (t) => {
  // 200 recipients a batch: the planning of 12,000 takes many batches
  const { k, key, finish } = await world(t, { redeliver: true }, ['--campaign_batch', '200']);
  const N = 12000;
  await importList(k, key, 'huge', base(N));
  await k.call('PUT', '/v1/campaigns/huge', { key, body: { audience: { list: 'huge' }, template: 'b', class: 'service', rate_per_minute: 60 } }, 200);
  await k.call('POST', '/v1/campaigns/huge/start', { key }, 200);
  const mid = await waitUntil(async () => {
    const c = await k.call('GET', '/v1/campaigns/huge', { key }, 200);
    assert.equal(c.status, 'planning', 'still planning when a part is stored');
    return c.recipients >= 1000 ? c : null;
  }, 'a part planned', 60000, 5);
  await k.kill9();
  assert.ok(mid.recipients < N);
  await k.restart();
  const done = await waitCampaign(k, key, 'huge', 'running', 120000);
  assert.equal(done.recipients, N);
  const all = await recipients(k, key, 'huge');
  assert.equal(all.length, N);
  assert.deepEqual(all.map((x) => x.seq), Array.from({ length: N }, (_, i) => i + 1));
  assert.equal(new Set(all.map((x) => x.phone)).size, N, 'each recipient once');
  // one a second over the whole campaign, across the restart too
  const at = all.map((x) => Date.parse(x.planned_at)).sort((a, b) => a - b);
  for (let i = 1; i < N; i++) assert.ok(at[i] - at[i - 1] >= 1000, `recipients ${i - 1} and ${i}: ${at[i] - at[i - 1]} ms apart`);
  const report = await k.call('GET', '/v1/campaigns/huge/report', { key }, 200);
  assert.equal(report.recipients, N);
  await k.call('POST', '/v1/campaigns/huge/cancel', { key }, 200);
  await finish();
});

test('campaigns: pause and cancel stop at once in the middle of a batch; every recipient in one state, each created one with its message, no SMS to a cancelled one', { timeout: 180000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  const N = 3000;
  await importList(k, key, 'mid', base(N));
  // each message's links tracked as it is made: a slice takes a while
  const links = Array.from({ length: 10 }, (_, i) => `https://s.example/a${i}`).join(' ');
  await k.call('PUT', '/v1/templates/links', { key, body: { text: `Sale: ${links}` } }, 200);
  // no rate, all due at once an hour on: batches of a thousand, each made a
  // slice at a time
  const at = new Date(Date.now() + 3600000).toISOString();
  await k.call('PUT', '/v1/campaigns/mid', { key, body: { audience: { list: 'mid' }, template: 'links', class: 'service', start_at: at } }, 200);
  await k.call('POST', '/v1/campaigns/mid/start', { key }, 200);
  await waitCampaign(k, key, 'mid', 'running');
  const report = () => k.call('GET', '/v1/campaigns/mid/report', { key }, 200);
  await shift(k, '2h');
  // paused as soon as the first slice's messages go out
  await waitUntil(() => smsc.submits.length > 0 ? true : null, 'the first slice', 30000, 2);
  await k.call('POST', '/v1/campaigns/mid/pause', { key }, 200);
  const m0 = (await report()).messages;
  // the slices given finish, and their recipients are set created
  const settled = () => waitUntil(async () => {
    const x = await report();
    return (x.by_recipient_status.created || 0) === x.messages ? x : null;
  }, 'the created recipients to be those with a message', 30000, 100);
  await settled();
  await new Promise((r) => setTimeout(r, 1000));
  let r = await settled();
  t.diagnostic(`pause: ${m0} messages when answered, ${r.messages} after`);
  // only the slices given to the accept path before the pause (five of a
  // hundred at most, not yet stored when it was answered); the rest of the
  // batch of a thousand not made
  assert.ok(r.messages - m0 <= 500, `${r.messages - m0} made after the pause`);
  assert.equal(r.by_recipient_status.created, r.messages);
  assert.equal(r.by_recipient_status.planned, N - r.messages, 'the rest planned');
  const paused = r.messages;
  await shift(k, '10m');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await report()).messages, paused, 'nothing made while paused');

  await k.call('POST', '/v1/campaigns/mid/resume', { key }, 200);
  const sentTo = () => new Set(smsc.submits.map((x) => x.destination_addr));   // a message in parts
  await waitUntil(() => sentTo().size > paused ? true : null, 'more after resume', 30000, 2);
  await k.call('POST', '/v1/campaigns/mid/cancel', { key }, 200);
  const c0 = (await report()).messages;
  await settled();
  await new Promise((r) => setTimeout(r, 1000));
  r = await settled();
  t.diagnostic(`cancel: ${c0} messages when answered, ${r.messages} after`);
  assert.equal((await k.call('GET', '/v1/campaigns/mid', { key }, 200)).status, 'cancelled');
  assert.ok(r.messages - c0 <= 500, `${r.messages - c0} made after the cancel`);
  assert.ok(r.messages < N, 'the cancel left some unsent');
  const s = r.by_recipient_status;
  assert.equal(s.planned || 0, 0);
  assert.equal(s.created + s.cancelled, N, JSON.stringify(s));
  assert.equal(r.messages, s.created, 'a message for each created recipient, none more');
  const all = await recipients(k, key, 'mid');
  assert.equal(all.length, N);
  assert.equal(new Set(all.map((x) => x.phone)).size, N, 'each recipient once');
  const created = all.filter((x) => x.status === 'created');
  const cancelled = all.filter((x) => x.status === 'cancelled');
  assert.equal(created.length, s.created);
  assert.equal(cancelled.length, s.cancelled);
  assert.ok(created.every((x) => x.message), 'each created one with its message');
  assert.ok(cancelled.every((x) => !x.message), 'no cancelled one with a message');
  assert.equal(new Set(created.map((x) => x.message)).size, created.length);
  // every message sent, and none to a cancelled recipient
  await waitUntil(() => sentTo().size >= created.length ? true : null, 'every message submitted', 60000, 200);
  const sent = sentTo();
  assert.ok(created.every((x) => sent.has(x.phone)), 'each created one sent');
  const wrong = cancelled.filter((x) => sent.has(x.phone)).map((x) => x.phone);
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} cancelled recipients got an SMS`);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(sentTo().size, created.length, 'an SMS to each created recipient, none other');
  const parts = new Map();
  for (const x of smsc.submits) parts.set(x.destination_addr, (parts.get(x.destination_addr) || 0) + 1);
  assert.equal(new Set(parts.values()).size, 1, 'one message (of the same parts) each');
  for (const l of k.stderr.split('\n').filter((x) => /campaign mid: paused or cancelled/.test(x))) t.diagnostic(l);
  await finish();
});
