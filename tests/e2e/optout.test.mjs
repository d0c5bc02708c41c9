// Opt-out: a person's STOP by SMS (an MO from the SMSC) lists the phone on
// the account's stop-list at once, withdraws their consent and is answered
// with a confirmation on the same channel; the next advertising (and, by
// default, service) message is refused stop_listed; START removes it; HELP
// is answered. The stop-list API: put (reasons), get, page, CSV, delete;
// a second account can neither see nor change the first's list.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil } from './lib/harness.mjs';
import { sendMo } from './lib/smsc.mjs';

test('opt-out by SMS reply: stop-list, consent withdrawn, confirmation, refusal, start', { timeout: 60000 }, async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const req = (m, p, body, kk = key) => k.request(m, p, { key: kk, body });
  // advertising goes at once whatever the hour of the run
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null } }, 200);
  const P = '79161236601';
  const ad = { to: P, text: 'Скидка 20%', sender: 'KASKAD', class: 'advertising' };
  await k.call('PUT', `/v1/consents/${P}`, { key, body: { source: 'shop' } }, 201);
  const first = await k.send(key, ad);
  await k.waitStatus(key, first.id, 'sent');
  const toP = (prefix) => smsc.submits.filter((s) => s.destination_addr === P && s.text?.startsWith(prefix));

  // STOP, with spaces, case and punctuation as people write it.
  assert.equal(await sendMo(smsc, P, ' Стоп! '), 0);
  const entry = await waitUntil(async () => {
    const r = await req('GET', `/v1/stoplist/${P}`);
    return r.status === 200 ? r.json : null;
  }, 'the stop-list entry');
  assert.equal(entry.reason, 'reply');
  assert.equal(entry.channel, 'sms');
  await smsc.waitFor(() => toP('Вы отписаны').length === 1, 'the confirmation SMS');

  let r = await req('POST', '/v1/messages', ad);
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'stop_listed');
  r = await req('POST', '/v1/messages', { ...ad, class: 'service' });
  assert.equal(r.json.error?.code, 'stop_listed', 'a stop reaches service messages unless allowed');
  r = await req('GET', `/v1/consents/${P}`);
  assert.equal(r.json.current, false);
  assert.equal(r.json.consents[0].withdrawn_by, 'reply');
  r = await req('GET', `/v1/replies?from=${P}`);
  assert.equal(r.json.replies[0].text, ' Стоп! ');

  // HELP is answered; START removes the entry and is answered.
  assert.equal(await sendMo(smsc, P, 'help'), 0);
  await smsc.waitFor(() => toP('Чтобы отписаться').length === 1, 'the help SMS');
  assert.equal(await sendMo(smsc, P, 'СТАРТ'), 0);
  await waitUntil(async () => (await req('GET', `/v1/stoplist/${P}`)).status === 404, 'the entry removed');
  await smsc.waitFor(() => toP('Вы снова подписаны').length === 1, 'the start SMS');
  r = await req('POST', '/v1/messages', { ...ad, class: 'service' });
  assert.equal(r.status, 202, r.text);
  // The consent stays withdrawn: advertising needs a new one.
  r = await req('POST', '/v1/messages', ad);
  assert.equal(r.json.error?.code, 'no_consent', r.text);
  // An ordinary reply does nothing.
  assert.equal(await sendMo(smsc, P, 'стоп, а когда доставка?'), 0);
  await waitUntil(async () => (await req('GET', `/v1/replies?from=${P}`)).json.replies.length === 4, 'the reply stored');
  assert.equal((await req('GET', `/v1/stoplist/${P}`)).status, 404);
  await finish();
});

