// Consents in bulk: the contact import's `consent` column records a consent
// (with its source and time) or withdraws the current ones, in the rows'
// own commits, and the contact shows it; POST /v1/consents/import records
// consents from CSV (phone, source, text, ip, at, channel), answering the
// bad rows with line and reason; advertising follows both.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil } from './lib/harness.mjs';

const ad = (to) => ({ to, text: 'Скидка 20% до пятницы', sender: 'KASKAD', class: 'advertising' });

test('consent import: the contact import column and POST /v1/consents/import', async (t) => {
  const { k, key, finish } = await setup(t);
  const req = (m, p, body, headers) => k.request(m, p, { key, body, headers });

  // A phone that agreed through the site earlier, withdrawn by the CRM's "no".
  let r = await req('PUT', '/v1/consents/79161230003', { source: 'site-form' });
  assert.equal(r.status, 201, r.text);

  const base = [
    'phone,name,consent,consent_source,consent_at',
    '79161230001,Анна,yes,crm-form,2026-10-01T09:00:00Z',
    '79161230002,Борис,,,',
    '79161230003,Вера,no,,',
    '79161230004,Глеб,да,,',
  ].join('\n') + '\n';
  r = await req('POST', '/v1/contacts/import?list=base', base, { 'content-type': 'text/csv' });
  assert.equal(r.status, 202, r.text);
  let imp;
  await waitUntil(async () => {
    imp = (await req('GET', `/v1/imports/${r.json.id}`)).json;
    return imp.status !== 'running';
  }, 'the import to end', 30000, 50);
  assert.equal(imp.status, 'done', JSON.stringify(imp));
  assert.equal(imp.created, 4);

  r = await req('GET', '/v1/consents/79161230001');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.current, true);
  assert.equal(r.json.consents.length, 1);
  assert.equal(r.json.consents[0].source, 'crm-form');
  assert.equal(r.json.consents[0].at, '2026-10-01T09:00:00.000Z');
  assert.equal(r.json.consents[0].channel, 'all');
  r = await req('GET', '/v1/consents/79161230004');
  assert.equal(r.json.consents[0].source, 'import', 'the default source');
  r = await req('GET', '/v1/consents/79161230002');
  assert.equal(r.status, 404, 'no column value: no record');
  r = await req('GET', '/v1/consents/79161230003');
  assert.equal(r.json.current, false);
  assert.equal(r.json.consents[0].withdrawn_by, 'import');

  // The contacts show it, and advertising follows.
  const want = { 79161230001: true, 79161230002: null, 79161230003: false, 79161230004: true };
  for (const [phone, consent] of Object.entries(want)) {
    r = await req('GET', `/v1/contacts/${phone}`);
    assert.equal(r.json.consent, consent, phone);
    r = await req('POST', '/v1/messages', ad(phone));
    assert.equal(r.status, consent ? 202 : 422, `${phone}: ${r.text}`);
    if (!consent) assert.equal(r.json.error.code, 'no_consent');
  }

  // The same file again records nothing twice.
  r = await req('POST', '/v1/contacts/import?list=base', base, { 'content-type': 'text/csv' });
  await waitUntil(async () => (await req('GET', `/v1/imports/${r.json.id}`)).json.status !== 'running',
    'the second import to end', 30000, 50);
  r = await req('GET', '/v1/consents/79161230001');
  assert.equal(r.json.consents.length, 1);

  // Withdrawn through the API: the contact follows.
  r = await req('DELETE', '/v1/consents/79161230004');
  assert.equal(r.status, 204, r.text);
  r = await req('GET', '/v1/contacts/79161230004');
  assert.equal(r.json.consent, false);

  // Bulk: good rows recorded, bad rows answered with line and reason.
  const bulk = [
    'phone,source,text,ip,at,channel',
    '8 (916) 123-40-01,site-form,Согласен получать рекламу,203.0.113.7,2026-11-01T10:00:00Z,',
    '+7 916 123 40 02,shop,"Согласен, и на SMS",,2026-11-02,sms',
    '79161234003,,,,,',
    '12345,site,,,,',
    '79161234005,site,,,2099-01-01,',
    '79161234006,site,,,,fax',
    '79161234007,viber-bot,,,,viber',
  ].join('\n') + '\n';
  r = await req('POST', '/v1/consents/import', bulk, { 'content-type': 'text/csv' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.recorded, 3);
  assert.equal(r.json.rejected, 4);
  assert.deepEqual(r.json.errors.map((e) => [e.line, e.reason]), [
    [4, 'missing_source'], [5, 'invalid_phone'], [6, 'invalid_at'], [7, 'invalid_channel']]);
  r = await req('GET', '/v1/consents/79161234001');
  assert.equal(r.json.consents[0].text, 'Согласен получать рекламу');
  assert.equal(r.json.consents[0].ip, '203.0.113.7');
  assert.equal(r.json.consents[0].at, '2026-11-01T10:00:00.000Z');
  r = await req('GET', '/v1/consents/79161234002');
  assert.deepEqual(r.json.channels, ['sms']);
  assert.equal(r.json.consents[0].text, 'Согласен, и на SMS');
  r = await req('POST', '/v1/messages', ad('79161234001'));
  assert.equal(r.status, 202, r.text);
  r = await req('POST', '/v1/messages', ad('79161234002'));
  assert.equal(r.status, 202, r.text);
  r = await req('POST', '/v1/messages', ad('79161234007'));
  assert.equal(r.json.error?.code, 'no_consent', 'a Viber consent does not cover SMS');
  r = await req('POST', '/v1/messages', ad('79161234003'));
  assert.equal(r.json.error?.code, 'no_consent');

  // A file that cannot be read: 422, nothing recorded.
  r = await req('POST', '/v1/consents/import', 'source,text\nsite,x\n', { 'content-type': 'text/csv' });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'invalid_csv');
  // Another account sees none of them.
  const b = await k.createAccount();
  r = await k.request('GET', '/v1/consents/79161234001', { key: b.key });
  assert.equal(r.status, 404, r.text);

  await finish();
});
