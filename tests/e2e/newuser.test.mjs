// What a new user runs into first: an idempotency key reused for another
// message, cascade timeouts against the validity, account routes and
// senders, the default route, strict config files, replies, a second
// daemon on the same data folder, fields kaskad cannot honour yet.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setup, Kaskad, ROOT, kaskadBin } from './lib/harness.mjs';
import { startSmsc, sendMo } from './lib/smsc.mjs';
import { Sim, pointChannelsAtSim, APPS } from './lib/sim.mjs';

const PHONE = '79161234567';

function expectCode(r, status, code, field) {
  assert.equal(r.status, status, `HTTP status (body: ${r.text.slice(0, 300)})`);
  assert.equal(r.json?.error?.code, code, `error code (body: ${r.text.slice(0, 300)})`);
  if (field) assert.equal(r.json.error.field, field, 'error field');
}

test('an idempotency key reused with another body is refused; the same body replays', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const post = (body, headers) => k.request('POST', '/v1/messages', { key, body, headers });
  const body = { to: '79161238801', text: 'idem first', sender: 'Kaskad', idempotency_key: 'nu-1' };
  // (a consent, so that the advertising variant meets the key's check, not the consent's)
  await k.call('PUT', '/v1/consents/79161238801', { key, body: { source: 'test' } }, 201);
  const r1 = await post(body);
  assert.equal(r1.status, 202, r1.text);
  // The same message written differently (other phone form, other key order) replays.
  const same = await post({ idempotency_key: 'nu-1', sender: 'Kaskad', text: 'idem first', to: '+79161238801' });
  assert.equal(same.status, 202, same.text);
  assert.equal(same.json.id, r1.json.id);
  assert.equal(same.json.duplicate, true);
  // Any meaningful field changed: 422, nothing sent.
  for (const change of [{ text: 'idem second' }, { to: '79161238802' }, { sender: 'KASKAD' },
    { class: 'advertising' }, { ttl: '1h' }, { campaign: 'c1' }, { callback_url: 'http://127.0.0.1:9/x' },
    { vk_id: '5' }, { cascade: [{ channel: 'vk', wait: 'read', timeout: '10s' }, { channel: 'sms' }] }]) {
    const r = await post({ ...body, ...change });
    expectCode(r, 422, 'idempotency_mismatch', 'idempotency_key');
    assert.match(r.json.error.message, new RegExp(r1.json.id));
  }
  // The header form too.
  const h = await post({ to: '79161238801', text: 'other text' }, { 'idempotency-key': 'nu-1' });
  expectCode(h, 422, 'idempotency_mismatch');
  // A batch: per item.
  const b = await k.request('POST', '/v1/messages/batch', {
    key,
    body: { messages: [body, { ...body, text: 'changed' }, { to: '79161238803', text: 'b3', idempotency_key: 'nu-3' },
      { to: '79161238803', text: 'b3 other', idempotency_key: 'nu-3' }] },
  });
  assert.equal(b.status, 202, b.text);
  assert.equal(b.json.results[0].id, r1.json.id);
  assert.equal(b.json.results[0].duplicate, true);
  assert.equal(b.json.results[1].error?.code, 'idempotency_mismatch');
  assert.match(b.json.results[2].id, /^msg_/);
  assert.equal(b.json.results[3].error?.code, 'idempotency_mismatch');
  assert.equal(b.json.accepted, 2);
  assert.equal(b.json.rejected, 2);
  await k.waitStatus(key, b.json.results[2].id, 'sent');
  await k.waitStatus(key, r1.json.id, 'sent');
  assert.equal(smsc.submits.filter((s) => s.text.startsWith('idem')).length, 1, 'one submit for the key');
  assert.equal(smsc.submits.filter((s) => s.text.startsWith('b3')).length, 1);
  await finish();
});

