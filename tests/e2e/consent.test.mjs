// Consent with proof: PUT /v1/consents/{phone} records who agreed, where,
// to what text, from which IP, when; GET shows the records (withdrawn ones
// stay as proof); DELETE withdraws; advertising to a phone without a
// current consent is refused no_consent (service messages are not); a
// consent for one channel covers that channel only; GET /v1/consents.csv
// for a regulator; another account sees none of it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';

test('consents: recorded with proof, withdrawn, advertising refused without one', async (t) => {
  const { k, key, finish } = await setup(t);
  const req = (m, p, body, kk = key) => k.request(m, p, { key: kk, body });
  const P = '79161237701';
  const ad = { to: P, text: 'Скидка 20% до пятницы', sender: 'KASKAD', class: 'advertising' };

  let r = await req('POST', '/v1/messages', ad);
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'no_consent');
  assert.equal(r.json.error.field, 'to');
  // A service message needs no consent.
  r = await req('POST', '/v1/messages', { ...ad, class: 'service', text: 'Ваш код 1234' });
  assert.equal(r.status, 202, r.text);

  r = await req('GET', `/v1/consents/${P}`);
  assert.equal(r.status, 404, r.text);

  r = await req('PUT', '/v1/consents/8%20916%20123-77-01', {
    source: 'site-form', text: 'Согласен получать рекламу', ip: '203.0.113.7', at: '2026-11-01T10:00:00Z',
  });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.phone, P);
  assert.equal(r.json.channel, 'all');
  assert.equal(r.json.source, 'site-form');
  assert.equal(r.json.text, 'Согласен получать рекламу');
  assert.equal(r.json.ip, '203.0.113.7');
  assert.equal(r.json.at, '2026-11-01T10:00:00.000Z');
  assert.ok(Date.parse(r.json.recorded_at) > 0);
  assert.equal(r.json.withdrawn_at, null);

  r = await req('POST', '/v1/messages', ad);
  assert.equal(r.status, 202, r.text);

  r = await req('GET', `/v1/consents/${P}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.current, true);
  assert.deepEqual(r.json.channels, ['all']);
  assert.equal(r.json.consents.length, 1);

  // Another account: sees nothing, cannot withdraw, and its advertising is refused.
  const b = await k.createAccount();
  r = await req('GET', `/v1/consents/${P}`, undefined, b.key);
  assert.equal(r.status, 404, r.text);
  r = await req('DELETE', `/v1/consents/${P}`, undefined, b.key);
  assert.equal(r.status, 404, r.text);
  r = await req('POST', '/v1/messages', ad, b.key);
  assert.equal(r.json.error?.code, 'no_consent', r.text);
  r = await k.request('GET', '/v1/consents.csv', { key: b.key });
  assert.equal(r.status, 200);
  assert.equal(r.text.trim().split('\n').length, 1, 'only the header');

  // Withdrawn: refused again; the record stays with when and by whom.
  r = await req('DELETE', `/v1/consents/${P}`);
  assert.equal(r.status, 204, r.text);
  r = await req('DELETE', `/v1/consents/${P}`);
  assert.equal(r.status, 404, r.text);
  r = await req('POST', '/v1/messages', ad);
  assert.equal(r.json.error?.code, 'no_consent', r.text);
  r = await req('GET', `/v1/consents/${P}`);
  assert.equal(r.json.current, false);
  assert.equal(r.json.consents[0].withdrawn_by, 'api');
  assert.ok(Date.parse(r.json.consents[0].withdrawn_at) > 0);

  // A consent for Viber alone: a Viber-first cascade passes, SMS alone does not.
  r = await req('PUT', `/v1/consents/${P}`, { source: 'viber-bot', channel: 'viber' });
  assert.equal(r.status, 201, r.text);
  r = await req('POST', '/v1/messages', ad);
  assert.equal(r.json.error?.code, 'no_consent', r.text);
  r = await req('POST', '/v1/messages', {
    ...ad, viber_id: 'u1', cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
  });
  assert.equal(r.status, 202, r.text);

  // The regulator's export: every record, the withdrawn one too.
  r = await k.request('GET', '/v1/consents.csv', { key });
  assert.equal(r.status, 200);
  const lines = r.text.trim().split('\n');
  assert.equal(lines[0], 'id,phone,channel,source,text,ip,at,recorded_at,withdrawn_at,withdrawn_by');
  assert.equal(lines.length, 3, r.text);
  assert.match(lines[1], /^\d+,79161237701,all,site-form,Согласен получать рекламу,203\.0\.113\.7,2026-11-01T10:00:00\.000Z,[^,]+,[^,]+,api$/);
  assert.match(lines[2], /,viber,viber-bot,/);

  // Bad input.
  for (const [body, code, field] of [
    [{}, 'missing_field', 'source'], [{ source: 'x', channel: 'fax' }, 'invalid_channel', 'channel'],
    [{ source: 'x', at: 'yesterday' }, 'invalid_time', 'at'], [{ source: 7 }, 'invalid_field', 'source'],
  ]) {
    r = await req('PUT', `/v1/consents/${P}`, body);
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.error.code, code);
    assert.equal(r.json.error.field, field);
  }
  r = await req('PUT', '/v1/consents/abc', { source: 'x' });
  assert.equal(r.json.error?.code, 'invalid_phone');

  // After a restart the consents are read back into memory.
  await k.stopClean();
  await k.restart();
  r = await req('POST', '/v1/messages', {
    ...ad, viber_id: 'u1', cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }],
  });
  assert.equal(r.status, 202, r.text);
  r = await req('POST', '/v1/messages', ad);
  assert.equal(r.json.error?.code, 'no_consent', r.text);
  await finish();
});
