// kaskad-sim's fake messenger providers and SMTP sink, on their own: the
// simulator on free loopback ports, a small Node HTTP server as the webhook
// receiver, and every provider's request and callback format checked
// (signatures verified with node:crypto).
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { waitUntil } from './lib/harness.mjs';
import { Sim as SimBase } from './lib/sim.mjs';

const FAST = { deliver_ms: [5, 15], read_ms: [5, 15] };
const CHANNELS = {
  vk: FAST, viber: FAST, telegram: FAST, telegram_gateway: FAST, whatsapp: FAST, email: {},
};

/** The simulator with every channel fast; control requests must answer 200. */
class Sim extends SimBase {
  start() { return super.start({ channels: CHANNELS, seed: 11 }); }

  async ok(method, p, opts) {
    const r = await this.req(method, p, opts);
    assert.equal(r.status, 200, `${method} ${p}: ${r.text}`);
    return r.json;
  }

  config(k) { return this.ok('POST', '/channels/config', { body: k }); }
  stats() { return this.ok('GET', '/channels/stats'); }
  /** The request log as the control API gives it (query q, nothing left out). */
  requestLog(q = '') { return this.ok('GET', `/channels/requests${q}`); }
  reset(apps = false) { return this.ok('POST', '/reset', apps ? { body: { apps: true } } : {}); }
}

class Receiver {
  constructor() {
    this.got = [];
    this.vkConfirmation = 'c0nf1rm';
    this.waVerifyToken = 'wa-verify';
    this.failFirst = {};     // path -> number of 500 answers still to give
    this.status = {};        // path -> fixed status
  }

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const u = new URL(req.url, 'http://x');
        const rec = { method: req.method, path: u.pathname, query: u.searchParams, headers: req.headers, raw, at: Date.now() };
        try { rec.json = raw ? JSON.parse(raw) : null; } catch { rec.json = undefined; }
        this.got.push(rec);
        if (this.failFirst[u.pathname] > 0) {
          this.failFirst[u.pathname]--;
          res.writeHead(500).end('no');
          return;
        }
        if (u.pathname === '/hang') return;   // never answered
        if (this.status[u.pathname]) {
          res.writeHead(this.status[u.pathname]).end('fixed');
          return;
        }
        if (u.pathname === '/vk') {
          res.end(rec.json?.type === 'confirmation' ? this.vkConfirmation : 'ok');
        } else if (u.pathname === '/wa' && req.method === 'GET') {
          const ok = u.searchParams.get('hub.mode') === 'subscribe' &&
            u.searchParams.get('hub.verify_token') === this.waVerifyToken;
          if (ok) res.end(u.searchParams.get('hub.challenge'));
          else res.writeHead(403).end('bad token');
        } else {
          res.end('ok');
        }
      });
    });
    this.server.keepAliveTimeout = 30000;
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  on(p) { return this.got.filter((r) => r.path === p); }
  clear() { this.got = []; }
  async waitFor(p, n, what = `${n} requests on ${p}`, ms = 10000) {
    return waitUntil(() => (this.on(p).length >= n ? this.on(p) : null), what, ms);
  }
  close() {
    this.server.closeAllConnections?.();
    return new Promise((r) => this.server.close(r));
  }
}

const hmacHex = (key, msg) => createHmac('sha256', key).update(msg).digest('hex');

const sim = new Sim();
const rcv = new Receiver();

