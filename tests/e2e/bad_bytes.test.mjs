// Bytes that are not UTF-8, or text cut inside a character, never crash
// kaskad: paths, query values and headers that are not UTF-8 get 400
// invalid_encoding, every answer is JSON that parses, an idempotency key
// that would not fit its field is refused, a stored row cut inside a
// character is still shown, and 405 answers name the allowed methods.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Kaskad } from './lib/harness.mjs';

/** Sends bytes as they are and reads the answer: { status, headers, text, json }. */
function raw(port, bytes, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => { s.destroy(); reject(new Error('no answer')); }, timeoutMs);
    s.on('connect', () => s.write(bytes));
    s.on('data', (d) => chunks.push(d));
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    s.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(all);
      if (!m) return reject(new Error(`no HTTP answer: ${JSON.stringify(all.slice(0, 200))}`));
      const cut = all.indexOf('\r\n\r\n');
      const headers = all.slice(0, cut);
      const text = Buffer.from(all.slice(cut + 4), 'latin1').toString('utf8');
      let json = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      resolve({ status: Number(m[1]), headers, text, json });
    });
  });
}

/** One request of raw bytes on its own connection. */
function rawRequest(k, method, target, headers = [], body = null) {
  const head = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${k.port}`, 'Connection: close',
    ...headers];
  if (body !== null) head.push(`Content-Length: ${Buffer.byteLength(body)}`, 'Content-Type: application/json');
  const parts = [Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1')];
  if (body !== null) parts.push(Buffer.isBuffer(body) ? body : Buffer.from(body));
  return raw(k.port, Buffer.concat(parts));
}

const auth = (key) => (key ? [`Authorization: Bearer ${key}`] : []);

async function started(t) {
  const k = new Kaskad();
  t.after(async () => {
    if (t.passed === false) for (const l of k.allStderr.split('\n').slice(-40)) t.diagnostic(l);
    await k.cleanup();
  });
  await k.start();
  const acct = await k.createAccount();
  return { k, key: acct.key, acct };
}

async function stillHealthy(k) {
  assert.ok(k.running(), `kaskad exited: ${JSON.stringify(k.exit)}\n${k.tail()}`);
  assert.equal(await k.healthy(), true);
  k.checkSanitizer();
}

// A message on a channel that needs no route (it is stored and shown).
const storable = (extra = {}) => ({ email: 'a@example.com', text: 'hi', cascade: [{ channel: 'email' }], ...extra });

test('paths and queries that are not UTF-8 get 400, with and without a key', { timeout: 60000 }, async (t) => {
  const { k, key } = await started(t);
  const cut = `/v1/messages/${'%D1%8F'.repeat(60)}%D1`;
  const inputs = [
    ['GET', '/%ff'], ['GET', '/v1/messages/%ff'], ['GET', '/v1/messages?status=%ff'],
    ['GET', '/v1/messages?%ff=1'], ['GET', '/v1/channels/%ff'], ['GET', '/v1/cascades/%ff'],
    ['DELETE', '/v1/messages/%ff'], ['PUT', '/v1/channels/%ff'], ['GET', cut],
    ['POST', '/v1/hooks/%ff/default'],
  ];
  for (const k2 of [null, key]) {
    for (const [method, target] of inputs) {
      const r = await rawRequest(k, method, target, auth(k2));
      assert.equal(r.status, 400, `${method} ${target}: ${r.status} ${r.text}`);
      assert.equal(r.json?.error?.code, 'invalid_encoding', `${method} ${target}: ${r.text}`);
    }
  }
  await stillHealthy(k);
  await k.stopClean();
});

test('a header that is not UTF-8 gets 400', { timeout: 60000 }, async (t) => {
  const { k, key } = await started(t);
  for (const h of ['X-Note: caf\xe9', 'Idempotency-Key: \xff\xfe', 'Authorization: Bearer \xff']) {
    const r = await rawRequest(k, 'GET', '/v1/messages', [...auth(key), h]);
    assert.equal(r.status, 400, `${h}: ${r.text}`);
    assert.equal(r.json?.error?.code, 'invalid_encoding');
  }
  // The same header in UTF-8 passes.
  const ok = await rawRequest(k, 'GET', '/v1/messages', [...auth(key), Buffer.from('X-Note: café').toString('latin1')]);
  assert.equal(ok.status, 200, ok.text);
  await stillHealthy(k);
  await k.stopClean();
});

test('text cut inside a Cyrillic character answers JSON', { timeout: 60000 }, async (t) => {
  const { k, key } = await started(t);
  // Echoed into a 256-byte message: one of each pair is cut inside a letter.
  const bodies = [
    [{ to: 'я'.repeat(200), text: 'hi' }, 'invalid_phone'],
    [{ to: 'x' + 'я'.repeat(200), text: 'hi' }, 'invalid_phone'],
    [{ to: '79161234567', text: 'hi', cascade: 'я'.repeat(200) }, 'unknown_cascade'],
    [{ to: '79161234567', text: 'hi', cascade: 'x' + 'я'.repeat(200) }, 'unknown_cascade'],
  ];
  for (const [body, code] of bodies) {
    const r = await k.request('POST', '/v1/messages', { key, body });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json?.error?.code, code);
  }
  const batch = await k.request('POST', '/v1/messages/batch', { key, body: { messages: bodies.map((b) => b[0]) } });
  assert.equal(batch.status, 422, batch.text);
  assert.equal(batch.json.results.length, 4);
  for (const r of batch.json.results) assert.ok(r.error.message.length > 0);
  const long = await k.request('GET', `/v1/messages/${encodeURIComponent('я'.repeat(63))}`, { key });
  assert.equal(long.status, 404, long.text);
  await stillHealthy(k);
  await k.stopClean();
});

test('an idempotency key that is not printable ASCII, or too long, is refused with 422', { timeout: 60000 }, async (t) => {
  const { k, key } = await started(t);
  const poison = 'я'.repeat(64);   // 128 bytes
  const r = await k.request('POST', '/v1/messages', { key, body: storable({ idempotency_key: poison }) });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'invalid_idempotency_key');
  assert.equal(r.json.error.field, 'idempotency_key');
  const long = await k.request('POST', '/v1/messages', { key, body: storable({ idempotency_key: 'k'.repeat(129) }) });
  assert.equal(long.status, 422, long.text);
  // In the header (as UTF-8 bytes): refused too.
  const h = await rawRequest(k, 'POST', '/v1/messages',
    [...auth(key), `Idempotency-Key: ${Buffer.from(poison).toString('latin1')}`], JSON.stringify(storable()));
  assert.equal(h.status, 422, h.text);
  assert.equal(h.json.error.code, 'invalid_idempotency_key');
  // 128 printable ASCII characters are a key; a repeat finds the first message.
  const max = 'k'.repeat(127) + '~';
  const a = await k.call('POST', '/v1/messages', { key, body: storable({ idempotency_key: max }) });
  const b = await k.call('POST', '/v1/messages', { key, body: storable({ idempotency_key: max }) });
  assert.equal(b.id, a.id);
  const got = await k.call('GET', `/v1/messages/${a.id}`, { key });
  assert.equal(got.idempotency_key, max);
  await stillHealthy(k);
  await k.stopClean();
});

test('405 answers carry Allow', { timeout: 60000 }, async (t) => {
  const { k, key, acct } = await started(t);
  const cases = [
    ['PUT', '/v1/messages', key, 'GET, POST'],
    ['PUT', '/v1/messages/msg_x', key, 'GET, DELETE'],
    ['GET', '/v1/messages/batch', key, 'POST'],
    ['POST', '/v1/account', key, 'GET'],
    ['POST', '/v1/cascades', key, 'GET'],
    ['POST', '/v1/cascades/otp', key, 'GET, PUT, DELETE'],
    ['DELETE', '/v1/prices', key, 'GET, PUT'],
    ['POST', '/v1/channels/vk', key, 'GET, PUT, DELETE'],
    ['POST', '/v1/campaigns/spring/report', key, 'GET'],
    ['GET', '/v1/accounts', undefined, 'POST'],
    ['POST', `/v1/accounts/${acct.id}`, undefined, 'GET, PATCH'],
    ['POST', '/v1/routes', undefined, 'GET'],
    ['POST', '/v1/routes/main', undefined, 'GET, PUT, DELETE'],
    ['PUT', '/v1/hooks/vk/default', null, 'GET, POST'],
  ];
  for (const [method, p, k2, allow] of cases) {
    const r = await k.request(method, p, { key: k2 });
    assert.equal(r.status, 405, `${method} ${p}: ${r.status} ${r.text}`);
    assert.equal(r.headers.get('allow'), allow, `${method} ${p}`);
    assert.equal(r.json.error.code, 'method_not_allowed');
  }
  await stillHealthy(k);
  await k.stopClean();
});

// A database written by an older kaskad (or by hand) may hold a key longer
// than its field and bytes that are not UTF-8; reading it must not crash.
// SQLite keeps whatever bytes a row is given; PostgreSQL refuses text that is
// not UTF-8 (the database's encoding), so such a row cannot exist there.
test('a stored row cut inside a character, or not UTF-8, is still shown', {
  timeout: 60000,
  skip: process.env.KASKAD_E2E_STORE && 'PostgreSQL stores no text that is not UTF-8',
}, async (t) => {
  // tools/deps.sh installs the sqlite3 shell; without it this test fails.
  execFileSync('sqlite3', ['-version'], { stdio: 'ignore' });
  const { k, key } = await started(t);
  const m = await k.call('POST', '/v1/messages', { key, body: storable() });
  await k.stopClean();
  const db = path.join(k.dataDir, 'kaskad.db');
  const longKey = Buffer.from('a' + 'я'.repeat(64)).toString('hex');   // 129 bytes
  execFileSync('sqlite3', [db, `UPDATE messages SET idem_key = CAST(X'${longKey}' AS TEXT), `
    + `sender = CAST(X'41D1' AS TEXT) WHERE public_id = '${m.id}';`
    + `UPDATE attempts SET error = CAST(X'ff00fe' AS TEXT) WHERE message_id = `
    + `(SELECT id FROM messages WHERE public_id = '${m.id}');`]);
  for (let run = 0; run < 2; run++) {
    await k.restart();
    for (let i = 0; i < 2; i++) {
      const r = await k.request('GET', `/v1/messages/${m.id}`, { key });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.idempotency_key, 'a' + 'я'.repeat(63));
      assert.equal(r.json.sender, 'A\uFFFD');
    }
    const list = await k.call('GET', '/v1/messages', { key });
    assert.equal(list.messages.length, 1);
    await stillHealthy(k);
    await k.stopClean();
  }
});
