// Templates end to end: put, list, preview (encoding, segments, cost, lint),
// sends by template over SMS (an independent SMSC) and over a VK -> SMS
// cascade with the simulator, missing_variable, idempotency with a template.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

const PHONE = '79161234567';

const PROMO = {
  text: 'Здравствуйте, {{name|клиент}}! Код {{code}}',
  channels: {
    sms: { text: '{{name|Client}}, code {{code}}' },
    vk: { text: 'VK:{{name|friend}}-{{code}}' },
    viber: { text: 'Viber {{code}}', image: 'https://img.example/{{code}}.png',
      button: { caption: 'Open', url: 'https://shop.example/{{code}}' } },
    email: { subject: 'Code {{code}}', body: '<p>{{code}}</p>' },
  },
};

test('templates: put, list, get, refuse a broken placeholder with its position, delete', async (t) => {
  const { k, key, finish } = await setup(t);
  const put = await k.call('PUT', '/v1/templates/promo', { key, body: PROMO }, 200);
  assert.equal(put.name, 'promo');
  assert.equal(put.channels.sms.text, PROMO.channels.sms.text);
  assert.ok(put.created_at && put.updated_at);
  await k.call('PUT', '/v1/templates/otp', { key, body: { text: 'Code {{code}}' } }, 200);
  const list = await k.call('GET', '/v1/templates', { key }, 200);
  assert.deepEqual(list.templates.map((x) => x.name), ['otp', 'promo']);
  const got = await k.call('GET', '/v1/templates/promo', { key }, 200);
  assert.deepEqual(got.channels, PROMO.channels);

  let r = await k.request('PUT', '/v1/templates/bad', { key,
    body: { text: 'ok', channels: { sms: { text: 'Hi {{name' } } } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'invalid_template');
  assert.equal(r.json.error.field, 'channels.sms.text');
  assert.equal(r.json.error.position, 3);
  r = await k.request('PUT', '/v1/templates/bad', { key, body: { text: 'x', channels: { fax: { text: 'x' } } } });
  assert.equal(r.status, 422);
  r = await k.request('PUT', '/v1/templates/no%20way', { key, body: { text: 'x' } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'invalid_name');
  r = await k.request('GET', '/v1/templates/bad', { key });
  assert.equal(r.status, 404);

  await k.call('DELETE', '/v1/templates/otp', { key }, 204);
  r = await k.request('GET', '/v1/templates/otp', { key });
  assert.equal(r.status, 404);
  // kept across a restart
  await k.stop();
  await k.start();
  const again = await k.call('GET', '/v1/templates', { key }, 200);
  assert.deepEqual(again.templates.map((x) => x.name), ['promo']);
  await finish();
});

test('preview: per channel text, chars, encoding, segments, cost and lint', async (t) => {
  const { k, key, finish } = await setup(t);
  await k.call('PUT', '/v1/prices', { body: { prices: { sms: 2.5, vk: 0.1 } } }, 200);
  await k.call('PUT', '/v1/templates/promo', { key, body: PROMO }, 200);
  const p = await k.call('POST', '/v1/templates/promo/preview', { key, body: { vars: { name: 'Анна', code: 4711 } } }, 200);
  assert.equal(p.channels.sms.text, 'Анна, code 4711');
  assert.equal(p.channels.sms.encoding, 'ucs2');
  assert.equal(p.channels.sms.segments, 1);
  assert.equal(p.channels.sms.chars, 15);
  assert.equal(p.channels.sms.cost, 2.5);
  assert.ok(p.channels.sms.lint.some((l) => l.code === 'no_default'), JSON.stringify(p.channels.sms.lint));
  assert.equal(p.channels.vk.text, 'VK:Анна-4711');
  assert.equal(p.channels.vk.cost, 0.1);
  assert.equal(p.channels.viber.button.url, 'https://shop.example/4711');
  assert.equal(p.channels.email.subject, 'Code 4711');
  assert.equal(p.channels.email.text, '<p>4711</p>');
  assert.equal(p.channels.telegram.text, 'Здравствуйте, Анна! Код 4711');
  // a long Latin text with one Cyrillic letter: UCS-2 forced, 3 segments
  await k.call('PUT', '/v1/templates/long', { key, body: { text: `${'a'.repeat(150)} {{w|ё}}` } }, 200);
  const l = await k.call('POST', '/v1/templates/long/preview', { key, body: {} }, 200);
  assert.equal(l.channels.sms.encoding, 'ucs2');
  assert.equal(l.channels.sms.segments, 3);
  assert.equal(l.channels.sms.cost, 7.5);
  assert.ok(l.channels.sms.lint.some((x) => x.code === 'ucs2_forced'), JSON.stringify(l.channels.sms.lint));
  // a missing variable is that channel's error
  const m = await k.call('POST', '/v1/templates/promo/preview', { key, body: { vars: { name: 'A' } } }, 200);
  assert.equal(m.channels.sms.error.code, 'missing_variable');
  assert.equal(m.channels.sms.error.variable, 'code');
  // no body at all is an empty one; a wrong class or sender is refused as a send refuses it
  const e = await k.request('POST', '/v1/templates/long/preview', { key });
  assert.equal(e.status, 200, e.text);
  assert.equal(e.json.channels.sms.segments, 3);
  for (const [body, code] of [[{ class: 'weird' }, 'invalid_class'], [{ class: 7 }, 'invalid_class'],
    [{ sender: 'WAYTOOLONGSENDERNAME' }, 'invalid_sender'], [{ sender: 7 }, 'invalid_sender']]) {
    const r = await k.request('POST', '/v1/templates/long/preview', { key, body });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.error.code, code, r.text);
  }
  // the same lint says the same words on every channel
  await k.call('PUT', '/v1/templates/one', { key, body: { text: 'Hi {{name}}', channels: { vk: { text: 'Hi {{name}}' } } } }, 200);
  const o = await k.call('POST', '/v1/templates/one/preview', { key, body: { vars: { name: 'A' } } }, 200);
  const words = (ch) => o.channels[ch].lint.filter((x) => x.code === 'no_default').map((x) => x.text);
  assert.deepEqual(words('sms'), ['{{name}} has no default: a recipient without it is refused']);
  assert.deepEqual(words('vk'), words('sms'));
  await finish();
});

test('send by template over SMS: rendered, missing_variable refused, idempotent', async (t) => {
  const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 } });
  await k.call('PUT', '/v1/templates/promo', { key, body: PROMO }, 200);
  const m = await k.send(key, { to: PHONE, template: 'promo', vars: { name: 'Anna', code: '4711' } });
  await k.waitStatus(key, m.id, 'delivered');
  assert.deepEqual(smsc.submits.map((s) => s.text), ['Anna, code 4711']);
  // hostile values stay as written
  const h = await k.send(key, { to: PHONE, template: 'promo', vars: { name: '{{code}}', code: '1' } });
  await k.waitStatus(key, h.id, 'delivered');
  assert.equal(smsc.submits[1].text, '{{code}}, code 1');

  let r = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, template: 'promo', vars: { name: 'A' } } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'missing_variable');
  assert.match(r.json.error.message, /"code"/);
  r = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, template: 'nope' } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'unknown_template');
  r = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, template: 'promo', vars: [] } });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'invalid_vars');
  // a batch: one refused, one stored
  const b = await k.call('POST', '/v1/messages/batch', { key, body: { messages: [
    { to: PHONE, template: 'promo', vars: {} }, { to: PHONE, template: 'promo', vars: { code: 9 } }] } }, 202);
  assert.equal(b.results[0].error.code, 'missing_variable');
  await k.waitStatus(key, b.results[1].id, 'delivered');
  assert.equal(smsc.submits[2].text, 'Client, code 9');

  // idempotency: the same key and template answer the same message
  const body = { to: PHONE, template: 'promo', vars: { code: '77' }, idempotency_key: 'tpl-1' };
  const i1 = await k.send(key, body);
  const i2 = await k.request('POST', '/v1/messages', { key, body });
  assert.ok([200, 202].includes(i2.status), i2.text);
  assert.equal(i2.json.id, i1.id);
  const i3 = await k.request('POST', '/v1/messages', { key, body: { ...body, vars: { code: '78' } } });
  assert.equal(i3.status, 422, i3.text);
  assert.equal(i3.json.error.code, 'idempotency_mismatch');
  await k.waitStatus(key, i1.id, 'delivered');
  assert.equal(smsc.submits.filter((s) => s.text === 'Client, code 77').length, 1);
  await finish();
});

