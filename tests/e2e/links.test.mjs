// Tracked links end to end: a campaign whose template has links sends
// each recipient short links of its own ({public_url}/r/{code}); a GET of
// one answers 302 to the target with the UTM tags added (the link's own
// utm_* kept, the fragment after the query); the report counts the clicks
// (two clicks of one code: one unique) and the conversions; another
// account cannot convert the first one's message; an unknown code is 404.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { setup, waitUntil } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

/** A GET with Node's own HTTP client, redirects not followed. */
function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
  });
}

/** The whole text of each number's SMS, its parts joined: {phone: text}. */
function smsTexts(smsc) {
  const parts = {};
  for (const s of smsc.submits) {
    const to = s.destination_addr;
    (parts[to] ??= []).push(s);
  }
  const out = {};
  for (const [to, list] of Object.entries(parts)) {
    const total = list[0].concat ? list[0].concat.total : 1;
    if (list.length < total) continue;
    list.sort((a, b) => (a.concat?.seq ?? 1) - (b.concat?.seq ?? 1));
    out[to] = list.map((s) => s.text).join('');
  }
  return out;
}

const PHONES = ['79162000001', '79162000002', '79162000003'];

test('links: short links per recipient, 302 with UTM tags, clicks and conversions counted', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  await k.call('PUT', '/v1/templates/promo', {
    key,
    body: { text: 'Скидки (до 50%) на https://shop.example.ru/sale?ref=sms&utm_source=own#top, новинки: http://shop.example.ru/new!' },
  }, 200);
  await k.call('PUT', '/v1/campaigns/spring', { key, body: { audience: { phones: PHONES }, template: 'promo', class: 'service' } }, 200);
  await k.call('POST', '/v1/campaigns/spring/start', { key }, 200);
  await waitUntil(async () => (await k.call('GET', '/v1/campaigns/spring', { key }, 200)).status === 'done', 'the campaign to be done', 60000, 100);
  const texts = await waitUntil(() => {
    const t = smsTexts(smsc);
    return Object.keys(t).length === 3 ? t : null;
  }, 'three whole SMS', 30000, 50);

  // Each SMS carries two short links of its own and none of the targets.
  const re = new RegExp(`${k.url.replace(/[.]/g, '\\.')}/r/([0-9A-Za-z]{12})`, 'g');
  const byPhone = {};
  for (const [to, text] of Object.entries(texts)) {
    assert.ok(!/shop\.example\.ru/.test(text), text);
    const codes = [...text.matchAll(re)].map((m) => m[1]);
    assert.equal(codes.length, 2, text);
    assert.match(text, /^Скидки \(до 50%\) на http:\/\/\S+\/r\/\w{12}, новинки: http:\/\/\S+\/r\/\w{12}!$/);
    byPhone[to] = codes;
  }
  assert.deepEqual(Object.keys(byPhone).sort(), PHONES);
  const all = Object.values(byPhone).flat();
  assert.equal(new Set(all).size, 6, 'one code per recipient and link');

  // The first link: 302 to the target, its own utm_source kept, the fragment last.
  const [sale, fresh] = byPhone[PHONES[0]];
  let r = await get(`${k.url}/r/${sale}`, { 'user-agent': 'TestPhone/1.0' });
  assert.equal(r.status, 302, r.body);
  assert.equal(r.headers.location, 'https://shop.example.ru/sale?ref=sms&utm_source=own&utm_medium=sms&utm_campaign=spring#top');
  r = await get(`${k.url}/r/${sale}`);
  assert.equal(r.status, 302);
  r = await get(`${k.url}/r/${fresh}`);
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, 'http://shop.example.ru/new?utm_source=kaskad&utm_medium=sms&utm_campaign=spring');
  // Unknown codes: a plain page.
  r = await get(`${k.url}/r/AAAAAAAAAAAA`);
  assert.equal(r.status, 404);
  assert.match(r.headers['content-type'], /text\/html/);
  assert.equal((await get(`${k.url}/r/short`)).status, 404);

  // The report counts three clicks, two unique (two of one code count once).
  const rep = await waitUntil(async () => {
    const x = await k.call('GET', '/v1/campaigns/spring/report', { key }, 200);
    return x.clicks && x.clicks.clicked === 3 ? x : null;
  }, 'the clicks in the report', 20000, 100);
  assert.equal(rep.clicks.clicked_unique, 2);
  assert.equal(rep.clicks.by_channel.sms.clicked, 3);
  assert.equal(rep.clicks.by_channel.sms.clicked_unique, 2);
  assert.equal(rep.clicks.by_variant['0'].clicked, 3);
  assert.equal(rep.clicks.converted, 0);
  // The export shows each recipient's clicks.
  const csv = (await k.request('GET', '/v1/campaigns/spring/recipients.csv', { key })).text.trim().split('\n');
  const clicksOf = (phone) => csv.find((l) => l.startsWith(`${phone},`)).split(',')[10];
  assert.equal(clicksOf(PHONES[0]), '3');
  assert.equal(clicksOf(PHONES[1]), '0');

  // Conversions: by message and by phone and campaign.
  const rcpts = (await k.call('GET', '/v1/campaigns/spring/recipients', { key }, 200)).recipients;
  const first = rcpts.find((x) => x.phone === PHONES[0]);
  let c = await k.call('POST', '/v1/conversions', { key, body: { message: first.message, value: 1500 } }, 201);
  assert.equal(c.campaign, 'spring');
  assert.equal(c.phone, PHONES[0]);
  assert.equal(c.variant, 0);
  c = await k.call('POST', '/v1/conversions', { key, body: { phone: `+${PHONES[1]}`, campaign: 'spring', value: 99.5 } }, 201);
  assert.equal(c.message, rcpts.find((x) => x.phone === PHONES[1]).message);
  // Unknown message, unknown recipient, bad value.
  r = await k.request('POST', '/v1/conversions', { key, body: { message: 'msg_nope' } });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'unknown_message');
  r = await k.request('POST', '/v1/conversions', { key, body: { phone: '79169999999', campaign: 'spring' } });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'unknown_recipient');
  r = await k.request('POST', '/v1/conversions', { key, body: { message: first.message, value: -1 } });
  assert.equal(r.status, 422);
  // Another account sees nothing of this one's messages.
  const other = await k.createAccount();
  r = await k.request('POST', '/v1/conversions', { key: other.key, body: { message: first.message } });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'unknown_message');
  r = await k.request('POST', '/v1/conversions', { key: other.key, body: { phone: PHONES[0], campaign: 'spring' } });
  assert.equal(r.status, 404);

  let after = await k.call('GET', '/v1/campaigns/spring/report', { key }, 200);
  assert.equal(after.clicks.converted, 2);
  assert.equal(after.clicks.value, 1599.5);
  assert.equal(after.clicks.by_variant['0'].converted, 2);
  assert.equal(after.clicks.clicked, 3);

  // A burst of clicks on another recipient's link: every one redirected
  // (lookups wait their turn), every one counted, one of them unique.
  const [other3] = byPhone[PHONES[2]];
  const burst = await Promise.all(Array.from({ length: 60 }, () => get(`${k.url}/r/${other3}`)));
  assert.deepEqual([...new Set(burst.map((x) => x.status))], [302]);
  after = await waitUntil(async () => {
    const x = await k.call('GET', '/v1/campaigns/spring/report', { key }, 200);
    return x.clicks.clicked === 63 ? x : null;
  }, 'the burst counted', 20000, 100);
  assert.equal(after.clicks.clicked_unique, 3);
  await finish();
});