test('cascade timeouts longer than the validity are refused; a cascade ends expired at expires_at', { timeout: 90000 }, async (t) => {
  // ttl_service: the validity of a message without a ttl (a request's ttl
  // is at least 30s), so that the expiry below comes in seconds.
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 50 }, args: ['--ttl_service', '5s'] });
  const { k, key } = env;
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ vk: { reach: 1, read: 0, deliver_ms: [20, 20] } });
  await pointChannelsAtSim(k, sim);
  const post = (body) => k.request('POST', '/v1/messages', { key, body });
  const vkThenSms = (timeout) => [{ channel: 'vk', wait: 'read', timeout }, { channel: 'sms' }];
  // The SMS step could only start after the message expired.
  let r = await post({ to: PHONE, vk_id: '1001', text: 'late', ttl: '10m', cascade: vkThenSms('1h') });
  expectCode(r, 422, 'timeout_exceeds_ttl', 'cascade');
  r = await post({ to: PHONE, vk_id: '1001', text: 'late', ttl: '10m',
    cascade: [{ channel: 'vk', wait: 'read', timeout: '6m' }, { channel: 'viber', wait: 'read', timeout: '5m' }, { channel: 'sms' }] });
  expectCode(r, 422, 'timeout_exceeds_ttl', 'cascade');
  // The same through a saved cascade.
  await k.call('PUT', '/v1/cascades/slow', { key, body: { steps: vkThenSms('2h') } }, [200, 201]);
  r = await post({ to: PHONE, vk_id: '1001', text: 'late', ttl: '1h', cascade: 'slow' });
  expectCode(r, 422, 'timeout_exceeds_ttl', 'cascade');
  // The last step's own timeout may be longer: it is cut at expires_at.
  r = await post({ to: PHONE, vk_id: '1001', text: 'fits', ttl: '10m', cascade: vkThenSms('9m') });
  assert.equal(r.status, 202, r.text);

  // VK is never read and the last step has no timeout: the message ends
  // `expired` at its expires_at instead of staying `sent`.
  const m = await k.send(key, { to: PHONE, vk_id: '1002', text: 'expiring',
    cascade: [{ channel: 'vk', wait: 'read' }] });
  const sent = await k.waitStatus(key, m.id, 'sent');
  assert.equal(Date.parse(sent.expires_at) - Date.parse(sent.created_at), 5000, 'the class validity');
  const done = await k.waitStatus(key, m.id, 'expired', 20000);
  assert.equal(done.finished, true);
  assert.equal(done.attempts[0].status, 'expired');
  const late = Date.parse(done.updated_at) - Date.parse(done.expires_at);
  assert.ok(late >= 0 && late < 15000, `expired ${late} ms after expires_at`);
  await env.finish();
});

test('an account cannot be given a route that does not exist', async (t) => {
  const { k, acct, finish } = await setup(t);
  const r = await k.request('PATCH', `/v1/accounts/${acct.id}`, { body: { sms_route: 'nope' } });
  expectCode(r, 422, 'unknown_route', 'sms_route');
  assert.equal((await k.call('GET', `/v1/accounts/${acct.id}`)).sms_route, null, 'nothing changed');
  const ok = await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { sms_route: 'main' } });
  assert.equal(ok.sms_route, 'main');
  assert.equal((await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { sms_route: null } })).sms_route, null);
  await finish();
});