test('send by template over a VK -> SMS cascade: each channel its own variant', { timeout: 60000 }, async (t) => {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 } });
  const { k, key, smsc, finish } = env;
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ vk: { reach: 1, read: 0, deliver_ms: [20, 20] } });
  await pointChannelsAtSim(k, sim);
  await k.call('PUT', '/v1/templates/promo', { key, body: PROMO }, 200);
  const m = await k.send(key, {
    to: PHONE, vk_id: '1001', template: 'promo', vars: { name: 'Anna', code: '4711' },
    cascade: [{ channel: 'vk', wait: 'read', timeout: '2s' }, { channel: 'sms', wait: 'delivered' }],
  });
  const done = await k.waitStatus(key, m.id, 'delivered', 20000);
  assert.deepEqual(done.attempts.map((a) => a.channel), ['vk', 'sms']);
  const vk = await sim.requests('vk');
  assert.equal(vk.length, 1);
  assert.match(vk[0].body, /message=VK%3AAnna-4711&/);
  assert.deepEqual(smsc.submits.map((s) => s.text), ['Anna, code 4711']);
  await finish();
});

test('preview: the content rules give an advisory lint with the category', async (t) => {
  const { k, key, finish } = await setup(t);
  const lintOf = async (name, body) => {
    await k.call('PUT', `/v1/templates/${name}`, { key, body }, 200);
    return k.call('POST', `/v1/templates/${name}/preview`, { key, body: {} }, 200);
  };
  const prohibited = (p, ch) => p.channels[ch].lint.filter((l) => l.code === 'prohibited_content');
  // a tricky spelling (separators, a Latin look-alike) of an alcohol word,
  // on every channel the template has, whatever the class
  const ad = await lintOf('ad', { text: 'Скидка на к.0.н.ь.я.к до пятницы',
    channels: { email: { subject: 'Акция', body: '<p>Коньяк -20%</p>' } } });
  for (const ch of ['sms', 'email']) {
    const l = prohibited(ad, ch);
    assert.equal(l.length, 1, JSON.stringify(ad.channels[ch].lint));
    assert.equal(l[0].category, 'alcohol');
    assert.match(l[0].text, /\(alcohol\)/);
    assert.ok(l[0].words.length > 0);
  }
  // advisory: the template is kept and previewed as before
  assert.equal(ad.channels.sms.text, 'Скидка на к.0.н.ь.я.к до пятницы');
  const clean = await lintOf('clean', { text: 'Ваш заказ 78 доставлен, спасибо за покупку' });
  assert.deepEqual(prohibited(clean, 'sms'), []);
  // the account's own word, and a category it switched off
  await k.call('PUT', '/v1/policy', { key,
    body: { content_rules: { categories: { alcohol: false }, words: ['распродаж*'] } } }, 200);
  const own = await lintOf('own', { text: 'Большая РАСПРОДАЖА зимы' });
  assert.deepEqual(prohibited(own, 'sms').map((l) => l.category), ['own']);
  const off = await k.call('POST', '/v1/templates/ad/preview', { key, body: {} }, 200);
  assert.deepEqual(prohibited(off, 'sms'), [], 'alcohol switched off');
  await finish();
});
