// Abuse controls: key revocation, rate limits, suspension, registered
// senders, country allow-lists, the key checked before the body is read, the
// per-IP connection limit, retention and private data files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setup, Kaskad, freePort, sleep, tempDir, waitUntil } from './lib/harness.mjs';
import { Sim, pointChannelsAtSim } from './lib/sim.mjs';

async function expectError(r, status, code) {
  assert.equal(r.status, status, `${status} expected, got ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, code, r.text);
}

/* Sends raw bytes on a new connection; resolves with what came back before
   the connection closed (or the timeout passed) and whether it closed. */
function rawExchange(port, bytes, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    const timer = setTimeout(() => { sock.destroy(); resolve({ data, closed }); }, timeoutMs);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => { data += d.toString('latin1'); });
    sock.on('error', () => {});
    sock.on('close', () => { closed = true; clearTimeout(timer); resolve({ data, closed }); });
  });
}

test('a revoked key is refused at once while another key of the account works', async (t) => {
  const env = await setup(t);
  const { k, acct } = env;
  const second = await k.call('POST', `/v1/accounts/${acct.id}/keys`, { body: {} }, 201);
  const third = await k.call('POST', `/v1/accounts/${acct.id}/keys`, { body: {} }, 201);
  // The listing shows prefixes, never the keys or their hashes.
  const list = await k.call('GET', `/v1/accounts/${acct.id}/keys`, {}, 200);
  assert.equal(list.keys.length, 3);
  assert.ok(list.keys.every((x) => x.active === true && x.revoked_at === null && x.prefix.startsWith('kk_')));
  assert.ok(!JSON.stringify(list).includes(second.key), 'no key in the listing');
  // The operator revokes one: the very next request with it is refused.
  assert.equal((await k.request('GET', '/v1/account', { key: second.key })).status, 200);
  const del = await k.request('DELETE', `/v1/keys/${second.prefix}`);
  assert.equal(del.status, 204, del.text);
  await expectError(await k.request('GET', '/v1/account', { key: second.key }), 401, 'unauthorized');
  assert.equal((await k.request('GET', '/v1/account', { key: env.key })).status, 200);
  // An account key revokes its own account's key, not another account's.
  const other = await k.createAccount();
  await expectError(await k.request('DELETE', `/v1/keys/${other.key.slice(0, 11)}`, { key: env.key }), 404, 'not_found');
  assert.equal((await k.request('GET', '/v1/account', { key: other.key })).status, 200);
  assert.equal((await k.request('DELETE', `/v1/keys/${third.prefix}`, { key: env.key })).status, 204);
  await expectError(await k.request('GET', '/v1/account', { key: third.key }), 401, 'unauthorized');
  await expectError(await k.request('DELETE', `/v1/keys/${third.prefix}`), 404, 'not_found');
  const after = await k.call('GET', `/v1/accounts/${acct.id}/keys`, {}, 200);
  const revoked = after.keys.filter((x) => !x.active);
  assert.equal(revoked.length, 2);
  assert.ok(revoked.every((x) => typeof x.revoked_at === 'string'));
  // Revocation is stored: after a restart the keys stay refused.
  await k.stopClean();
  await k.start();
  await expectError(await k.request('GET', '/v1/account', { key: second.key }), 401, 'unauthorized');
  assert.equal((await k.request('GET', '/v1/account', { key: env.key })).status, 200);
  await env.finish();
});

test('a burst over rate_key gets 429 with Retry-After; another account is not affected', async (t) => {
  const env = await setup(t, { args: ['--rate_key', '5/s:5', '--rate_account', '0'] });
  const { k } = env;
  const other = await k.createAccount();
  const burst = await Promise.all(Array.from({ length: 20 }, () => k.request('GET', '/v1/account', { key: env.key })));
  const limited = burst.filter((r) => r.status === 429);
  assert.ok(burst.filter((r) => r.status === 200).length <= 6, 'at most the burst passes');
  assert.ok(limited.length >= 10, `${limited.length} answered 429`);
  for (const r of limited) {
    assert.equal(r.json.error.code, 'rate_limited');
    assert.ok(Number(r.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
  }
  for (let i = 0; i < 5; i++) assert.equal((await k.request('GET', '/v1/account', { key: other.key })).status, 200);
  // The bucket refills.
  await sleep(1200);
  assert.equal((await k.request('GET', '/v1/account', { key: env.key })).status, 200);
  const m = await k.metrics();
  assert.ok(m.get('kaskad_api_rate_limited_total') >= 10);
  await env.finish();
});

test('the account rate covers all its keys', async (t) => {
  const env = await setup(t, { args: ['--rate_key', '0', '--rate_account', '4/s:4'] });
  const { k, acct } = env;
  const second = await k.call('POST', `/v1/accounts/${acct.id}/keys`, { body: {} }, 201);
  const keys = [env.key, second.key];
  const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => k.request('GET', '/v1/account', { key: keys[i % 2] })));
  assert.ok(rs.filter((r) => r.status === 429).length >= 6);
  await env.finish();
});

test('a suspended account gets 403 and its queued SMS waits until it is lifted', async (t) => {
  const env = await setup(t);
  const { k, smsc, acct } = env;
  // A route with nothing behind it yet holds the message in kaskad's queue.
  const deadPort = await freePort();
  await k.putRoute('later', smsc.routeConfig({ port: deadPort }));
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { sms_route: 'later' } }, 200);
  const msg = await k.send(env.key, { to: '+79161110001', text: 'held while suspended', sender: 'KASKAD' });
  const susp = await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { suspended: true } }, 200);
  assert.equal(susp.suspended, true);
  assert.equal((await k.call('GET', `/v1/accounts/${acct.id}`, {}, 200)).suspended, true);
  await expectError(await k.request('GET', `/v1/messages/${msg.id}`, { key: env.key }), 403, 'account_suspended');
  await expectError(await k.request('POST', '/v1/messages', { key: env.key, body: { to: '+79161110002', text: 'x' } }),
    403, 'account_suspended');
  // Another account goes on.
  const other = await k.createAccount();
  await k.call('PATCH', `/v1/accounts/${other.id}`, { body: { sms_route: env.routeName } }, 200);
  await k.send(other.key, { to: '+79161110003', text: 'not held' });
  await smsc.waitFor(() => smsc.submits.some((s) => s.destination_addr === '79161110003'), 'the other account\'s SMS');
  // The route comes up: the suspended account's message is still not sent.
  await k.putRoute('later', smsc.routeConfig());
  await smsc.waitFor(() => smsc.boundSessions().length >= 2, 'the second route to bind');
  // The route's queue drains (the held message moves off it) and nothing
  // awaits an SMSC answer: anything the route was going to submit, the SMSC
  // has seen.
  await waitUntil(async () => {
    const m = await k.metrics();
    return m.get('kaskad_dispatch_queued{route="later"}') === 0 && m.get('kaskad_smpp_inflight{route="later"}') === 0;
  }, 'the route "later" to drain', 10000, 50);
  assert.ok(!smsc.submits.some((s) => s.destination_addr === '79161110001'), 'not submitted while suspended');
  // Lifted: it goes, and the key works again.
  const lifted = await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { suspended: false } }, 200);
  assert.equal(lifted.suspended, false);
  await smsc.waitFor(() => smsc.submits.some((s) => s.destination_addr === '79161110001'), 'the held SMS', 10000);
  const self = await k.call('GET', '/v1/account', { key: env.key }, 200);
  assert.equal(self.suspended, false);
  await expectError(await k.request('PATCH', `/v1/accounts/${acct.id}`, { body: { suspended: 'yes' } }), 422, 'invalid_suspended');
  await env.finish();
});

test('a suspended account\'s channel sends wait until it is lifted', { timeout: 60000 }, async (t) => {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const { k, acct } = env;
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  // Viber fails (500) until told otherwise: the attempt is retried with backoff.
  await sim.config({ viber: { reach: 1, read: 0, server_error: 1, deliver_ms: [20, 20] } });
  await pointChannelsAtSim(k, sim);
  const m = await k.send(env.key, { to: '+79161250001', text: 'viber while suspended', viber_id: 'vb-user-9',
    cascade: [{ channel: 'viber', wait: 'delivered', timeout: '60s' }, { channel: 'sms' }] });
  await waitUntil(async () => (await sim.requests('viber')).length >= 2, 'two failed Viber tries', 15000, 100);
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { suspended: true } }, 200);
  await sim.config({ viber: { reach: 1, read: 0, server_error: 0, deliver_ms: [20, 20] } });
  const before = (await sim.requests('viber')).length;
  // The suspension lasts longer than the next retry's backoff, so that a try
  // comes due while it holds.
  await sleep(5000);
  assert.equal((await sim.requests('viber')).length, before, 'no Viber request while suspended');
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { suspended: false } }, 200);
  const done = await k.waitStatus(env.key, m.id, 'delivered', 20000);
  assert.equal(done.channel, 'viber');
  // Finished: exactly one more request, the one after the suspension ended.
  await k.settled(env.key, [m.id]);
  assert.equal((await sim.requests('viber')).length, before + 1, 'one Viber request after the suspension');
  await env.finish();
});

test('a request without a key gets 401 before its body is read', async (t) => {
  const k = new Kaskad();
  t.after(() => k.cleanup());
  await k.start();
  const head = 'POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
    'Content-Length: 500000\r\n\r\n';
  const r = await rawExchange(k.port, head + '{"to":"+79161234567","text":"' + 'a'.repeat(1000), 5000);
  assert.match(r.data, /^HTTP\/1\.1 401/, `answered before the body: ${JSON.stringify(r.data.slice(0, 200))}`);
  assert.match(r.data, /unauthorized/);
  assert.ok(r.closed, 'the connection closes after the answer');
  // The same with a revoked-looking unknown key.
  const r2 = await rawExchange(k.port, head.replace('Host:', 'Authorization: Bearer kk_nope\r\nHost:') + 'x'.repeat(100), 5000);
  assert.match(r2.data, /^HTTP\/1\.1 401/);
  assert.ok(await k.healthy());
  await k.stopClean();
});

test('the per-IP connection limit refuses connections over it', { timeout: 30000 }, async (t) => {
  const k = new Kaskad({ args: ['--max_conns_per_ip', '4'] });
  t.after(() => k.cleanup());
  await k.start();
  const held = [];
  for (let i = 0; i < 4; i++) {
    const s = net.connect(k.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((res) => s.on('connect', res));
    held.push(s);
  }
  // kaskad has taken each held connection: a request on it is answered, or
  // the connection is closed (one over the limit).
  for (const s of held) {
    if (s.destroyed) continue;
    const seen = new Promise((res) => { s.once('data', res); s.once('close', res); });
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await seen;
  }
  const over = await rawExchange(k.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 3000);
  assert.ok(over.closed, 'the fifth connection is closed');
  assert.doesNotMatch(over.data, /200 OK/, 'and not served');
  // A held connection is still served, and once they close others are.
  const first = held[0];
  const answer = new Promise((res) => first.once('data', (d) => res(d.toString())));
  first.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(await answer, /^HTTP\/1\.1 200/);
  for (const s of held) s.destroy();
  await waitUntil(() => k.healthy(), 'a new connection to be served', 5000, 100);
  await k.stopClean();
});

test('senders must be registered and countries allowed', async (t) => {
  const env = await setup(t);
  const { k } = env;
  const acct = await k.createAccount(undefined, { senders: ['SHOP', '+79001234567'], countries: ['RU'] });
  assert.deepEqual(acct.senders, ['SHOP', '79001234567']);
  assert.deepEqual(acct.countries, ['RU']);
  await k.send(acct.key, { to: '+79161230001', text: 'ok', sender: 'SHOP' });
  await k.send(acct.key, { to: '+79161230002', text: 'ok', sender: '79001234567' });
  await k.send(acct.key, { to: '+79161230003', text: 'no sender: the route default' });
  const bad = await k.request('POST', '/v1/messages', { key: acct.key, body: { to: '+79161230004', text: 'x', sender: 'BANK' } });
  await expectError(bad, 422, 'sender_not_allowed');
  assert.equal(bad.json.error.field, 'sender');
  await expectError(await k.request('POST', '/v1/messages', { key: acct.key, body: { to: '+79161230005', text: 'x', sender: 'shop' } }),
    422, 'sender_not_allowed');
  await expectError(await k.request('POST', '/v1/messages', { key: acct.key, body: { to: '+79161230006', text: 'x', sender: '79009999999' } }),
    422, 'sender_not_allowed');
  // Kazakhstan (+7 7..) is not Russia, though both are +7.
  await expectError(await k.request('POST', '/v1/messages', { key: acct.key, body: { to: '+77011234567', text: 'x' } }),
    422, 'country_not_allowed');
  await expectError(await k.request('POST', '/v1/messages', { key: acct.key, body: { to: '+4915112345678', text: 'x' } }),
    422, 'country_not_allowed');
  // In a batch each message is judged on its own.
  const batch = await k.call('POST', '/v1/messages/batch', { key: acct.key, body: { messages: [
    { to: '+79161230007', text: 'a', sender: 'SHOP' },
    { to: '+79161230008', text: 'b', sender: 'EVIL' },
    { to: '+380501234567', text: 'c' },
  ] } }, 202);
  assert.equal(batch.accepted, 1);
  assert.equal(batch.results[1].error.code, 'sender_not_allowed');
  assert.equal(batch.results[2].error.code, 'country_not_allowed');
  // The operator changes the lists; empty countries means all.
  const patched = await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { senders: ['BANK'], countries: [] } }, 200);
  assert.deepEqual(patched.senders, ['BANK']);
  await k.send(acct.key, { to: '+4915112345678', text: 'x', sender: 'BANK' });
  await expectError(await k.request('POST', '/v1/messages', { key: acct.key, body: { to: '+79161230009', text: 'x', sender: 'SHOP' } }),
    422, 'sender_not_allowed');
  await expectError(await k.request('PATCH', `/v1/accounts/${acct.id}`, { body: { senders: ['TOO-LONG-NAME-1'] } }), 422, 'invalid_senders');
  await expectError(await k.request('PATCH', `/v1/accounts/${acct.id}`, { body: { countries: ['russia'] } }), 422, 'invalid_countries');
  await env.finish();
});

test('retention deletes finished messages and keeps unfinished ones', async (t) => {
  const env = await setup(t, { smsc: { autoReceipt: 'DELIVRD' }, args: ['--retention', '2s'] });
  const { k, smsc } = env;
  const done = await k.send(env.key, { to: '+79161240001', text: 'finished', idempotency_key: 'ret-1' });
  await k.waitStatus(env.key, done.id, 'delivered');
  // Another account's message waits on a route with nothing behind it (the
  // first account keeps its route: with two, neither is a default).
  await k.call('PATCH', `/v1/accounts/${env.acct.id}`, { body: { sms_route: env.routeName } }, 200);
  await k.putRoute('later', smsc.routeConfig({ port: await freePort() }));
  const waiting = await k.createAccount();
  await k.call('PATCH', `/v1/accounts/${waiting.id}`, { body: { sms_route: 'later' } }, 200);
  const open = await k.send(waiting.key, { to: '+79161240002', text: 'unfinished' });
  await waitUntil(async () => (await k.request('GET', `/v1/messages/${done.id}`, { key: env.key })).status === 404,
    'the finished message to be deleted', 10000, 200);
  assert.equal((await k.request('GET', `/v1/messages/${open.id}`, { key: waiting.key })).status, 200);
  const m = await k.metrics();
  assert.ok(m.get('kaskad_retention_deleted_total') >= 1);
  // Its idempotency key went with it: the same key makes a new message.
  const again = await k.send(env.key, { to: '+79161240001', text: 'finished', idempotency_key: 'ret-1' });
  assert.notEqual(again.id, done.id);
  await env.finish();
});

test('the data folder is 0700 and the database files 0600', async (t) => {
  const dir = await tempDir();
  await fs.chmod(dir, 0o755);
  await fs.writeFile(path.join(dir, 'old.key'), 'secret\n', { mode: 0o644 });
  const k = new Kaskad({ dataDir: dir });
  t.after(async () => { await k.cleanup(); await fs.rm(dir, { recursive: true, force: true }); });
  await k.start();
  const acct = await k.createAccount();
  assert.ok(acct.key);
  const mode = async (f) => (await fs.stat(path.join(dir, f))).mode & 0o777;
  assert.equal(await mode('.'), 0o700, 'data folder');
  // On PostgreSQL the database is the server's: the folder holds the lock and the keys.
  const files = process.env.KASKAD_E2E_STORE ? ['old.key']
    : ['kaskad.db', 'kaskad.db-wal', 'kaskad.db-shm', 'old.key'];
  for (const f of files) assert.equal(await mode(f), 0o600, f);
  await k.stopClean();
});