test('the default route is a setting, never the first route by name', { timeout: 60000 }, async (t) => {
  const { k, smsc, key, acct, finish } = await setup(t, { routeName: 'b-main' });
  const other = await startSmsc();
  t.after(() => other.close());
  await k.putRoute('a-other', other.routeConfig());
  await other.waitFor(() => other.boundSessions().length >= 1, 'the second route to bind');
  // Two routes, no default_route: not sent anywhere by guess.
  const r = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'which route' } });
  expectCode(r, 422, 'no_route');
  assert.match(r.json.error.message, /default_route/);
  // The account's own route still works.
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { sms_route: 'b-main' } });
  const m = await k.send(key, { to: PHONE, text: 'own route' });
  await k.waitStatus(key, m.id, 'sent');
  assert.equal(smsc.submits.length, 1);
  assert.equal(other.submits.length, 0);
  await k.stopClean();

  // default_route names one: accounts without their own route use it.
  k.args = ['--default-route', 'b-main'];
  await k.restart();
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { sms_route: null } });
  await smsc.waitFor(() => smsc.boundSessions().length >= 1, 'b-main to bind again');
  const m2 = await k.send(key, { to: PHONE, text: 'default route' });
  await k.waitStatus(key, m2.id, 'sent');
  assert.equal(smsc.submits.length, 2);
  assert.equal(other.submits.length, 0, 'not the alphabetically first route');
  // The default route cannot be deleted from under it.
  expectCode(await k.request('DELETE', '/v1/routes/b-main'), 409, 'route_in_use');
  await k.stopClean();

  // A default_route that names no route: kaskad does not start.
  k.args = ['--default-route', 'missing'];
  await assert.rejects(k.restart(), /exited during start-up/);
  assert.equal(k.exit.code, 2);
  assert.match(k.stderr, /default_route: no route "missing"/);
  k.args = [];
  await k.restart();
  await finish();
});

test("an account's default sender is validated like a message's sender", async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const put = (sender) => k.request('PUT', '/v1/channels/sms', { key, body: { sender } });
  for (const bad of ['Магазин', 'TWELVE_CHARS', '', '+1234567890123456', 'a\tb', 42]) {
    const perMessage = await k.request('POST', '/v1/messages', { key, body: { to: PHONE, text: 'x', sender: bad } });
    const r = await put(bad);
    expectCode(r, 422, 'invalid_sender', 'sender');
    expectCode(perMessage, 422, 'invalid_sender', 'sender');
    assert.equal(r.json.error.message, perMessage.json.error.message, 'the same rule in the same words');
  }
  const ok = await put('Kaskad');
  assert.equal(ok.status, 200, ok.text);
  const m = await k.send(key, { to: PHONE, text: 'from the default sender' });
  await k.waitStatus(key, m.id, 'sent');
  assert.equal(smsc.submits[0].source_addr, 'Kaskad');
  await finish();
});

/** The SMSC sends an MO message (not a receipt) from phone; resolves with deliver_sm_resp's status. */
test('GET /v1/replies lists what people sent, to the account they answered', { timeout: 60000 }, async (t) => {
  const env = await setup(t);
  const { k, smsc, key } = env;
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  await sim.config({ whatsapp: { reach: 1, read: 0, deliver_ms: [20, 20] } });
  await pointChannelsAtSim(k, sim);
  const b = await k.createAccount();
  const [P1, P2, P3] = ['79161230001', '79161230002', '79161230003'];
  const ma = await k.send(key, { to: P1, text: 'A to P1' });
  const mb = await k.send(b.key, { to: P2, text: 'B to P2' });
  await k.waitStatus(key, ma.id, 'sent');
  await k.waitStatus(b.key, mb.id, 'sent');
  assert.equal(await sendMo(smsc, P1, 'Да, приду'), 0);
  assert.equal(await sendMo(smsc, `+${P2}`, 'Нет'), 0);
  assert.equal(await sendMo(smsc, P3, 'кто это?'), 0);
  const r = await sim.call('POST', '/whatsapp/inbound', { token: APPS.whatsapp.token, from: P2, text: 'Когда доставка?' });
  assert.equal(r.status, 200);

  const list = async (k2, q = '') => k.call('GET', `/v1/replies${q}`, { key: k2 }, 200);
  const ra = await list(key);
  assert.equal(ra.replies.length, 1, JSON.stringify(ra));
  assert.equal(ra.replies[0].channel, 'sms');
  assert.equal(ra.replies[0].from, P1);
  assert.equal(ra.replies[0].text, 'Да, приду');
  assert.equal(ra.replies[0].route, 'main');
  assert.equal(ra.replies[0].in_reply_to, ma.id);
  assert.ok(Date.parse(ra.replies[0].received_at) > 0);
  assert.equal(ra.next_cursor, null);

  const rb = await list(b.key);
  assert.deepEqual(rb.replies.map((x) => [x.channel, x.from, x.text]),
    [['whatsapp', P2, 'Когда доставка?'], ['sms', P2, 'Нет']], 'newest first, only B\'s');
  assert.equal((await list(b.key, '?channel=sms')).replies.length, 1);
  assert.equal((await list(b.key, '?channel=whatsapp')).replies[0].text, 'Когда доставка?');
  assert.equal((await list(b.key, `?from=%2B${P2}`)).replies.length, 2);
  assert.equal((await list(b.key, `?from=${P1}`)).replies.length, 0);
  const p1 = await list(b.key, '?limit=1');
  assert.equal(p1.replies.length, 1);
  assert.ok(p1.next_cursor);
  const p2 = await list(b.key, `?limit=1&cursor=${p1.next_cursor}`);
  assert.equal(p2.replies[0].channel, 'sms');
  assert.equal(p2.next_cursor, null);
  expectCode(await k.request('GET', '/v1/replies?channel=pigeon', { key }), 422, 'invalid_channel', 'channel');
  expectCode(await k.request('GET', '/v1/replies?limit=0', { key }), 422, 'invalid_limit', 'limit');
  expectCode(await k.request('GET', '/v1/replies?from=abc', { key }), 422, 'invalid_phone', 'from');
  await env.finish();
});

