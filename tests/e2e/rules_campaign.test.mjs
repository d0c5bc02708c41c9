// An advertising campaign under the account's rules: over one imported base,
// each recipient meets the rule it was made for. A phone on the stop-list is
// rejected stop_listed, one without a consent no_consent, one that already had
// its cap of advertising frequency_cap, one given the variant whose text names
// alcohol prohibited_content; one whose local time (its number's zone in the
// numbering register) is inside the quiet hours gets a message that waits
// (scheduled, quiet_hours) and goes when the test clock passes their end; the
// rest are sent at once. The campaign's figures
// add up (each recipient in one recipient status, each message in one message
// status), recipients.csv shows every refusal's reason, and the dry run
// before the start foretold the same figures.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setup, waitUntil, tempDir } from './lib/harness.mjs';
import { importList, waitCampaign, allRecipients as recipients } from './lib/campaigns.mjs';

// A numbering register of two ranges: 916 issued in Moscow (UTC+3), 924 in
// Primorye (Asia/Vladivostok, UTC+10); neither has summer time. The quiet
// hours, from an hour ago to an hour from now in Moscow, are night for the
// first and day for the second.
async function register(t) {
  const dir = await tempDir('kaskad-numbering-');
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(dir, 'DEF-9xx.csv'),
    'АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n' +
    '916;0000000;9999999;10000000;ПАО "МТС";г. Москва;г. Москва;7740000076\n' +
    '924;0000000;9999999;10000000;ПАО "МегаФон";Приморский край;Приморский край;7812014560\n');
  await fs.writeFile(path.join(dir, 'region_tz.csv'),
    'territory_gar;iana_tz;utc_offset;msk_offset;note;def_rows\n' +
    'г. Москва;Europe/Moscow;+3;+0;;1\nПриморский край;Asia/Vladivostok;+10;+7;;1\n');
  return dir;
}

/** Quiet hours from an hour ago to an hour from now, Moscow time. */
function quietInMoscow() {
  const d = new Date(Date.now() + 3 * 3600e3);
  const m = d.getUTCHours() * 60 + d.getUTCMinutes();
  const f = (x) => {
    const y = ((x % 1440) + 1440) % 1440;
    return `${String(Math.floor(y / 60)).padStart(2, '0')}:${String(y % 60).padStart(2, '0')}`;
  };
  return { from: f(m - 60), to: f(m + 60), timezone: 'Europe/Moscow' };
}

const phone = (i, night) => `7${night ? '916' : '924'}${String(3100000 + i).padStart(7, '0')}`;

/** The base: what each group of phones is made to meet. */
function people() {
  const groups = { stop: 3, none: 3, capped: 3, quiet: 4, ok: 8 };
  const out = [];
  let i = 0;
  for (const [group, n] of Object.entries(groups)) {
    for (let j = 0; j < n; j++, i++) {
      out.push({ phone: phone(i, group === 'quiet'), name: `Имя${i}`, group,
        consent: group === 'none' ? 'no' : 'yes' });
    }
  }
  return out;
}

/** What the rules make of a recipient given its variant, in the order the
    accept path applies them: stop-list, consent, content, caps, quiet hours. */
function expected(p, variant, bad) {
  if (p.group === 'stop') return 'stop_listed';
  if (p.group === 'none') return 'no_consent';
  if (variant === bad) return 'prohibited_content';
  if (p.group === 'capped') return 'frequency_cap';
  if (p.group === 'quiet') return 'quiet_hours';
  return 'sent';
}

/** recipients.csv as objects (no cell here has a comma or a quote). */
async function csvRows(k, key, name) {
  const r = await k.request('GET', `/v1/campaigns/${name}/recipients.csv`, { key });
  assert.equal(r.status, 200, r.text);
  const [head, ...lines] = r.text.trim().split('\n');
  const cols = head.split(',');
  assert.deepEqual(cols, ['phone', 'name', 'variant', 'channel', 'status', 'reason', 'planned_at',
    'created_at', 'final_at', 'cost', 'clicks', 'message']);
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
}

const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