test('stop-list API: reasons, pages, CSV, accounts apart, kept over a restart', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  const req = (m, p, body, kk = key) => k.request(m, p, { key: kk, body });
  const b = await k.createAccount();
  const phones = ['79161236611', '79161236612', '79161236613'];
  let r = await req('PUT', '/v1/stoplist/8%20916%20123-66-11', {});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.phone, phones[0]);
  assert.equal(r.json.reason, 'api');
  r = await req('PUT', `/v1/stoplist/${phones[1]}`, { reason: 'complaint' });
  assert.equal(r.json.reason, 'complaint');
  r = await req('PUT', `/v1/stoplist/${phones[2]}`);
  assert.equal(r.status, 200, r.text);
  r = await req('PUT', `/v1/stoplist/${phones[2]}`, { reason: 'because' });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'invalid_reason');
  r = await req('PUT', '/v1/stoplist/abc', {});
  assert.equal(r.json.error?.code, 'invalid_phone');

  // A complaint: refused even for transactional; the message says why.
  r = await req('POST', '/v1/messages', { to: phones[1], text: 'Заказ 5 готов', sender: 'KASKAD', class: 'transactional' });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'stop_listed');
  assert.match(r.json.error.message, /complaint/);
  // It excludes the contact from everything but service messages, with no
  // stop_list_allows; a plain stop blocks service and transactional too.
  r = await req('POST', '/v1/messages', { to: phones[1], text: 'Код 4321', sender: 'KASKAD', class: 'service' });
  assert.equal(r.status, 202, r.text);
  for (const cls of ['service', 'transactional']) {
    r = await req('POST', '/v1/messages', { to: phones[0], text: 'Заказ 6 готов', sender: 'KASKAD', class: cls });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.error.code, 'stop_listed');
    assert.match(r.json.error.message, /\(api\)/);
  }

  r = await req('GET', '/v1/stoplist?limit=2');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.stoplist.map((e) => e.phone), phones.slice(0, 2));
  assert.equal(r.json.next_cursor, phones[1]);
  r = await req('GET', `/v1/stoplist?limit=2&cursor=${r.json.next_cursor}`);
  assert.deepEqual(r.json.stoplist.map((e) => e.phone), [phones[2]]);
  assert.equal(r.json.next_cursor, null);

  r = await k.request('GET', '/v1/stoplist.csv', { key });
  assert.equal(r.status, 200);
  const lines = r.text.trim().split('\n');
  assert.equal(lines[0], 'phone,reason,channel,created_at');
  assert.deepEqual(lines.slice(1).map((l) => l.split(',').slice(0, 2).join(',')),
    [`${phones[0]},api`, `${phones[1]},complaint`, `${phones[2]},api`]);

  // The second account: its own (empty) list, no access to the first's, sends freely.
  r = await req('GET', `/v1/stoplist/${phones[0]}`, undefined, b.key);
  assert.equal(r.status, 404);
  r = await req('DELETE', `/v1/stoplist/${phones[0]}`, undefined, b.key);
  assert.equal(r.status, 404);
  r = await req('GET', '/v1/stoplist', undefined, b.key);
  assert.deepEqual(r.json.stoplist, []);
  r = await k.request('GET', '/v1/stoplist.csv', { key: b.key });
  assert.equal(r.text.trim(), 'phone,reason,channel,created_at');
  r = await req('POST', '/v1/messages', { to: phones[0], text: 'Код 1', sender: 'KASKAD' }, b.key);
  assert.equal(r.status, 202, r.text);

  // Over a restart the list is read back into memory.
  await k.stopClean();
  await k.restart();
  r = await req('POST', '/v1/messages', { to: phones[0], text: 'Код 2', sender: 'KASKAD' });
  assert.equal(r.json.error?.code, 'stop_listed', r.text);
  r = await req('DELETE', `/v1/stoplist/${phones[0]}`);
  assert.equal(r.status, 204, r.text);
  r = await req('DELETE', `/v1/stoplist/${phones[0]}`);
  assert.equal(r.status, 404);
  r = await req('POST', '/v1/messages', { to: phones[0], text: 'Код 3', sender: 'KASKAD' });
  assert.equal(r.status, 202, r.text);
  await finish();
});

