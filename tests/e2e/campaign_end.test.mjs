// A campaign's end time (end_at) end to end: the planner leaves the
// recipients it cannot place before the end `expired` at once, and the
// recipients planned before the end but not sent by then expire once it
// passes (a running campaign at the runner's next pass, a paused one when it
// is resumed), the campaign `done`. The report's by_recipient_status and
// recipients.csv show them, each recipient in exactly one state. The test
// clock stands in for waiting.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil } from './lib/harness.mjs';
import { importList, waitCampaign, allRecipients as recipients } from './lib/campaigns.mjs';

const STATES = ['planned', 'created', 'rejected', 'cancelled', 'expired'];

function base(n) {
  const rows = ['phone,name,city,consent'];
  for (let i = 0; i < n; i++) rows.push(`7916${String(3000000 + i).padStart(7, '0')},Имя${i},Омск,yes`);
  return rows.join('\n') + '\n';
}

async function shift(k, by) {
  const r = await k.request('POST', '/v1/test/clock', { body: { shift: by } });
  assert.equal(r.status, 200, r.text);
}

async function world(t) {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 }, args: ['--test_clock', 'on'] });
  await env.k.call('PUT', '/v1/templates/a', { key: env.key, body: { text: '{{name}}, скидка 10% в {{city}}' } }, 200);
  return env;
}

/** recipients.csv as objects by its header (no cell here holds a comma). */
async function csvRows(k, key, name) {
  const r = await k.request('GET', `/v1/campaigns/${name}/recipients.csv`, { key });
  assert.equal(r.status, 200, r.text);
  const [head, ...lines] = r.text.trim().split(/\r?\n/);
  const cols = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
}

/** The report, the recipients and the CSV agree, each recipient in one
    state; the counts by state. Read again while a message is made between
    the reads (a running campaign's report may be the one kept a moment). */
async function states(k, key, name, n) {
  let seen;
  return waitUntil(async () => {
    const rep = await k.call('GET', `/v1/campaigns/${name}/report`, { key }, 200);
    const by = rep.by_recipient_status;
    assert.equal(rep.recipients, n);
    assert.equal(STATES.reduce((s, x) => s + (by[x] || 0), 0), n, JSON.stringify(by));
    const all = await recipients(k, key, name);
    assert.equal(all.length, n);
    assert.equal(new Set(all.map((x) => x.phone)).size, n, 'each recipient once');
    const csv = await csvRows(k, key, name);
    assert.equal(csv.length, n);
    assert.equal(new Set(csv.map((x) => x.phone)).size, n, 'each recipient once in the CSV');
    const count = (rows) => Object.fromEntries(STATES.map((s) => [s, rows.filter((x) => x.status === s).length]));
    const want = Object.fromEntries(STATES.map((s) => [s, by[s] || 0]));
    // the CSV gives a created recipient its message's status
    const inCsv = count(csv);
    inCsv.created = csv.filter((x) => x.message && !STATES.includes(x.status)).length;
    seen = { want, recipients: count(all), csv: inCsv };
    const same = JSON.stringify(seen.recipients) === JSON.stringify(want) && JSON.stringify(seen.csv) === JSON.stringify(want);
    return same ? { by: want, all, csv } : null;
  }, `the report, the recipients and the CSV of ${name} to agree`, 10000, 300).catch((e) => {
    e.message += `; last seen: ${JSON.stringify(seen)}`;
    throw e;
  });
}

test('campaign end: the recipients that cannot be placed before end_at are expired at planning; the rest expire once it passes', { timeout: 120000 }, async (t) => {
  const { k, key, finish } = await world(t);
  const N = 20;
  await importList(k, key, 'base', base(N));
  // one a minute: five and a half minutes hold six of the twenty
  const endAt = Date.now() + 5.5 * 60000;
  await k.call('PUT', '/v1/campaigns/short', { key, body: {
    audience: { list: 'base' }, template: 'a', class: 'service', rate_per_minute: 1,
    end_at: new Date(endAt).toISOString(),
  } }, 200);
  await k.call('POST', '/v1/campaigns/short/start', { key }, 200);
  const run = await waitCampaign(k, key, 'short', 'running');
  assert.equal(run.recipients, N);
  let { by, all } = await states(k, key, 'short', N);
  assert.ok(by.expired > 0 && by.expired < N, JSON.stringify(by));
  assert.equal((by.planned || 0) + (by.created || 0) + by.expired, N, JSON.stringify(by));
  // the expired ones were never given a time before the end nor a message;
  // every other one is planned before the end
  for (const x of all) {
    if (x.status === 'expired') assert.ok(!x.message, JSON.stringify(x));
    else assert.ok(Date.parse(x.planned_at) < endAt, JSON.stringify(x));
  }
  const expiredAtPlanning = by.expired;
  assert.ok(expiredAtPlanning >= N - 7 && expiredAtPlanning <= N - 5, JSON.stringify(by));

  // the first made; the end passes before the others' turn
  await waitUntil(async () => (await k.call('GET', '/v1/campaigns/short', { key }, 200)).by_recipient_status.created >= 1,
    'the first message', 20000, 100);
  await shift(k, '6m');
  const done = await waitCampaign(k, key, 'short', 'done');
  ({ by, all } = await states(k, key, 'short', N));
  assert.equal(by.planned || 0, 0, JSON.stringify(by));
  assert.ok(by.expired > expiredAtPlanning, `some planned ones expired at the end: ${JSON.stringify(by)}`);
  assert.equal(by.created + by.expired, N, JSON.stringify(by));
  assert.deepEqual(done.by_recipient_status, by);
  // nothing made after the end
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await k.call('GET', '/v1/campaigns/short', { key }, 200)).by_recipient_status.created, by.created);
  await k.settled(key, []);
  await finish();
});

test('campaign end: a paused campaign past end_at; its planned recipients expire, none is sent after the end', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  const N = 10;
  await importList(k, key, 'base', base(N));
  // all ten fit before the end: none expired at planning
  const endAt = Date.now() + 30 * 60000;
  await k.call('PUT', '/v1/campaigns/held', { key, body: {
    audience: { list: 'base' }, template: 'a', class: 'service', rate_per_minute: 1,
    end_at: new Date(endAt).toISOString(),
  } }, 200);
  await k.call('POST', '/v1/campaigns/held/start', { key }, 200);
  await waitCampaign(k, key, 'held', 'running');
  await waitUntil(async () => (await k.call('GET', '/v1/campaigns/held', { key }, 200)).by_recipient_status.created >= 1,
    'the first message', 20000, 100);
  await k.call('POST', '/v1/campaigns/held/pause', { key }, 200);
  let { by } = await states(k, key, 'held', N);
  assert.equal(by.expired || 0, 0, JSON.stringify(by));
  const made = by.created;
  assert.ok(made >= 1 && by.planned > 0, JSON.stringify(by));

  // the end passes while it is paused
  await shift(k, '31m');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await k.call('GET', '/v1/campaigns/held', { key }, 200)).by_recipient_status.created, made,
    'nothing made while paused');
  // resumed after its end: what was left expires, nothing more is sent
  await k.call('POST', '/v1/campaigns/held/resume', { key }, 200);
  const done = await waitCampaign(k, key, 'held', 'done');
  ({ by } = await states(k, key, 'held', N));
  assert.equal(by.planned || 0, 0, JSON.stringify(by));
  assert.equal(by.created, made, 'none made after the end');
  assert.equal(by.expired, N - made, JSON.stringify(by));
  assert.deepEqual(done.by_recipient_status, by);
  await k.settled(key, []);
  assert.equal(smsc.submits.length, made);
  await finish();
});