test('an advertising campaign meets every rule: stop-list, consent, caps, content, quiet hours', { timeout: 120000 }, async (t) => {
  const numbering = await register(t);
  const { k, key, smsc, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 }, args: ['--test_clock', 'on', '--numbering', numbering] });
  const base = people();
  const csv = ['phone,name,consent', ...base.map((p) => `${p.phone},${p.name},${p.consent}`)].join('\n') + '\n';
  await importList(k, key, 'base', csv);
  for (const p of base.filter((x) => x.group === 'stop'))
    await k.call('PUT', `/v1/stoplist/${p.phone}`, { key, body: {} }, 200);

  // One advertising message a week; quiet hours now in Moscow.
  await k.call('PUT', '/v1/policy', { key, body: {
    quiet_hours: quietInMoscow(), caps: [{ class: 'advertising', max: 1, per: '7d' }] } }, 200);
  // The capped ones have had theirs already (daytime for them: sent at once).
  for (const p of base.filter((x) => x.group === 'capped')) {
    const m = await k.send(key, { to: p.phone, text: 'Новая коллекция уже в магазинах', class: 'advertising' });
    assert.equal(m.status, 'accepted', JSON.stringify(m));
  }

  await k.call('PUT', '/v1/templates/clean', { key, body: { text: '{{name}}, скидка 10% на обувь' } }, 200);
  await k.call('PUT', '/v1/templates/bad', { key, body: { text: '{{name}}, скидка 10% на водку и коньяк' } }, 200);
  const variants = [{ template: 'clean', share: 75 }, { template: 'bad', share: 25 }];
  await k.call('PUT', '/v1/campaigns/promo', { key, body: { audience: { list: 'base' }, variants, class: 'advertising' } }, 200);
  // The dry run judges each recipient as the run will, and stores nothing.
  const dry = await k.call('POST', '/v1/campaigns/promo/dry-run', { key, body: {} }, 200);
  await k.call('POST', '/v1/campaigns/promo/start', { key }, 200);
  // Nothing is left planned once every recipient has a message or a refusal.
  const done = await waitCampaign(k, key, 'promo', 'done');
  assert.equal(done.recipients, base.length);

  const all = await recipients(k, key, 'promo');
  assert.equal(all.length, base.length);
  const byPhone = new Map(base.map((p) => [p.phone, p]));
  const want = new Map(all.map((x) => [x.phone, expected(byPhone.get(x.phone), x.variant, 1)]));
  const counts = {};
  for (const w of want.values()) counts[w] = (counts[w] ?? 0) + 1;
  // The base is made so that every rule decides at least one recipient.
  for (const w of ['stop_listed', 'no_consent', 'prohibited_content', 'frequency_cap', 'quiet_hours', 'sent'])
    assert.ok(counts[w] >= 1, `no recipient left for ${w}: ${JSON.stringify(counts)}`);

  assert.deepEqual([dry.recipients, dry.accepted, dry.deferred.quiet_hours],
    [base.length, counts.sent + counts.quiet_hours, counts.quiet_hours], JSON.stringify(dry));
  const refused = { ...counts };
  delete refused.sent;
  delete refused.quiet_hours;
  assert.deepEqual(dry.rejected, refused);
  for (const x of all) {
    const w = want.get(x.phone);
    if (w === 'sent' || w === 'quiet_hours') {
      assert.equal(x.status, 'created', JSON.stringify(x));
      assert.ok(x.message, JSON.stringify(x));
    } else {
      assert.deepEqual([x.status, x.reason, x.message ?? null], ['rejected', w, null], JSON.stringify(x));
    }
  }
  assert.deepEqual(done.by_recipient_status, {
    planned: 0, created: counts.sent + counts.quiet_hours,
    rejected: base.length - counts.sent - counts.quiet_hours, cancelled: 0, expired: 0,
  });

  // The quiet ones wait with the reason; the others are sent.
  const quiet = all.filter((x) => want.get(x.phone) === 'quiet_hours');
  for (const x of quiet) {
    const m = await k.message(key, x.message);
    assert.equal(m.status, 'scheduled', JSON.stringify(m));
    assert.equal(m.error.code, 'quiet_hours');
    assert.equal(m.campaign, 'promo');
    assert.deepEqual(m.decisions.map((d) => [d.rule, d.outcome, d.reason]), [['quiet_hours', 'deferred', 'quiet_hours']]);
    const wait = Date.parse(m.send_at ?? m.decisions[0].until) - Date.now();
    assert.ok(wait > 55 * 60e3 && wait <= 61 * 60e3, JSON.stringify(m.decisions));
  }
  const sentNow = all.filter((x) => want.get(x.phone) === 'sent');
  for (const x of sentNow) await k.waitStatus(key, x.message, 'delivered');
  const capped = base.filter((p) => p.group === 'capped').length;
  await k.settled(key, sentNow.map((x) => x.message));
  assert.equal(smsc.submits.length, capped + sentNow.length, 'nothing went to a refused or a quiet recipient');
  assert.ok(smsc.submits.every((s) => !/водк/.test(s.text)), 'the prohibited text never went out');

  let rows = await csvRows(k, key, 'promo');
  assert.deepEqual(rows.map((r) => r.phone), base.map((p) => p.phone).sort(), 'one row each, in phone order');
  for (const r of rows) {
    const w = want.get(r.phone);
    if (w === 'quiet_hours') assert.deepEqual([r.status, r.reason, r.channel], ['scheduled', '', ''], JSON.stringify(r));
    else if (w === 'sent') assert.deepEqual([r.status, r.reason, r.channel], ['delivered', '', 'sms'], JSON.stringify(r));
    else assert.deepEqual([r.status, r.reason, r.message], ['rejected', w, ''], JSON.stringify(r));
  }
  let rep = await k.call('GET', '/v1/campaigns/promo/report', { key }, 200);
  assert.equal(rep.recipients, base.length);
  assert.equal(sum(rep.by_recipient_status), rep.recipients, JSON.stringify(rep.by_recipient_status));
  assert.equal(rep.by_status.scheduled, quiet.length, JSON.stringify(rep.by_status));

  // The night ends for them: the clock passes the end of the quiet hours.
  const r = await k.request('POST', '/v1/test/clock', { body: { shift: '2h' } });
  assert.equal(r.status, 200, r.text);
  for (const x of quiet) {
    const m = await k.waitStatus(key, x.message, 'delivered');
    assert.equal(m.decisions[0].reason, 'quiet_hours', 'the decision stays with the message');
  }
  await k.settled(key, quiet.map((x) => x.message));
  assert.equal(smsc.submits.length, capped + sentNow.length + quiet.length);
  const quietPhones = new Set(quiet.map((x) => x.phone));
  assert.equal(smsc.submits.filter((s) => quietPhones.has(s.destination_addr)).length, quiet.length);

  // Every recipient in exactly one final state, every message in one status.
  rep = await waitUntil(async () => {
    const x = await k.call('GET', '/v1/campaigns/promo/report', { key }, 200);
    return x.by_status.delivered === sentNow.length + quiet.length ? x : null;
  }, 'the report to count every delivery', 15000, 100);
  assert.equal(sum(rep.by_recipient_status), base.length);
  assert.equal(rep.by_recipient_status.created, sentNow.length + quiet.length);
  assert.equal(rep.by_recipient_status.rejected, base.length - sentNow.length - quiet.length);
  assert.equal(rep.messages, rep.by_recipient_status.created);
  assert.equal(sum(rep.by_status), rep.messages, JSON.stringify(rep.by_status));
  const variantSum = rep.by_variant.reduce((a, v) => a + v.recipients, 0);
  assert.equal(variantSum, base.length);
  assert.equal(rep.by_variant[1].by_recipient_status.created ?? 0, 0, 'the prohibited variant made no message');
  rows = await csvRows(k, key, 'promo');
  const byStatus = {};
  for (const x of rows) byStatus[`${x.status}:${x.reason}`] = (byStatus[`${x.status}:${x.reason}`] ?? 0) + 1;
  assert.deepEqual(byStatus, {
    'delivered:': counts.sent + counts.quiet_hours,
    'rejected:stop_listed': counts.stop_listed,
    'rejected:no_consent': counts.no_consent,
    'rejected:prohibited_content': counts.prohibited_content,
    'rejected:frequency_cap': counts.frequency_cap,
  });
  await finish();
});
