// Tenants: two accounts, each with its own key. The second sees, changes,
// deletes, exports and previews nothing of the first's contacts, lists,
// imports (errors.csv too) and templates; an id of the first's answers 404
// to the second, never 403 (existence does not leak); listings are bounded
// by their limit; and a large import of one account does not keep the
// other's sends from being accepted while it runs. The same holds for
// campaigns, scheduled messages, replies, stop-list and consent imports.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setup, tempDir, waitUntil } from './lib/harness.mjs';
import { generate } from '../../bench/import.mjs';
import { sendMo } from './lib/smsc.mjs';

const PHONE = '79161234567';
const CSV = 'phone,name,lists\n79161230001,Анна,vip\n79161230002,Борис,vip|news\nnot-a-phone,bad,vip\n';

async function importOf(k, key, body, query = 'list=base') {
  const r = await k.request('POST', `/v1/contacts/import?${query}`, {
    key, body, headers: { 'content-type': 'text/csv' }, timeoutMs: 60000,
  });
  assert.equal(r.status, 202, r.text);
  return r.json.id;
}

async function importEnd(k, key, id) {
  let imp;
  await waitUntil(async () => {
    imp = (await k.request('GET', `/v1/imports/${id}`, { key })).json;
    return imp.status !== 'running';
  }, 'the import to end', 120000, 50);
  return imp;
}