test('attribution: by the number the operator gave an account, else by the last message', { timeout: 60000 }, async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const req = (m, p, body, kk = key) => k.request(m, p, { key: kk, body });
  const b = await k.createAccount();
  const P = '79161236621';
  // Account A wrote to P last: an MO to a number nobody owns is A's.
  const sent = await k.send(key, { to: P, text: 'Заказ 7 готов', sender: 'KASKAD' });
  await k.waitStatus(key, sent.id, 'sent');
  assert.equal(await sendMo(smsc, P, 'Спасибо'), 0);
  let reply = await waitUntil(async () => (await req('GET', `/v1/replies?from=${P}`)).json.replies[0], 'the reply');
  assert.equal(reply.attributed_by, 'last_message');
  assert.equal(reply.in_reply_to, sent.id);

  // The operator gives the number KASKAD (and the Viber bot) to account B.
  let r = await k.request('PUT', `/v1/accounts/${b.id}/inbound`, { body: { numbers: ['KASKAD', '+7 900 000-00-01'], bots: ['viber'] } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { numbers: ['KASKAD', '79000000001'], bots: ['viber'] });
  r = await k.request('GET', `/v1/accounts/${b.id}/inbound`);
  assert.deepEqual(r.json, { numbers: ['79000000001', 'KASKAD'], bots: ['viber'] });
  r = await k.request('PUT', `/v1/accounts/${b.id}/inbound`, { body: { bots: ['icq'] } });
  assert.equal(r.json.error?.code, 'invalid_channel');
  r = await k.request('PUT', `/v1/accounts/${b.id}/inbound`, { body: { numbers: ['not a number!'] } });
  assert.equal(r.json.error?.code, 'invalid_number');
  r = await req('GET', `/v1/accounts/${b.id}/inbound`);
  assert.equal(r.status, 403, 'an account key cannot see it');

  // Now P's STOP to KASKAD is B's: B's stop-list, not A's.
  assert.equal(await sendMo(smsc, P, 'STOP'), 0);
  await waitUntil(async () => (await req('GET', `/v1/stoplist/${P}`, undefined, b.key)).status === 200, 'B lists P');
  reply = (await req('GET', `/v1/replies?from=${P}`, undefined, b.key)).json.replies[0];
  assert.equal(reply.attributed_by, 'number');
  assert.equal((await req('GET', `/v1/stoplist/${P}`)).status, 404, 'A does not');

  // Taken back: the next MO goes by the last message again, which is now
  // B's confirmation of the stop.
  await smsc.waitFor(() => smsc.submits.some((m) => m.destination_addr === P && m.text?.startsWith('Вы отписаны')), 'B\'s confirmation');
  r = await k.request('DELETE', `/v1/accounts/${b.id}/inbound`);
  assert.equal(r.status, 204, r.text);
  assert.deepEqual((await k.request('GET', `/v1/accounts/${b.id}/inbound`)).json, { numbers: [], bots: [] });
  assert.equal(await sendMo(smsc, P, 'Когда доставка?'), 0);
  reply = await waitUntil(async () => {
    const rs = (await req('GET', `/v1/replies?from=${P}`, undefined, b.key)).json.replies;
    return rs.length === 2 ? rs[0] : null;
  }, 'the second reply B gets');
  assert.equal(reply.attributed_by, 'last_message');
  assert.equal((await req('GET', `/v1/replies?from=${P}`)).json.replies.length, 1, 'A has only the first');
  await finish();
});