describe('kaskad-sim channels', () => {
  before(async () => {
    await rcv.start();
    await sim.start();
  });

  after(async () => {
    try {
      await sim.stopClean();
    } finally {
      await rcv.close();
    }
  });

  beforeEach(async () => {
    await sim.reset(true);
    await sim.config(CHANNELS);
    await sim.config({
      vk: { reach: 1, read: 0.5, throttle: 0, server_error: 0, fail: 0 },
      viber: { reach: 1, read: 0.5, throttle: 0, server_error: 0, fail: 0 },
      telegram: { reach: 1, read: 0.5, throttle: 0, server_error: 0, fail: 0 },
      telegram_gateway: { reach: 1, read: 0.5, throttle: 0, server_error: 0, fail: 0 },
      whatsapp: { reach: 1, read: 0.5, throttle: 0, server_error: 0, fail: 0 },
      email: { reach: 1 },
    });
    rcv.clear();
    rcv.failFirst = {};
    rcv.status = {};
  });

  it('knobs: defaults, partial update, all-or-nothing validation', async () => {
    const c = await sim.ok('GET', '/channels/config');
    assert.deepEqual(Object.keys(c).sort(), ['email', 'telegram', 'telegram_gateway', 'viber', 'vk', 'whatsapp']);
    assert.deepEqual(c.vk.deliver_ms, [5, 15]);
    assert.equal(c.email.read, 0.5);
    const after1 = await sim.config({ vk: { throttle: 0.25 } });
    assert.equal(after1.vk.throttle, 0.25);
    assert.equal(after1.vk.read, 0.5);
    for (const bad of [{ vk: { throttle: 2 } }, { nope: {} }, { vk: { bogus: 1 } },
      { viber: { deliver_ms: [5, 1] } }, { vk: { reach: 0.5 }, viber: { read: -1 } }, []]) {
      const r = await sim.req('POST', '/channels/config', { body: bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.ok(r.json.error.code);
    }
    const c2 = await sim.ok('GET', '/channels/config');
    assert.equal(c2.vk.reach, 1, 'a refused update changes nothing');
    const m = await sim.req('PUT', '/channels/config', { body: {} });
    assert.equal(m.status, 405);
  });

  it('VK: confirmation, send, idempotent random_id, errors, message_read callback', async () => {
    const app = await sim.ok('POST', '/apps', {
      body: { channel: 'vk', token: 'vk-tok', callback_url: `${rcv.base}/vk`, secret: 'vks', group_id: 77, confirmation: 'c0nf1rm' },
    });
    assert.equal(app.confirmed, true);
    const conf = rcv.on('/vk')[0].json;
    assert.deepEqual(conf, { type: 'confirmation', group_id: 77, secret: 'vks' });
    rcv.vkConfirmation = 'wrong';
    const app2 = await sim.ok('POST', '/apps', { body: { channel: 'vk', token: 'vk-tok2', callback_url: `${rcv.base}/vk`, confirmation: 'x' } });
    assert.equal(app2.confirmed, false);
    rcv.vkConfirmation = 'c0nf1rm';

    await sim.config({ vk: { read: 1 } });
    rcv.clear();
    const form = (o) => new URLSearchParams(o).toString();
    const send = (o, headers) => sim.req('POST', '/method/messages.send', { body: form(o), headers });
    let r = await send({ access_token: 'vk-tok', v: '5.199', peer_id: '1001', random_id: '55', message: 'Привет', intent: 'default' });
    assert.deepEqual(r.json, { response: 1 });
    r = await send({ access_token: 'vk-tok', v: '5.199', peer_id: '1001', random_id: '55', message: 'Привет' });
    assert.deepEqual(r.json, { response: 1 }, 'a repeated random_id answers the same id');
    r = await send({ v: '5.199', peer_id: '1002', random_id: '55', message: 'x' }, { authorization: 'Bearer vk-tok' });
    assert.deepEqual(r.json, { response: 2 }, 'another peer, same random_id: a new message');
    r = await sim.req('POST', '/method/messages.send?access_token=vk-tok&peer_id=1003&random_id=1', { body: 'message=q' });
    assert.deepEqual(r.json, { response: 3 }, 'parameters may come in the query');
    r = await send({ access_token: 'nope', peer_id: '1', random_id: '1', message: 'x' });
    assert.equal(r.status, 200);
    assert.equal(r.json.error.error_code, 5);
    r = await send({ access_token: 'vk-tok', peer_id: '1', message: 'x' });
    assert.equal(r.json.error.error_code, 100);

    const reads = await rcv.waitFor('/vk', 3);
    for (const cb of reads) {
      assert.equal(cb.headers['content-type'], 'application/json');
      assert.equal(cb.json.type, 'message_read');
      assert.equal(cb.json.group_id, 77);
      assert.equal(cb.json.secret, 'vks');
      assert.equal(cb.json.v, '5.199');
      assert.match(cb.json.event_id, /^[0-9a-f]{32}$/);
      assert.equal(cb.json.object.from_id, cb.json.object.peer_id);
    }
    const byPeer = Object.fromEntries(reads.map((cb) => [cb.json.object.peer_id, cb.json.object.read_message_id]));
    assert.deepEqual(byPeer, { 1001: 1, 1002: 2, 1003: 3 });

    await sim.config({ vk: { throttle: 1 } });
    r = await send({ access_token: 'vk-tok', peer_id: '9', random_id: '9', message: 'x' });
    assert.equal(r.json.error.error_code, 9);
    await sim.config({ vk: { throttle: 0, reach: 0 } });
    r = await send({ access_token: 'vk-tok', peer_id: '9', random_id: '9', message: 'x' });
    assert.equal(r.json.error.error_code, 901);
    await sim.config({ vk: { reach: 1, server_error: 1 } });
    r = await send({ access_token: 'vk-tok', peer_id: '9', random_id: '9', message: 'x' });
    assert.equal(r.status, 500);

    const st = (await sim.stats()).vk;
    assert.equal(st.requests, 9);
    assert.equal(st.accepted, 3);
    assert.equal(st.messages, 3);
    assert.equal(st.duplicates, 1);
    assert.equal(st.refused.unauthorized, 1);
    assert.equal(st.refused.bad_request, 1);
    assert.equal(st.refused.throttled, 1);
    assert.equal(st.refused.unreached, 1);
    assert.equal(st.refused.server_error, 1);
    await waitUntil(async () => (await sim.stats()).vk.callbacks_ok === 3, 'callbacks counted');

    const rec = await sim.requestLog('?channel=vk&limit=2');
    assert.equal(rec.requests.length, 2);
    assert.equal(rec.requests[0].method, 'POST');
    assert.equal(rec.requests[0].path, '/method/messages.send');
    assert.equal(rec.requests[0].headers['content-type'], 'application/x-www-form-urlencoded');
    assert.match(rec.requests[0].body, /message=%D0%9F/);
    assert.equal(rec.requests[0].outcome, 'accepted');
    assert.equal(rec.requests[1].outcome, 'duplicate');
    const more = await sim.requestLog(`?channel=vk&since_seq=${rec.next_seq}`);
    assert.equal(more.requests.length, 7);
    assert.equal(more.requests[0].headers.authorization, 'Bearer vk-tok');
    assert.deepEqual(more.requests.map((x) => x.outcome).slice(2),
      ['unauthorized', 'bad_request', 'throttled', 'unreached', 'server_error']);
  });

  it('VK: shares 0 and 1 are exact; reach is fixed per recipient', async () => {
    await sim.ok('POST', '/apps', { body: { channel: 'vk', token: 't' } });
    const send = (peer, rid) => sim.req('POST', '/method/messages.send',
      { body: `access_token=t&peer_id=${peer}&random_id=${rid}&message=m` });
    await sim.config({ vk: { reach: 0.5 } });
    const first = [];
    for (let p = 1; p <= 40; p++) first.push((await send(p, p)).json.response !== undefined);
    const again = [];
    for (let p = 1; p <= 40; p++) again.push((await send(p, 1000 + p)).json.response !== undefined);
    assert.deepEqual(again, first, 'the same recipients are reached again');
    assert.ok(first.includes(true) && first.includes(false), 'a 0.5 share splits 40 recipients');
  });

  it('Viber bot: set_webhook handshake, send, signed delivered/seen/failed', async () => {
    const tok = 'viber-tok-1';
    const h = { 'x-viber-auth-token': tok, 'content-type': 'application/json' };
    let r = await sim.req('POST', '/pa/set_webhook', { body: { url: `${rcv.base}/viber`, event_types: ['delivered', 'seen', 'failed'] }, headers: h });
    assert.equal(r.json.status, 0, r.text);
    assert.equal(r.json.status_message, 'ok');
    assert.ok(Array.isArray(r.json.event_types));
    const hook = rcv.on('/viber')[0];
    assert.equal(hook.json.event, 'webhook');
    assert.equal(hook.json.chat_hostname, 'SN-sim');
    assert.equal(hook.headers['x-viber-content-signature'], hmacHex(tok, hook.raw));
    assert.match(hook.raw, /"message_token":\d{19}/);

    rcv.status['/dead'] = 500;
    r = await sim.req('POST', '/pa/set_webhook', { body: { url: `${rcv.base}/dead` }, headers: { 'x-viber-auth-token': 'other' } });
    assert.deepEqual(r.json, { status: 1, status_message: 'invalidUrl' });
    r = await sim.req('POST', '/pa/set_webhook', { body: { url: `${rcv.base}/viber` } });
    assert.equal(r.json.status, 2);

    await sim.config({ viber: { read: 1 } });
    rcv.clear();
    r = await sim.req('POST', '/pa/send_message', {
      body: { receiver: 'uid-1==', min_api_version: 7, sender: { name: 'Kaskad' }, tracking_data: 't1', type: 'text', text: 'hi' }, headers: h,
    });
    assert.equal(r.json.status, 0, r.text);
    assert.equal(r.json.chat_hostname, 'SN-sim');
    const token = r.text.match(/"message_token":(\d+)/)[1];
    assert.ok(BigInt(token) > 5741311803571721087n);
    const evs = await rcv.waitFor('/viber', 2);
    assert.deepEqual(evs.map((e) => e.json.event), ['delivered', 'seen']);
    for (const e of evs) {
      assert.equal(e.headers['x-viber-content-signature'], hmacHex(tok, e.raw));
      assert.equal(e.json.user_id, 'uid-1==');
      assert.equal(e.raw.match(/"message_token":(\d+)/)[1], token);
      assert.equal(e.json.chat_hostname, 'SN-sim');
      assert.ok(e.json.timestamp > Date.now() - 60000);
    }
    r = await sim.req('POST', '/pa/send_message', { body: { receiver: 'u' }, headers: h });
    assert.deepEqual(r.json, { status: 3, status_message: 'badData' });
    r = await sim.req('POST', '/pa/send_message', { body: { receiver: 'u', type: 'text', text: 'x' }, headers: { 'x-viber-auth-token': 'unknown' } });
    assert.deepEqual(r.json, { status: 2, status_message: 'invalidAuthToken' });
    await sim.config({ viber: { throttle: 1 } });
    r = await sim.req('POST', '/pa/send_message', { body: { receiver: 'u', type: 'text', text: 'x' }, headers: h });
    assert.deepEqual(r.json, { status: 12, status_message: 'tooManyRequests' });
    await sim.config({ viber: { throttle: 0, reach: 0 } });
    r = await sim.req('POST', '/pa/send_message', { body: { receiver: 'u', type: 'text', text: 'x' }, headers: h });
    assert.deepEqual(r.json, { status: 6, status_message: 'receiverNotSubscribed' });
    await sim.config({ viber: { reach: 1, fail: 1 } });
    rcv.clear();
    r = await sim.req('POST', '/pa/send_message', { body: { receiver: 'u2', type: 'picture', media: 'http://x/p.png' }, headers: h });
    assert.equal(r.json.status, 0);
    const failed = (await rcv.waitFor('/viber', 1))[0];
    assert.equal(failed.json.event, 'failed');
    assert.equal(failed.json.desc, 'simulated failure');
  });

  it('a callback_url listing several URLs takes them in turn (a load balancer in front of nodes)', async () => {
    const tok = 'vb-lb';
    await sim.ok('POST', '/apps', { body: { channel: 'viber', token: tok, callback_url: `${rcv.base}/lb-a ${rcv.base}/lb-b` } });
    await sim.config({ viber: { reach: 1, read: 0, fail: 0 } });
    rcv.clear();
    const h = { 'x-viber-auth-token': tok };
    for (let i = 0; i < 4; i++) {
      const r = await sim.req('POST', '/pa/send_message', { body: { receiver: `lb${i}`, type: 'text', text: 'x' }, headers: h });
      assert.equal(r.json.status, 0, r.text);
    }
    await sim.settled();
    assert.equal(rcv.on('/lb-a').length, 2, 'half to the first');
    assert.equal(rcv.on('/lb-b').length, 2, 'half to the second');
  });

  it('Viber business: phone addressing, not a Viber user, delivered and seen', async () => {
    const tok = 'vbm-tok';
    await sim.ok('POST', '/apps', { body: { channel: 'viber', token: tok, callback_url: `${rcv.base}/vbm` } });
    const h = { 'x-viber-auth-token': tok };
    await sim.config({ viber: { read: 1 } });
    let r = await sim.req('POST', '/vbm/v1/messages', {
      body: { phone: '+79161234567', sender: 'Kaskad', message_id: 'm-1', category: 'transactional', ttl: 600, text: 'hi', button: { caption: 'Go', url: 'https://x' } }, headers: h,
    });
    assert.equal(r.json.status, 0, r.text);
    assert.match(r.text, /"message_token":\d{19}/);
    let evs = await rcv.waitFor('/vbm', 2);
    assert.deepEqual(evs.map((e) => e.json.event), ['delivered', 'seen']);
    assert.equal(evs[0].json.user_id, '79161234567');
    assert.equal(evs[0].json.message_id, 'm-1');
    assert.equal(evs[1].headers['x-viber-content-signature'], hmacHex(tok, evs[1].raw));

    await sim.config({ viber: { reach: 0 } });
    rcv.clear();
    r = await sim.req('POST', '/vbm/v1/messages', { body: { phone: '79160000001', text: 'x' }, headers: h });
    assert.equal(r.json.status, 0, 'partners accept first');
    evs = await rcv.waitFor('/vbm', 1);
    assert.equal(evs[0].json.event, 'failed');
    assert.equal(evs[0].json.desc, 'not a Viber user');

    r = await sim.req('POST', '/vbm/v1/messages', { body: { text: 'x' }, headers: h });
    assert.equal(r.json.status, 3);
    await sim.config({ viber: { reach: 1, read: 0 } });
    rcv.clear();
    r = await sim.req('POST', '/vbm/v1/messages', { body: { phone: '79160000002', text: 'x' }, headers: h });
    await rcv.waitFor('/vbm', 1);
    await sim.settled();
    assert.deepEqual(rcv.on('/vbm').map((e) => e.json.event), ['delivered'], 'no seen without read');
  });

  it('Telegram Bot API: setWebhook, sends, errors, getMe, updates to the webhook', async () => {
    const tok = '123456789:AAbbCCddEEff_gg-HH';
    let r = await sim.req('POST', '/botnot-a-token/setWebhook', { body: { url: `${rcv.base}/tg` } });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { ok: false, error_code: 401, description: 'Unauthorized' });
    r = await sim.req('POST', `/bot${tok}/sendMessage`, { body: { chat_id: 5, text: 'x' } });
    assert.equal(r.status, 401, 'unknown bots are refused');
    r = await sim.req('POST', `/bot${tok}/setWebhook`, { body: { url: `${rcv.base}/tg`, secret_token: 'tg-secret_1', max_connections: 40 } });
    assert.deepEqual(r.json, { ok: true, result: true, description: 'Webhook was set' });
    r = await sim.req('POST', `/bot${tok}/getMe`);
    assert.deepEqual(r.json, { ok: true, result: { id: 1, is_bot: true, first_name: 'kaskad sim', username: 'kaskad_sim_bot' } });

    r = await sim.req('POST', `/bot${tok}/sendMessage`, { body: { chat_id: 4242, text: 'Привет', parse_mode: 'HTML', reply_markup: { inline_keyboard: [[{ text: 'Go', url: 'https://x' }]] } } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.ok, true);
    assert.equal(r.json.result.message_id, 1);
    assert.equal(r.json.result.chat.id, 4242);
    assert.equal(r.json.result.text, 'Привет');
    assert.ok(Math.abs(r.json.result.date - Date.now() / 1000) < 60);
    r = await sim.req('POST', `/bot${tok}/sendMessage`, { body: { chat_id: '4243', text: 'x' } });
    assert.equal(r.json.result.chat.id, 4243);
    r = await sim.req('POST', `/bot${tok}/sendPhoto`, { body: { chat_id: 4242, photo: 'https://x/p.png', caption: 'cap' } });
    assert.equal(r.json.result.caption, 'cap');
    assert.ok(Array.isArray(r.json.result.photo));
    r = await sim.req('POST', `/bot${tok}/sendMessage`, { body: { chat_id: 'nobody', text: 'x' } });
    assert.equal(r.status, 400);
    assert.equal(r.json.description, 'Bad Request: chat not found');
    r = await sim.req('POST', `/bot${tok}/sendMessage`, { body: { text: 'x' } });
    assert.equal(r.status, 400);
    await sim.config({ telegram: { throttle: 1 } });
    r = await sim.req('POST', `/bot${tok}/sendMessage`, { body: { chat_id: 1, text: 'x' } });
    assert.equal(r.status, 429);
    assert.equal(r.json.parameters.retry_after, 1);
    await sim.config({ telegram: { throttle: 0, reach: 0 } });
    r = await sim.req('POST', `/bot${tok}/sendMessage`, { body: { chat_id: 1, text: 'x' } });
    assert.equal(r.status, 403);
    assert.equal(r.json.description, "Forbidden: bot can't initiate conversation with a user");
    await sim.config({ telegram: { reach: 1, server_error: 1 } });
    r = await sim.req('POST', `/bot${tok}/sendMessage`, { body: { chat_id: 1, text: 'x' } });
    assert.equal(r.status, 500);
    await sim.settled();
    assert.equal(rcv.on('/tg').length, 0, 'the Bot API sends no status callbacks');

    rcv.status['/tg'] = 200;
    const up = await sim.ok('POST', '/telegram/update', { body: { token: tok, chat_id: 4242, text: '/start' } });
    assert.equal(up.status, 200);
    const u = rcv.on('/tg')[0];
    assert.equal(u.headers['x-telegram-bot-api-secret-token'], 'tg-secret_1');
    assert.equal(u.json.update_id, up.update_id);
    assert.equal(u.json.message.chat.id, 4242);
    assert.equal(u.json.message.from.id, 4242);
    assert.equal(u.json.message.chat.type, 'private');
    assert.equal(u.json.message.text, '/start');
    rcv.status['/tg'] = 403;
    const up2 = await sim.ok('POST', '/telegram/update', { body: { token: tok, chat_id: 4242, text: 'x' } });
    assert.equal(up2.status, 403, 'the webhook\'s status is passed on');
    assert.equal(up2.update_id, up.update_id + 1);
    r = await sim.req('POST', '/telegram/update', { body: { token: 'no:such', chat_id: 1, text: 'x' } });
    assert.equal(r.status, 404);
  });

  it('Telegram Gateway: send, signed reports, retry until 200', async () => {
    const tok = 'gw-token-1';
    await sim.ok('POST', '/apps', { body: { channel: 'telegram_gateway', token: tok } });
    await sim.config({ telegram_gateway: { read: 1 } });
    rcv.failFirst['/gw'] = 2;
    const h = { authorization: `Bearer ${tok}` };
    let r = await sim.req('POST', '/sendVerificationMessage', {
      body: { phone_number: '+79161234567', code: '1234', ttl: 60, callback_url: `${rcv.base}/gw`, payload: 'p-1' }, headers: h,
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.ok, true, r.text);
    const res = r.json.result;
    assert.equal(res.phone_number, '+79161234567');
    assert.equal(res.request_cost, 0.01);
    assert.equal(res.delivery_status.status, 'sent');
    assert.equal(res.payload, 'p-1');
    assert.ok(res.request_id.length > 4);
    const key = createHash('sha256').update(tok).digest();
    const reports = await rcv.waitFor('/gw', 4, 'two reports, the first after two failures', 15000);
    for (const rep of reports) {
      const ts = rep.headers['x-request-timestamp'];
      assert.match(ts, /^\d+$/);
      assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 60);
      assert.equal(rep.headers['x-request-signature'], hmacHex(key, `${ts}\n${rep.raw}`));
      assert.equal(rep.json.request_id, res.request_id);
      assert.equal(rep.json.payload, 'p-1');
    }
    // Both first attempts got 500, so both reports came again a second later.
    const statuses = reports.map((x) => x.json.delivery_status.status);
    assert.deepEqual(statuses, ['delivered', 'read', 'delivered', 'read']);
    assert.ok(reports[2].at - reports[0].at >= 900, 'retried about 1 s later');
    const st = (await sim.stats()).telegram_gateway;
    assert.equal(st.callbacks_sent, 4);
    assert.equal(st.callbacks_failed, 2);
    assert.equal(st.callbacks_ok, 2);

    r = await sim.req('POST', '/sendVerificationMessage', { body: { code: '1' }, headers: h });
    assert.deepEqual(r.json, { ok: false, error: 'PHONE_NUMBER_INVALID' });
    r = await sim.req('POST', '/sendVerificationMessage', { body: { phone_number: '+79161234567' }, headers: { authorization: 'Bearer x' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { ok: false, error: 'ACCESS_TOKEN_INVALID' });
    await sim.config({ telegram_gateway: { throttle: 1 } });
    r = await sim.req('POST', '/sendVerificationMessage', { body: { phone_number: '+79161234567' }, headers: h });
    assert.equal(r.status, 429);
    assert.deepEqual(r.json, { ok: false, error: 'FLOOD_WAIT_1' });
    await sim.config({ telegram_gateway: { throttle: 0, reach: 0 } });
    r = await sim.req('POST', '/sendVerificationMessage', { body: { phone_number: '+79161234567' }, headers: h });
    assert.deepEqual(r.json, { ok: false, error: 'PHONE_NUMBER_NOT_AVAILABLE' });
    await sim.config({ telegram_gateway: { reach: 1, fail: 1 } });
    rcv.clear();
    r = await sim.req('POST', '/sendVerificationMessage', { body: { phone_number: '+79160000000', callback_url: `${rcv.base}/gw2` }, headers: h });
    const exp = (await rcv.waitFor('/gw2', 1))[0];
    assert.equal(exp.json.delivery_status.status, 'expired');
  });

  it('WhatsApp: verification, template statuses, the 24-hour window, errors', async () => {
    const tok = 'wa-tok';
    const secret = 'wa-secret';
    const app = await sim.ok('POST', '/apps', {
      body: { channel: 'whatsapp', token: tok, secret, phone_number_id: '1055', verify_token: 'wa-verify', callback_url: `${rcv.base}/wa` },
    });
    assert.equal(app.verified, true);
    const v = rcv.on('/wa')[0];
    assert.equal(v.method, 'GET');
    assert.equal(v.query.get('hub.mode'), 'subscribe');
    assert.match(v.query.get('hub.challenge'), /^\d+$/);
    const bad = await sim.ok('POST', '/apps', { body: { channel: 'whatsapp', token: 'wa2', verify_token: 'other', callback_url: `${rcv.base}/wa` } });
    assert.equal(bad.verified, false);

    await sim.config({ whatsapp: { read: 1 } });
    rcv.clear();
    const h = { authorization: `Bearer ${tok}` };
    const tpl = { messaging_product: 'whatsapp', to: '79161234567', type: 'template',
      template: { name: 'order_status', language: { code: 'ru' }, components: [{ type: 'body', parameters: [{ type: 'text', text: '1' }] }] } };
    let r = await sim.req('POST', '/v21.0/1055/messages', { body: tpl, headers: h });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.messaging_product, 'whatsapp');
    assert.deepEqual(r.json.contacts, [{ input: '79161234567', wa_id: '79161234567' }]);
    const wamid = r.json.messages[0].id;
    assert.match(wamid, /^wamid\./);
    let sts = await rcv.waitFor('/wa', 3);
    for (const s of sts) {
      assert.equal(s.headers['x-hub-signature-256'], `sha256=${hmacHex(secret, s.raw)}`);
      assert.equal(s.json.object, 'whatsapp_business_account');
      const val = s.json.entry[0].changes[0].value;
      assert.equal(s.json.entry[0].changes[0].field, 'messages');
      assert.equal(val.metadata.phone_number_id, '1055');
      assert.equal(val.statuses[0].id, wamid);
      assert.equal(val.statuses[0].recipient_id, '79161234567');
      assert.match(val.statuses[0].timestamp, /^\d+$/);
    }
    assert.deepEqual(sts.map((s) => s.json.entry[0].changes[0].value.statuses[0].status), ['sent', 'delivered', 'read']);

    rcv.clear();
    const text = { messaging_product: 'whatsapp', recipient_type: 'individual', to: '79161234567', type: 'text', text: { body: 'hi', preview_url: false } };
    r = await sim.req('POST', '/v21.0/1055/messages', { body: text, headers: h });
    assert.equal(r.status, 200, 'outside the window a text is accepted...');
    sts = await rcv.waitFor('/wa', 1);
    const failed = sts[0].json.entry[0].changes[0].value.statuses[0];
    assert.equal(failed.status, 'failed', '...and then fails');
    assert.equal(failed.errors[0].code, 131047);

    rcv.clear();
    const inb = await sim.ok('POST', '/whatsapp/inbound', { body: { token: tok, from: '79161234567', text: 'Hello' } });
    assert.equal(inb.status, 200);
    const msg = rcv.on('/wa')[0];
    assert.equal(msg.headers['x-hub-signature-256'], `sha256=${hmacHex(secret, msg.raw)}`);
    const m0 = msg.json.entry[0].changes[0].value.messages[0];
    assert.equal(m0.from, '79161234567');
    assert.equal(m0.text.body, 'Hello');
    assert.equal(m0.id, inb.message_id);
    rcv.clear();
    r = await sim.req('POST', '/v21.0/1055/messages', { body: text, headers: h });
    sts = await rcv.waitFor('/wa', 3);
    assert.deepEqual(sts.map((s) => s.json.entry[0].changes[0].value.statuses[0].status), ['sent', 'delivered', 'read'],
      'inside the window a text is delivered');

    r = await sim.req('POST', '/v21.0/999/messages', { body: tpl, headers: h });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.type, 'GraphMethodException');
    assert.equal(r.json.error.code, 100);
    r = await sim.req('POST', '/v21.0/1055/messages', { body: tpl, headers: { authorization: 'Bearer x' } });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 190);
    r = await sim.req('POST', '/v21.0/1055/messages', { body: { messaging_product: 'whatsapp', to: '7916', type: 'template', template: {} }, headers: h });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 100);
    await sim.config({ whatsapp: { throttle: 1 } });
    r = await sim.req('POST', '/v21.0/1055/messages', { body: tpl, headers: h });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.code, 130429);
    await sim.config({ whatsapp: { throttle: 0, reach: 0 } });
    rcv.clear();
    r = await sim.req('POST', '/v21.0/1055/messages', { body: tpl, headers: h });
    assert.equal(r.status, 200);
    sts = await rcv.waitFor('/wa', 2);
    const last = sts[1].json.entry[0].changes[0].value.statuses[0];
    assert.deepEqual([sts[0].json.entry[0].changes[0].value.statuses[0].status, last.status], ['sent', 'failed']);
    assert.equal(last.errors[0].code, 131026);
  });

  it('callbacks to a dead webhook: 1 + 3 attempts, then given up', async () => {
    rcv.status['/dead'] = 503;
    const tok = 'viber-dead';
    await sim.ok('POST', '/apps', { body: { channel: 'viber', token: tok, callback_url: `${rcv.base}/dead` } });
    await sim.config({ viber: { read: 0 } });
    const r = await sim.req('POST', '/pa/send_message', { body: { receiver: 'u', type: 'text', text: 'x' }, headers: { 'x-viber-auth-token': tok } });
    assert.equal(r.json.status, 0);
    await rcv.waitFor('/dead', 4, 'four attempts', 10000);
    const st = await waitUntil(async () => {
      const s = (await sim.stats()).viber;
      return s.callbacks_given_up === 1 ? s : null;
    }, 'the callback given up');
    assert.equal(st.callbacks_sent, 4);
    assert.equal(st.callbacks_failed, 4);
    assert.equal(st.callbacks_pending, 0);
    const at = rcv.on('/dead').map((x) => x.at);
    assert.ok(at[1] - at[0] >= 900 && at[3] - at[2] >= 900, 'retries are about 1 s apart');
  });

  it('requests ring: filters, paging, reset keeps apps unless asked', async () => {
    await sim.ok('POST', '/apps', { body: { channel: 'vk', token: 'a' } });
    for (let i = 0; i < 5; i++) {
      await sim.req('POST', '/method/messages.send', { body: `access_token=a&peer_id=${i + 1}&random_id=${i}&message=m` });
      await sim.req('POST', '/bot1:abcdefghijk/getMe');
    }
    const all = await sim.requestLog();
    assert.equal(all.requests.length, 10);
    const seqs = all.requests.map((x) => x.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    const page = await sim.requestLog('?limit=3');
    assert.equal(page.requests.length, 3);
    assert.equal(page.next_seq, page.requests[2].seq + 1);
    const rest = await sim.requestLog(`?since_seq=${page.next_seq}`);
    assert.equal(rest.requests.length, 7);
    const tg = await sim.requestLog('?channel=telegram');
    assert.equal(tg.requests.length, 5);
    assert.ok(tg.requests.every((x) => x.outcome === 'unauthorized'));
    const bad = await sim.req('GET', '/channels/requests?channel=fax');
    assert.equal(bad.status, 400);
    const none = await sim.requestLog(`?since_seq=${all.next_seq}`);
    assert.equal(none.requests.length, 0);
    assert.equal(none.next_seq, all.next_seq);

    await sim.reset();
    assert.equal((await sim.requestLog()).requests.length, 0);
    assert.equal((await sim.stats()).vk.requests, 0);
    assert.equal((await sim.ok('GET', '/apps')).apps.length, 1, 'apps are kept');
    const r = await sim.req('POST', '/method/messages.send', { body: 'access_token=a&peer_id=1&random_id=99&message=m' });
    assert.ok(r.json.response);
    await sim.reset(true);
    assert.equal((await sim.ok('GET', '/apps')).apps.length, 0);
    const r2 = await sim.req('POST', '/method/messages.send', { body: 'access_token=a&peer_id=1&random_id=98&message=m' });
    assert.equal(r2.json.error.error_code, 5);
    const badReset = await sim.req('POST', '/reset', { body: { apps: 'yes' } });
    assert.equal(badReset.status, 400);
    const badApp = await sim.req('POST', '/apps', { body: { channel: 'fax', token: 'x' } });
    assert.equal(badApp.status, 400);
  });

  it('SMTP sink: a session, pipelining, refusals, dot-stuffing, long lines', async () => {
    const s = net.connect(sim.smtpPort, '127.0.0.1');
    const closed = new Promise((r) => s.on('close', r));
    s.setEncoding('latin1');
    let buf = '';
    s.on('data', (d) => { buf += d; });
    // Waits for n more complete reply lines whose last one has "code " (not "code-").
    let taken = 0;
    const replies = async (n) => {
      const out = [];
      await waitUntil(() => {
        const lines = buf.slice(taken).split('\r\n');
        lines.pop();
        const finals = lines.filter((l) => /^\d{3} /.test(l));
        return finals.length >= n;
      }, `${n} SMTP replies (have: ${JSON.stringify(buf.slice(taken))})`, 5000, 5);
      const lines = buf.slice(taken).split('\r\n');
      lines.pop();
      let finals = 0;
      for (const l of lines) {
        out.push(l);
        taken += l.length + 2;
        if (/^\d{3} /.test(l) && ++finals === n) break;
      }
      return out;
    };
    assert.deepEqual(await replies(1), ['220 kaskad-sim ESMTP']);
    s.write('EHLO client.test\r\n');
    assert.deepEqual(await replies(1), ['250-kaskad-sim', '250-8BITMIME', '250-AUTH PLAIN LOGIN', '250 SIZE 10485760']);
    s.write('AUTH LOGIN\r\n');
    assert.match((await replies(1))[0], /^334 /);
    s.write('dXNlcg==\r\n');
    assert.match((await replies(1))[0], /^334 /);
    s.write('cGFzcw==\r\n');
    assert.match((await replies(1))[0], /^235 /);
    s.write('AUTH PLAIN AHUAcA==\r\n');
    assert.match((await replies(1))[0], /^235 /);
    // Pipelined: MAIL, three RCPTs, DATA.
    s.write('MAIL FROM:<noreply@kaskad.test> BODY=8BITMIME\r\nRCPT TO:<79161234567@sms.test>\r\n' +
      'RCPT TO:<nobody@example.com>\r\nRCPT TO:<x@invalid.test>\r\nDATA\r\n');
    const r5 = await replies(5);
    assert.deepEqual(r5.map((l) => l.slice(0, 3)), ['250', '250', '550', '550', '354']);
    s.write('Subject: test\r\n\r\nline one\r\n..leading dot\r\n.\r\n');
    const done = (await replies(1))[0];
    assert.match(done, /^250 2\.0\.0 Ok: queued as \S+/);
    s.write(`${'X'.repeat(5000)}\r\nNOOP\r\nFOO\r\nRCPT TO:<a@b>\r\nRSET\r\n`);
    assert.deepEqual((await replies(5)).map((l) => l.slice(0, 3)), ['500', '250', '500', '503', '250']);
    s.write('QUIT\r\n');
    assert.match((await replies(1))[0], /^221 /);
    await closed;

    const mails = (await sim.requestLog('?channel=email')).requests;
    assert.equal(mails.length, 1);
    assert.equal(mails[0].method, 'SMTP');
    assert.equal(mails[0].path, '');
    assert.equal(mails[0].from, 'noreply@kaskad.test');
    assert.deepEqual(mails[0].rcpt, ['79161234567@sms.test']);
    assert.equal(mails[0].body, 'Subject: test\r\n\r\nline one\r\n.leading dot\r\n');
    const st = (await sim.stats()).email;
    assert.equal(st.accepted, 1);
    assert.equal(st.refused.no_such_user, 2);

    await sim.config({ email: { reach: 0 } });
    const s2 = net.connect(sim.smtpPort, '127.0.0.1');
    const closed2 = new Promise((r) => s2.on('close', r));
    s2.setEncoding('latin1');
    let b2 = '';
    s2.on('data', (d) => { b2 += d; });
    s2.write('HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<someone@example.com>\r\nQUIT\r\n');
    await closed2;
    assert.match(b2, /550 5\.1\.1 No such user/);
    assert.equal((await sim.stats()).email.refused.unreached, 1);
  });

  it('deferred answers survive a concurrent burst; shutdown stays clean with requests pending', async () => {
    await sim.ok('POST', '/apps', { body: { channel: 'vk', token: 'burst', callback_url: `${rcv.base}/vk`, group_id: 1 } });
    await sim.config({ vk: { read: 1, deliver_ms: [0, 0], read_ms: [0, 0] } });
    const sends = [];
    for (let i = 0; i < 300; i++) {
      sends.push(sim.req('POST', '/method/messages.send', { body: `access_token=burst&peer_id=${i + 1}&random_id=${i}&message=m` }));
    }
    const answers = await Promise.all(sends);
    assert.ok(answers.every((a) => a.json.response > 0));
    await rcv.waitFor('/vk', 301, 'all read callbacks', 15000);
    // Left pending for the shutdown at the end of the suite: a callback due
    // in a minute, a callback in flight to a webhook that never answers, a
    // control request waiting for that webhook, and an open SMTP session.
    await sim.config({ vk: { deliver_ms: [60000, 60000] } });
    await sim.req('POST', '/method/messages.send', { body: 'access_token=burst&peer_id=9&random_id=9999&message=m' });
    await sim.ok('POST', '/apps', { body: { channel: 'viber', token: 'hang', callback_url: `${rcv.base}/hang` } });
    await sim.config({ viber: { deliver_ms: [0, 0], read: 0 } });
    await sim.req('POST', '/pa/send_message', { body: { receiver: 'u', type: 'text', text: 'x' }, headers: { 'x-viber-auth-token': 'hang' } });
    const tg = '42:abcdefghijkl';
    await sim.req('POST', `/bot${tg}/setWebhook`, { body: { url: `${rcv.base}/hang` } });
    const waiting = sim.req('POST', '/telegram/update', { body: { token: tg, chat_id: 1, text: 'x' } })
      .then((r) => r.status, (e) => e.message);
    await rcv.waitFor('/hang', 2, 'both requests at the hanging webhook');
    const smtp = net.connect(sim.smtpPort, '127.0.0.1');
    smtp.on('error', () => {});
    await new Promise((r) => smtp.once('data', r));
    const st = (await sim.stats()).viber;
    assert.equal(st.callbacks_pending, 1);
    await sim.stopClean();
    const status = await waiting;
    assert.ok(status === 503 || typeof status === 'string', `the waiting request ended: ${status}`);
    smtp.destroy();
  });
});