test('tenants: the second account reaches nothing of the first\'s, and learns not that it exists', async (t) => {
  const { k, key: a, finish } = await setup(t);
  const b = (await k.createAccount('tenant-b')).key;
  const as = (m, p, body, key = a) => k.request(m, p, { key, body });

  // The first account's objects.
  let r = await as('PUT', `/v1/contacts/${PHONE}`, { name: 'Анна', lists: ['vip'], attrs: { n: 1 } });
  assert.equal(r.status, 200, r.text);
  r = await as('PUT', '/v1/templates/promo', { text: 'Привет, {{name|друг}}!' });
  assert.equal(r.status, 200, r.text);
  const imp = await importOf(k, a, CSV, 'list=vip');
  const done = await importEnd(k, a, imp);
  assert.equal(done.status, 'done', JSON.stringify(done));
  assert.equal(done.rejected, 1);
  r = await as('GET', `/v1/imports/${imp}/errors.csv`);
  assert.equal(r.status, 200);
  assert.match(r.text, /not-a-phone/);

  // Reads, changes and deletes by the second: 404 each, as for what does not exist.
  const notFound = [
    ['GET', `/v1/contacts/${PHONE}`],
    ['PATCH', `/v1/contacts/${PHONE}`, { name: 'чужой' }],
    ['DELETE', `/v1/contacts/${PHONE}`],
    ['GET', `/v1/imports/${imp}`],
    ['GET', `/v1/imports/${imp}/errors.csv`],
    ['GET', '/v1/templates/promo'],
    ['DELETE', '/v1/templates/promo'],
    ['POST', '/v1/templates/promo/preview', { vars: { name: 'x' } }],
  ];
  for (const [m, p, body] of notFound) {
    const theirs = await as(m, p, body, b);
    assert.equal(theirs.status, 404, `${m} ${p}: ${theirs.text}`);
    // the same request about something nobody has answers alike
    const none = await as(m, p.replace(PHONE, '79169999999').replace(imp, 'imp_999999')
      .replace('promo', 'nosuch'), body, b);
    assert.equal(none.status, 404, `${m} ${p} (none): ${none.text}`);
    assert.equal(theirs.json.error.code, none.json.error.code, `${m} ${p}`);
  }

  // Listings and the export show the second nothing of the first's.
  r = await as('GET', '/v1/contacts?limit=1000', undefined, b);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.contacts, []);
  r = await as('GET', '/v1/contacts?list=vip', undefined, b);
  assert.deepEqual(r.json.contacts, []);
  r = await as('GET', '/v1/contacts?q=Анна', undefined, b);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.contacts, []);
  r = await as('GET', '/v1/contacts.csv', undefined, b);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text.trim().split('\n').length, 1, 'the header alone');
  r = await as('GET', '/v1/lists', undefined, b);
  assert.deepEqual(r.json.lists, []);
  r = await as('GET', '/v1/templates', undefined, b);
  assert.deepEqual(r.json.templates, []);

  // The first's cursor used by the second pages the second's own contacts.
  r = await as('GET', '/v1/contacts?limit=1');
  assert.equal(r.json.contacts.length, 1);
  assert.ok(r.json.next_cursor, 'the first has more than one contact');
  const mine = await as('GET', `/v1/contacts?limit=1&cursor=${r.json.next_cursor}`, undefined, b);
  assert.equal(mine.status, 200, mine.text);
  assert.deepEqual(mine.json.contacts, []);

  // The second's own contact and template of the same names are its own:
  // made, changed and deleted without touching the first's.
  r = await as('PUT', `/v1/contacts/${PHONE}`, { name: 'Б', lists: ['vip'] }, b);
  assert.equal(r.status, 200, r.text);
  r = await as('PUT', '/v1/templates/promo', { text: 'B {{x|1}}' }, b);
  assert.equal(r.status, 200, r.text);
  r = await as('PATCH', `/v1/contacts/${PHONE}`, { attrs: { m: 2 } }, b);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.attrs, { m: 2 }, 'nothing of the first\'s attributes');
  r = await as('GET', '/v1/lists', undefined, b);
  assert.deepEqual(r.json.lists, [{ name: 'vip', size: 1 }]);
  r = await as('DELETE', `/v1/contacts/${PHONE}`, undefined, b);
  assert.ok(r.status === 200 || r.status === 204, r.text);
  r = await as('DELETE', '/v1/templates/promo', undefined, b);
  assert.ok(r.status === 200 || r.status === 204, r.text);

  // The first's are as they were.
  r = await as('GET', `/v1/contacts/${PHONE}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.name, 'Анна');
  assert.deepEqual(r.json.attrs, { n: 1 });
  r = await as('GET', '/v1/templates/promo');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.text, 'Привет, {{name|друг}}!');
  r = await as('POST', '/v1/templates/promo/preview', { vars: {} });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.channels.sms.text, 'Привет, друг!');
  r = await as('GET', '/v1/lists');
  assert.deepEqual(r.json.lists.find((l) => l.name === 'vip'), { name: 'vip', size: 3 });
  r = await as('GET', `/v1/imports/${imp}`);
  assert.equal(r.status, 200, r.text);
  r = await as('GET', '/v1/contacts.csv');
  assert.equal(r.text.trim().split('\n').length, 4, 'the header and three contacts');

  // Listings are bounded: a limit past the cap is refused, not served.
  for (const p of ['/v1/contacts?limit=1001', '/v1/contacts?limit=0', '/v1/contacts?limit=-1']) {
    r = await as('GET', p, undefined, b);
    assert.equal(r.status, 422, `${p}: ${r.text}`);
    assert.equal(r.json.error.code, 'invalid_limit');
  }
  r = await as('GET', '/v1/contacts?limit=2');
  assert.equal(r.json.contacts.length, 2);
  await finish();
});

test('tenants: a large import by one account does not hold up the other\'s sends', { timeout: 240000 }, async (t) => {
  const { k, key: a, finish } = await setup(t);
  const b = (await k.createAccount('tenant-b')).key;
  const dir = await tempDir('kaskad-tenants-');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rows = 40000;
  const file = generate(path.join(dir, 'big.csv'), rows);
  const id = await importOf(k, a, fs.readFileSync(file));

  // While the first's import runs, the second sends; each send is answered.
  const took = [];
  let during = 0;
  for (let i = 0; i < 20; i++) {
    let t0 = performance.now();
    const imp = (await k.request('GET', `/v1/imports/${id}`, { key: a, timeoutMs: 60000 })).json;
    t.diagnostic(`tenants: import status ${imp.status} ${imp.rows_done} rows, read in ${(performance.now() - t0).toFixed(1)} ms`);
    if (imp.status !== 'running') break;
    t0 = performance.now();
    const r = await k.request('POST', '/v1/messages', { key: b, timeoutMs: 60000,
      body: { to: `7916555${String(i).padStart(4, '0')}`, text: `hello ${i}`, sender: 'KASKAD' } });
    took.push(performance.now() - t0);
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.status, 'accepted');
    during++;
  }
  const end = await importEnd(k, a, id);
  assert.equal(end.status, 'done', JSON.stringify(end));
  const ms = took.map((x) => x.toFixed(1));
  t.diagnostic(`tenants: ${during} sends of the second account answered while the first imported ${rows} rows;` +
    ` ms each: ${ms.join(' ')}; import ${end.rows_done} rows, ${end.created} created`);
  assert.ok(during >= 1, 'the import ended before the second account could send: make it larger');
  await finish();
});

test('tenants: campaigns, scheduled sends, replies, stop-list and consent imports stay with their account', { timeout: 60000 }, async (t) => {
  const { k, key: a, smsc, finish } = await setup(t);
  const acctB = await k.createAccount('tenant-b');
  const b = acctB.key;
  const as = (m, p, body, key = a) => k.request(m, p, { key, body });
  const P = '79161237701';

  // The first account's campaign (a draft), scheduled message, reply,
  // stop-list entries and consents.
  let r = await as('PUT', '/v1/templates/promo', { text: 'Скидка 10%' });
  assert.equal(r.status, 200, r.text);
  r = await as('PUT', '/v1/campaigns/spring', { audience: { phones: [P] }, template: 'promo', class: 'service' });
  assert.equal(r.status, 200, r.text);
  const later = new Date(Date.now() + 3600e3).toISOString();
  const sched = await k.send(a, { to: P, text: 'Напоминание', send_at: later });
  const now = await k.send(a, { to: P, text: 'Ваш заказ готов' });
  await k.waitStatus(a, now.id, 'sent');
  assert.equal(await sendMo(smsc, P, 'Спасибо'), 0);
  await waitUntil(async () => (await as('GET', `/v1/replies?from=${P}`)).json.replies.length === 1, 'the reply stored');
  r = await k.request('POST', '/v1/stoplist/import', { key: a, body: 'phone,reason\n79161237702,complaint\n', headers: { 'content-type': 'text/csv' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.listed, 1, r.text);
  assert.equal((await as('GET', '/v1/stoplist/79161237702')).status, 200);
  r = await k.request('POST', '/v1/consents/import', { key: a, body: 'phone,source\n79161237703,site\n', headers: { 'content-type': 'text/csv' } });
  assert.equal(r.status, 200, r.text);

  // The second reaches none of it: 404 as for what nobody has.
  for (const [m, p] of [
    ['GET', '/v1/campaigns/spring'], ['GET', '/v1/campaigns/spring/recipients'],
    ['POST', '/v1/campaigns/spring/start'], ['POST', '/v1/campaigns/spring/cancel'],
    ['GET', `/v1/messages/${sched.id}`], ['DELETE', `/v1/messages/${sched.id}`],
    ['GET', '/v1/stoplist/79161237702'], ['GET', '/v1/consents/79161237703'],
  ]) {
    const theirs = await as(m, p, undefined, b);
    assert.equal(theirs.status, 404, `${m} ${p}: ${theirs.text}`);
  }
  assert.deepEqual((await as('GET', '/v1/campaigns', undefined, b)).json.campaigns, []);
  assert.deepEqual((await as('GET', '/v1/replies', undefined, b)).json.replies, []);
  assert.deepEqual((await as('GET', '/v1/stoplist', undefined, b)).json.entries ?? [], []);
  r = await as('GET', '/v1/campaigns/spring/report', undefined, b);
  assert.ok(r.status === 404 || !JSON.stringify(r.json).match(/"(sent|scheduled|delivered)":[1-9]/), r.text);
  // The operator's view of an account's inbound numbers is not a tenant's.
  r = await as('GET', `/v1/accounts/${acctB.id}/inbound`, undefined, b);
  assert.ok(r.status === 401 || r.status === 403 || r.status === 404, r.text);

  // The second's own stop-list does not hold the first's entries: it sends there.
  r = await as('POST', '/v1/messages', { to: '79161237702', text: 'Ваш код 1234', class: 'service' }, b);
  assert.equal(r.status, 202, r.text);
  // Its own campaign of the same name is its own.
  r = await as('PUT', '/v1/templates/promo', { text: 'B' }, b);
  assert.equal(r.status, 200, r.text);
  r = await as('PUT', '/v1/campaigns/spring', { audience: { phones: ['79161237799'] }, template: 'promo', class: 'service' }, b);
  assert.equal(r.status, 200, r.text);

  // The first's are as they were.
  r = await as('GET', `/v1/messages/${sched.id}`);
  assert.equal(r.json.status, 'scheduled', r.text);
  r = await as('GET', '/v1/campaigns/spring');
  assert.equal(r.json.status, 'draft', r.text);
  r = await as('GET', '/v1/stoplist/79161237702');
  assert.equal(r.status, 200, r.text);
  assert.equal((await as('GET', '/v1/consents/79161237703')).status, 200);
  r = await as('DELETE', `/v1/messages/${sched.id}`);
  assert.equal(r.status, 200, r.text);
  await finish();
});

test('tenants: policy (roaming_ads, caps, own words), the preview\'s lint, a complaint and a contact\'s own zone stay with their account', { timeout: 60000 }, async (t) => {
  const { k, key: a, finish } = await setup(t);
  const b = (await k.createAccount('tenant-b')).key;
  const [P1, P2] = ['79161237701', '79161237702'];
  await k.consent(a, [P1, P2]);
  await k.consent(b, [P1, P2]);
  // A's policy: roaming ads dropped, a cap of 1 a week, an own word, quiet now (UTC)
  const h = new Date().getUTCHours();
  const hh = (x) => `${String((x + 24) % 24).padStart(2, '0')}:00`;
  await k.call('PUT', '/v1/policy', { key: a, body: { roaming_ads: 'drop',
    caps: [{ class: 'advertising', max: 1, per: '7d' }], content_rules: { words: ['распродаж*'] },
    quiet_hours: { from: hh(h - 1), to: hh(h + 2), timezone: 'Etc/UTC' } } }, 200);
  const pb = await k.call('GET', '/v1/policy', { key: b }, 200);
  assert.notEqual(pb.roaming_ads, 'drop');
  assert.deepEqual(pb.caps, []);
  assert.deepEqual(pb.content_rules.words, []);
  // A's own word lints A's template, not B's of the same name and text
  for (const key of [a, b])
    await k.call('PUT', '/v1/templates/sale', { key, body: { text: 'Большая распродажа' } }, 200);
  const lintOf = async (key) => (await k.call('POST', '/v1/templates/sale/preview', { key, body: {} }, 200))
    .channels.sms.lint.filter((l) => l.code === 'prohibited_content');
  assert.equal((await lintOf(a)).length, 1);
  assert.equal((await lintOf(b)).length, 0);
  // A's complaint stops A's transactional messages only
  await k.call('PUT', `/v1/stoplist/${P1}`, { key: a, body: { reason: 'complaint' } }, 200);
  const ta = await k.request('POST', '/v1/messages', { key: a, body: { to: P1, text: 'Заказ готов', class: 'transactional' } });
  assert.equal(ta.json.error?.code, 'stop_listed', ta.text);
  const tb = await k.request('POST', '/v1/messages', { key: b, body: { to: P1, text: 'Заказ готов', class: 'transactional' } });
  assert.equal(tb.status, 202, tb.text);
  assert.equal((await k.request('GET', `/v1/stoplist/${P1}`, { key: b })).status, 404);
  // A's contact's own zone (day there) lets A's advertising go in A's quiet
  // hours; B has no such contact, and B's policy has no quiet hours now
  const far = h >= 12 ? 'Pacific/Honolulu' : 'Asia/Tokyo';
  await k.call('PUT', `/v1/contacts/${P2}`, { key: a, body: { timezone: far } }, 200);
  const aa = await k.send(a, { to: P2, text: 'Скидки', class: 'advertising' });
  assert.equal(aa.status, 'accepted', JSON.stringify(aa));
  assert.equal((await k.request('GET', `/v1/contacts/${P2}`, { key: b })).status, 404);
  // A's cap counts A's sends only: B's advertising to the same phone goes
  await k.call('PUT', '/v1/policy', { key: b, body: { quiet_hours: null } }, 200);
  const ba = await k.send(b, { to: P2, text: 'Скидки', class: 'advertising' });
  assert.equal(ba.status, 'accepted', JSON.stringify(ba));
  const again = await k.request('POST', '/v1/messages', { key: a, body: { to: P2, text: 'Скидки', class: 'advertising' } });
  assert.equal(again.json.error?.code, 'frequency_cap', again.text);
  await finish();
});