test('a second kaskad on the same data folder refuses to start', async (t) => {
  const { k, key, finish } = await setup(t);
  const second = new Kaskad({ dataDir: k.dataDir, adminKey: k.adminKey });
  t.after(() => second.cleanup());
  await assert.rejects(second.start(), /exited during start-up/);
  assert.equal(second.exit.code, 1);
  assert.match(second.stderr, new RegExp(`data folder ${k.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another kaskad \\(pid ${k.proc.pid}\\)`));
  // The first one never noticed.
  await k.send(key, { to: PHONE, text: 'still serving' });
  await k.stopClean();
  // Once it has stopped, the folder is free again (no stale lock).
  await second.start();
  await second.stopClean();
  await k.restart();
  await finish();
});

test('send_at more than a year ahead or not a time is refused, a template with a text too is refused, never sent as if absent; other unknown fields are ignored', async (t) => {
  const { k, smsc, key, finish } = await setup(t);
  const post = (body) => k.request('POST', '/v1/messages', { key, body });
  let r = await post({ to: PHONE, text: 'later', send_at: '2030-01-01T10:00:00Z' });
  expectCode(r, 422, 'send_at_too_far', 'send_at');
  assert.match(r.json.error.message, /send_at/);
  r = await post({ to: PHONE, text: 'x', template: { name: 'otp', params: ['1'] } });
  expectCode(r, 422, 'invalid_text', 'text');
  assert.match(r.json.error.message, /text or template/);
  const b = await k.request('POST', '/v1/messages/batch', {
    key, body: { messages: [{ to: PHONE, text: 'batch later', send_at: 1893492000 }, { to: PHONE, text: 'batch now' }] },
  });
  assert.equal(b.status, 202, b.text);
  assert.equal(b.json.results[0].error.code, 'invalid_send_at');
  assert.equal(b.json.results[0].error.field, 'send_at');
  const ok = await k.send(key, { to: PHONE, text: 'now', send_at: null, frobnicate: { a: 1 } });
  await k.waitStatus(key, b.json.results[1].id, 'sent');
  await k.waitStatus(key, ok.id, 'sent');
  assert.deepEqual(smsc.submits.map((s) => s.text).sort(), ['batch now', 'now']);
  await finish();
});