async function world(t) {
  return setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 } });
}

/** A simulator with config, kaskad's channels pointed at it. */
async function simFor(t, k, config) {
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config(config);
  await pointChannelsAtSim(k, sim);
  return sim;
}

/** The simulator's requests on channel once there is one. */
function sentOn(sim, channel) {
  return waitUntil(async () => {
    const r = await sim.requests(channel);
    return r.length >= 1 ? r : null;
  }, `the ${channel} message`, 30000, 50);
}

/** Imports csv into the list and waits for the import to be done. */
async function importList(k, key, list, csv) {
  const imp = await k.request('POST', `/v1/contacts/import?list=${list}&country=RU`, {
    key, body: Buffer.from(csv), headers: { 'content-type': 'text/csv' },
  });
  assert.equal(imp.status, 202, imp.text);
  await waitUntil(async () => (await k.call('GET', `/v1/imports/${imp.json.id}`, { key }, 200)).status === 'done', 'the import', 30000, 50);
}

test('links: each channel of a cascade has its own code, and the click knows its channel', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  const sim = await simFor(t, k, { vk: { reach: 1, read: 0, deliver_ms: [20, 20] } });
  await importList(k, key, 'vkbase', 'phone,vk_id\n79163000001,5001\n');
  await k.call('PUT', '/v1/templates/both', {
    key, body: { text: 'Sale: https://shop.example.ru/a', channels: { sms: { text: 'SMS sale: https://shop.example.ru/a' } } },
  }, 200);
  await k.call('PUT', '/v1/campaigns/casc', {
    key,
    body: { audience: { list: 'vkbase' }, template: 'both', class: 'service',
      cascade: [{ channel: 'vk', wait: 'read', timeout: '2s' }, { channel: 'sms', wait: 'delivered' }] },
  }, 200);
  await k.call('POST', '/v1/campaigns/casc/start', { key }, 200);
  const vk = await sentOn(sim, 'vk');
  const vkText = new URLSearchParams(vk[0].body).get('message');
  const vkCode = /\/r\/([0-9A-Za-z]{12})$/.exec(vkText)?.[1];
  assert.ok(vkCode, vkText);
  assert.match(vkText, /^Sale: http:\/\/\S+\/r\/\w{12}$/);
  const sms = await waitUntil(() => smsTexts(smsc)['79163000001'], 'the SMS after VK', 30000, 50);
  const smsCode = /\/r\/([0-9A-Za-z]{12})$/.exec(sms)?.[1];
  assert.ok(smsCode, sms);
  assert.notEqual(vkCode, smsCode);
  let r = await get(`${k.url}/r/${vkCode}`);
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, 'https://shop.example.ru/a?utm_source=kaskad&utm_medium=vk&utm_campaign=casc');
  r = await get(`${k.url}/r/${smsCode}`);
  assert.equal(r.headers.location, 'https://shop.example.ru/a?utm_source=kaskad&utm_medium=sms&utm_campaign=casc');
  const rep = await waitUntil(async () => {
    const x = await k.call('GET', '/v1/campaigns/casc/report', { key }, 200);
    return x.clicks.clicked === 2 ? x : null;
  }, 'both clicks counted', 20000, 100);
  assert.equal(rep.clicks.by_channel.vk.clicked_unique, 1);
  assert.equal(rep.clicks.by_channel.sms.clicked_unique, 1);
  await finish();
});