test('the account\'s own words, answers and stop_list_allows (GET|PUT /v1/policy)', { timeout: 60000 }, async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const req = (m, p, body, kk = key) => k.request(m, p, { key: kk, body });
  let r = await req('GET', '/v1/policy');
  assert.deepEqual(r.json.stop_words, ['STOP', 'СТОП', 'ОТПИСКА', 'ОТПИСАТЬСЯ', 'UNSUBSCRIBE']);
  assert.deepEqual(r.json.start_words, ['START', 'СТАРТ']);
  assert.deepEqual(r.json.help_words, ['HELP', 'ПОМОЩЬ']);
  assert.deepEqual(r.json.stop_list_allows, []);
  r = await req('PUT', '/v1/policy', { stop_words: 'STOP' });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.field, 'stop_words');
  r = await req('PUT', '/v1/policy', { stop_list_allows: ['advertising'] });
  assert.equal(r.json.error?.field, 'stop_list_allows');
  r = await req('PUT', '/v1/policy', {
    quiet_hours: null, stop_words: ['Хватит', 'no more'], help_text: 'Пишите СТАРТ или ХВАТИТ.',
    stop_reply: 'Больше не пишем.', stop_list_allows: ['service', 'transactional'],
  });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.stop_words, ['Хватит', 'no more']);
  assert.deepEqual(r.json.start_words, ['START', 'СТАРТ'], 'a key left out keeps its default');

  const P = '79161236631';
  const sent = await k.send(key, { to: P, text: 'Заказ 8 готов', sender: 'KASKAD' });
  await k.waitStatus(key, sent.id, 'sent');
  const toP = (prefix) => smsc.submits.filter((s) => s.destination_addr === P && s.text?.startsWith(prefix));
  assert.equal(await sendMo(smsc, P, 'STOP'), 0, 'no longer a stop word here');
  assert.equal(await sendMo(smsc, P, 'помощь'), 0);
  await smsc.waitFor(() => toP('Пишите СТАРТ').length === 1, 'the account\'s help text');
  assert.equal((await req('GET', `/v1/stoplist/${P}`)).status, 404);
  assert.equal(await sendMo(smsc, P, ' no-more!! '), 0);
  await waitUntil(async () => (await req('GET', `/v1/stoplist/${P}`)).status === 200, 'listed by the own word');
  await smsc.waitFor(() => toP('Больше не пишем.').length === 1, 'the account\'s stop reply');

  // Allowed classes go to a listed phone; advertising never does.
  r = await req('POST', '/v1/messages', { to: P, text: 'Код 1234', sender: 'KASKAD', class: 'service' });
  assert.equal(r.status, 202, r.text);
  r = await req('POST', '/v1/messages', { to: P, text: 'Заказ 9 готов', sender: 'KASKAD', class: 'transactional' });
  assert.equal(r.status, 202, r.text);
  await k.call('PUT', `/v1/consents/${P}`, { key, body: { source: 'shop' } }, 201);
  r = await req('POST', '/v1/messages', { to: P, text: 'Скидка', sender: 'KASKAD', class: 'advertising' });
  assert.equal(r.json.error?.code, 'stop_listed');
  // A complaint allows service messages only, whatever the account allows.
  r = await req('PUT', `/v1/stoplist/${P}`, { reason: 'complaint' });
  assert.equal(r.status, 200, r.text);
  r = await req('POST', '/v1/messages', { to: P, text: 'Заказ 10 готов', sender: 'KASKAD', class: 'transactional' });
  assert.equal(r.json.error?.code, 'stop_listed');
  r = await req('POST', '/v1/messages', { to: P, text: 'Код 5678', sender: 'KASKAD', class: 'service' });
  assert.equal(r.status, 202, r.text);
  await finish();
});

test('stop-list import: a CSV of phones with reasons, rows refused reported, all or nothing', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  const csv = (body) => k.request('POST', '/v1/stoplist/import', { key, body, headers: { 'content-type': 'text/csv' } });
  const P = ['79161236641', '79161236642', '79161236643'];
  await k.call('PUT', `/v1/consents/${P[0]}`, { key, body: { source: 'shop' } }, 201);
  let r = await csv(`Phone;Reason\n+7 916 123-66-41;\n8 (916) 123-66-42;complaint\nnot a phone;\n${P[2]};because\n`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.listed, 2);
  assert.equal(r.json.rejected, 2);
  assert.deepEqual(r.json.errors.map((e) => [e.line, e.reason]), [[4, 'invalid_phone'], [5, 'invalid_reason']]);
  r = await k.request('GET', `/v1/stoplist/${P[0]}`, { key });
  assert.equal(r.json.reason, 'import');
  r = await k.request('GET', `/v1/stoplist/${P[1]}`, { key });
  assert.equal(r.json.reason, 'complaint');
  assert.equal((await k.request('GET', `/v1/stoplist/${P[2]}`, { key })).status, 404);
  r = await k.request('GET', `/v1/consents/${P[0]}`, { key });
  assert.equal(r.json.current, false, 'an imported opt-out withdraws the consent');
  assert.equal(r.json.consents[0].withdrawn_by, 'import');

  // Unreadable, or over the bound: nothing at all is listed.
  r = await csv('name\nИван\n');
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'invalid_csv');
  const many = ['phone', ...Array.from({ length: 5001 }, (_, i) => `7916${String(2000000 + i).padStart(7, '0')}`)].join('\n');
  r = await csv(many);
  assert.equal(r.status, 413, r.text);
  assert.equal(r.json.error.code, 'too_many_rows');
  r = await k.request('GET', '/v1/stoplist', { key });
  assert.equal(r.json.stoplist.length, 2);
  r = await k.request('POST', '/v1/messages', { key, body: { to: P[0], text: 'Код 1', sender: 'KASKAD' } });
  assert.equal(r.json.error?.code, 'stop_listed');
  await finish();
});