test('README and --help agree: every setting and default, every endpoint README names', async (t) => {
  const { k, key, finish } = await setup(t);
  const help = spawnSync(k.bin, ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  const defaults = new Map();
  for (const m of help.stdout.matchAll(/^\s+--([a-z0-9-]+)\s+KASKAD_\S+\s+.*\(default: (.*)\)$/gm)) {
    defaults.set(m[1].replace(/-/g, '_'), m[2]);
  }
  assert.ok(defaults.size >= 17, help.stdout);
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const settings = readme.slice(readme.indexOf('\n## Settings'), readme.indexOf('\n## ', readme.indexOf('\n## Settings') + 5));
  for (const [name, def] of defaults) {
    assert.ok(settings.includes(`\`${name}\``), `README's Settings section names ${name}`);
    const row = settings.match(new RegExp(`^\\| \`${name}\` \\| ([^|]*) \\|`, 'm'));
    if (!row) continue;
    const cell = row[1].trim();
    const v = /^`([^`]*)`$/.exec(cell);
    if (v) assert.equal(v[1], def, `README's default of ${name}`);
    else if (cell === 'none') assert.equal(def, 'none', `README's default of ${name}`);
  }
  for (const m of settings.matchAll(/^\| `([a-z_]+)` \|/gm)) {
    assert.ok(defaults.has(m[1]), `README's setting ${m[1]} is in --help`);
  }

  // Every endpoint README shows answers as that endpoint (perhaps "no such
  // thing" for a placeholder id), never "no such endpoint" or 405.
  const calls = new Set();
  for (const m of readme.matchAll(/`(GET|POST|PUT|PATCH|DELETE) (\/v1\/[^`\s]*)/g)) calls.add(`${m[1]} ${m[2]}`);
  for (const line of readme.split('\n')) {
    const c = /curl .*?(?:-X(POST|PUT|PATCH|DELETE)\s+)?['"]?http:\/\/127\.0\.0\.1:8080(\/v1\/[^\s'"]+)/.exec(line);
    if (c) calls.add(`${c[1] ?? (/ -d /.test(line) ? 'POST' : 'GET')} ${c[2]}`);
  }
  assert.ok(calls.size >= 15, [...calls].join('\n'));
  for (const call of calls) {
    const [method, raw] = call.split(' ');
    const p = raw.replace(/\{[^}]*\}/g, 'x1').replace(/…/g, 'x').replace(/\?$/, '');
    const body = ['POST', 'PUT', 'PATCH'].includes(method) ? {} : undefined;
    let r = await k.request(method, p, { key, body });
    if (r.status === 403) r = await k.request(method, p, { body });
    const what = `${call} -> ${r.status} ${r.text.slice(0, 200)}`;
    assert.notEqual(r.status, 405, what);
    assert.ok(!(r.status === 404 && /no such endpoint/.test(r.json?.error?.message ?? '')), what);
  }
  await finish();
});

test('an unknown key in the config file or a [route] section stops the start, naming file, line and key', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kaskad-cfg-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const conf = path.join(dir, 'kaskad.conf');
  const run = (text) => {
    fs.writeFileSync(conf, text);
    return spawnSync(kaskadBin(), ['--config', conf, '--data', path.join(dir, 'data'), '--http', '127.0.0.1:0'],
      { encoding: 'utf8', timeout: 20000 });
  };
  let r = run('log_level = info\n[route mts]\nhost = 127.0.0.1\nmax_tps = 200\n');
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`${conf.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: unknown key max_tps in \\[route mts\\]`));
  r = run('htp_timeout = 5s\n');
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /kaskad\.conf:1: unknown setting htp_timeout/);
});

test('store: an unknown kind of store, or a PostgreSQL that cannot be reached, stops the start', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kaskad-store-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = (store) => spawnSync(kaskadBin(),
    ['--data', path.join(dir, 'data'), '--http', '127.0.0.1:0', '--store', store],
    { encoding: 'utf8', timeout: 20000, env: { ...process.env, KASKAD_ADMIN_KEY: 'adm_store_test' } });
  let r = run('mysql://kaskad@127.0.0.1/kaskad');
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /unknown store mysql \(postgresql:\/\/\.\.\. or none for SQLite\)/);
  r = run('postgresql://nobody@127.0.0.1:1/none');
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cannot connect to PostgreSQL/);
  // nothing of SQLite's was made in the data folder
  assert.ok(!fs.existsSync(path.join(dir, 'data', 'kaskad.db')));
});