/** A HEAD with Node's own HTTP client. */
function head(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'HEAD', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

test('links: a link preview is redirected but is not a click; a browser is', { timeout: 120000 }, async (t) => {
  const { k, key, smsc, finish } = await world(t);
  const PHONE = '79164000001';
  await k.call('PUT', '/v1/templates/card', { key, body: { text: 'Новинки: https://shop.example.ru/new' } }, 200);
  await k.call('PUT', '/v1/campaigns/cards', { key, body: { audience: { phones: [PHONE] }, template: 'card', class: 'service' } }, 200);
  await k.call('POST', '/v1/campaigns/cards/start', { key }, 200);
  const text = await waitUntil(() => smsTexts(smsc)[PHONE], 'the SMS', 30000, 50);
  const code = /\/r\/([0-9A-Za-z]{12})$/.exec(text)?.[1];
  assert.ok(code, text);
  const target = 'https://shop.example.ru/new?utm_source=kaskad&utm_medium=sms&utm_campaign=cards';
  const report = () => k.call('GET', '/v1/campaigns/cards/report', { key }, 200);

  // Messengers drawing the card: each redirected where a person would go.
  const previews = [
    'TelegramBot (like TwitterBot)',
    'WhatsApp/2.23.20.0 A',
    'Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)',
    'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
    'Viber/21.6.0 CFNetwork/1410.0.3 Darwin/22.6.0',
  ];
  for (const ua of previews) {
    const r = await get(`${k.url}/r/${code}`, { 'user-agent': ua });
    assert.equal(r.status, 302, ua);
    assert.equal(r.headers.location, target, ua);
  }
  const h = await head(`${k.url}/r/${code}`, { 'user-agent': 'Mozilla/5.0 (Windows NT 10.0) Firefox/120.0' });
  assert.equal(h.status, 302);
  assert.equal(h.headers.location, target);
  let rep = await waitUntil(async () => {
    const x = await report();
    return x.clicks.previews === previews.length + 1 ? x : null;
  }, 'the previews counted', 20000, 100);
  assert.equal(rep.clicks.clicked, 0);
  assert.equal(rep.clicks.clicked_unique, 0);
  assert.equal(rep.clicks.by_channel.sms.previews, previews.length + 1);
  assert.equal(rep.clicks.by_channel.sms.clicked, 0);
  const clicksOf = async () => (await k.request('GET', '/v1/campaigns/cards/recipients.csv', { key })).text
    .trim().split('\n').find((l) => l.startsWith(`${PHONE},`)).split(',')[10];
  assert.equal(await clicksOf(), '0');

  // A person's browser: a click, the first one unique.
  const r = await get(`${k.url}/r/${code}`, { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1' });
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, target);
  rep = await waitUntil(async () => {
    const x = await report();
    return x.clicks.clicked === 1 ? x : null;
  }, 'the click counted', 20000, 100);
  assert.equal(rep.clicks.clicked_unique, 1);
  assert.equal(rep.clicks.previews, previews.length + 1);
  assert.equal(await clicksOf(), '1');
  await finish();
});

test('links: the Viber button is a tracked link of its own, counted as Viber', { timeout: 120000 }, async (t) => {
  const { k, key, finish } = await world(t);
  const sim = await simFor(t, k, { viber: { reach: 1, read: 0, deliver_ms: [20, 20] } });
  await importList(k, key, 'vbbase', 'phone,viber_id\n79165000001,vb-btn-1\n');
  await k.call('PUT', '/v1/templates/vbtn', {
    key,
    body: {
      text: 'Sale: https://shop.example.ru/a',
      channels: { viber: { text: 'Viber sale', image: 'https://img.example.ru/p.png', button: { caption: 'Купить', url: 'https://shop.example.ru/buy?id=7' } } },
    },
  }, 200);
  await k.call('PUT', '/v1/campaigns/vbc', {
    key,
    body: { audience: { list: 'vbbase' }, template: 'vbtn', class: 'service',
      cascade: [{ channel: 'viber', wait: 'delivered', timeout: '30s' }, { channel: 'sms' }] },
  }, 200);
  await k.call('POST', '/v1/campaigns/vbc/start', { key }, 200);
  const sent = await sentOn(sim, 'viber');
  const body = JSON.parse(sent[0].body);
  const text = JSON.stringify(body);
  assert.ok(!text.includes('shop.example.ru'), text);
  const urls = [...text.matchAll(/http:\/\/[^"]+\/r\/([0-9A-Za-z]{12})/g)].map((m) => m[1]);
  assert.equal(new Set(urls).size, 1, text);
  const code = urls[0];
  const r = await get(`${k.url}/r/${code}`, { 'user-agent': 'Mozilla/5.0 (Linux; Android 13) Chrome/119.0 Mobile' });
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, 'https://shop.example.ru/buy?id=7&utm_source=kaskad&utm_medium=viber&utm_campaign=vbc');
  const rep = await waitUntil(async () => {
    const x = await k.call('GET', '/v1/campaigns/vbc/report', { key }, 200);
    return x.clicks.clicked === 1 ? x : null;
  }, 'the click counted', 20000, 100);
  assert.equal(rep.clicks.by_channel.viber.clicked_unique, 1);
  await finish();
});