test('the unsubscribe link: GET only asks, POST lists the phone (reason link); an unknown code is 404', { timeout: 60000 }, async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const req = (m, p, body) => k.request(m, p, { key, body });
  await k.call('PUT', '/v1/policy', { key, body: { quiet_hours: null } }, 200);
  const P = '79161236651';
  await k.call('PUT', `/v1/consents/${P}`, { key, body: { source: 'shop' } }, 201);
  const m = await k.send(key, { to: P, text: 'Sale 20%. Unsubscribe: {{unsubscribe}}', sender: 'KASKAD', class: 'advertising' });
  await k.waitStatus(key, m.id, 'sent');
  const sms = smsc.submits.find((s) => s.destination_addr === P);
  const link = /(\/u\/[a-z2-7]{32})$/.exec(sms.text);
  assert.ok(link, sms.text);
  assert.ok(sms.text.startsWith('Sale 20%. Unsubscribe: http'), sms.text);
  // The same phone gets the same link; another phone another one.
  const m2 = await k.send(key, { to: '79161236652', text: '{{unsubscribe}}', sender: 'KASKAD' });
  await k.waitStatus(key, m2.id, 'sent');
  assert.notEqual(smsc.submits.find((s) => s.destination_addr === '79161236652').text.slice(-32), link[1].slice(-32));
  // In a template, each channel's text gets the same link.
  await k.call('PUT', '/v1/templates/sale', { key, body: { text: '{{name|Client}}, sale. Stop: {{unsubscribe}}' } }, 200);
  const m3 = await k.send(key, { to: P, template: 'sale', sender: 'KASKAD', class: 'advertising' });
  await k.waitStatus(key, m3.id, 'sent');
  const viaTpl = smsc.submits.filter((s) => s.destination_addr === P).at(-1).text;
  assert.equal(viaTpl, `Client, sale. Stop: ${sms.text.slice(sms.text.indexOf('http'))}`);

  // A preview or a scanner fetching the link changes nothing.
  let r = await k.request('GET', link[1], { key: null });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.match(r.text, /<form method="post" action="\/u\/[a-z2-7]{32}">/);
  assert.equal((await req('GET', `/v1/stoplist/${P}`)).status, 404);
  assert.equal((await k.request('GET', `/u/${'a'.repeat(32)}`, { key: null })).status, 404);
  assert.equal((await k.request('GET', '/u/short', { key: null })).status, 404);
  assert.equal((await k.request('POST', `/u/${'b'.repeat(32)}`, { key: null, body: '', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 404);

  // The form's POST (or a one-click POST, RFC 8058) lists the phone.
  r = await k.request('POST', link[1], { key: null, body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /отписаны/);
  r = await req('GET', `/v1/stoplist/${P}`);
  assert.equal(r.json.reason, 'link');
  r = await req('GET', `/v1/consents/${P}`);
  assert.equal(r.json.current, false);
  assert.equal(r.json.consents[0].withdrawn_by, 'link');
  r = await req('POST', '/v1/messages', { to: P, text: 'Скидка 30%', sender: 'KASKAD', class: 'advertising' });
  assert.equal(r.json.error?.code, 'stop_listed');
  await finish();
});
