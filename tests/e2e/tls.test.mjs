// HTTPS and the separate operator listener: with tls_cert and tls_key the
// listeners speak only TLS (a self-signed certificate made here with the
// openssl command); one of the two alone stops kaskad at start with a clear
// message. With admin_http the operator API and /metrics are served only
// there, and account endpoints only on the public listener.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Kaskad, freePort, kaskadBin, sleep, tempDir } from './lib/harness.mjs';
import { startSmsc } from './lib/smsc.mjs';

/** A self-signed certificate for 127.0.0.1 in dir: { cert, key } paths. */
function selfSigned(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
    '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
  { stdio: 'ignore' });
  return { cert, key };
}

/** One HTTPS request trusting only ca: { status, json }. */
function httpsRequest(port, ca, method, p, { key, body } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = {};
    if (key) headers.authorization = `Bearer ${key}`;
    if (payload) headers['content-type'] = 'application/json';
    const req = https.request({ host: '127.0.0.1', port, method, path: p, ca, headers, timeout: 10000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Runs kaskad with args until it exits (at most 20 s): { code, stderr }. */
function runToExit(args) {
  return new Promise((resolve) => {
    const p = spawn(kaskadBin(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 20000);
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, stderr }); });
  });
}

test('HTTPS: a message goes over TLS, plain HTTP gets no answer', { timeout: 60000 }, async (t) => {
  const dir = await tempDir('kaskad-tls-');
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const { cert, key } = selfSigned(dir);
  const ca = await fs.readFile(cert);
  const port = await freePort();
  const adminKey = `adm_${randomBytes(12).toString('hex')}`;
  const data = path.join(dir, 'data');
  const proc = spawn(kaskadBin(), ['--data', data, '--http', `127.0.0.1:${port}`,
    '--tls_cert', cert, '--tls_key', key], {
    env: { ...process.env, KASKAD_ADMIN_KEY: adminKey }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  t.after(() => proc.kill('SIGKILL'));
  for (let i = 0; ; i++) {
    try {
      if ((await httpsRequest(port, ca, 'GET', '/healthz')).status === 200) break;
    } catch { /* not yet */ }
    assert.ok(i < 400, `kaskad not healthy over HTTPS:\n${stderr}`);
    await sleep(50);
  }
  assert.match(stderr, /listening on https:\/\/127\.0\.0\.1:\d+ \(TLS\)/);
  const smsc = await startSmsc();
  t.after(() => smsc.close());
  const route = await httpsRequest(port, ca, 'PUT', '/v1/routes/main', { key: adminKey, body: smsc.routeConfig() });
  assert.ok([200, 201].includes(route.status), route.text);

  const acc = await httpsRequest(port, ca, 'POST', '/v1/accounts', { key: adminKey, body: { name: 'tls', senders: ['KASKAD'] } });
  assert.equal(acc.status, 201, acc.text);
  const k = await httpsRequest(port, ca, 'POST', `/v1/accounts/${acc.json.id}/keys`, { key: adminKey, body: {} });
  assert.equal(k.status, 201, k.text);
  const m = await httpsRequest(port, ca, 'POST', '/v1/messages', {
    key: k.json.key, body: { to: '79161234567', text: 'over TLS', sender: 'KASKAD' } });
  assert.equal(m.status, 202, m.text);
  for (let i = 0; ; i++) {
    const got = await httpsRequest(port, ca, 'GET', `/v1/messages/${m.json.id}`, { key: k.json.key });
    assert.equal(got.status, 200);
    if (got.json.status === 'sent') break;
    assert.ok(i < 200, `message not sent: ${got.text}`);
    await sleep(50);
  }
  assert.equal(smsc.submits.length, 1);

  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) }),
    'plain HTTP to the HTTPS listener gets no HTTP answer');

  proc.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  assert.doesNotMatch(stderr, /AddressSanitizer|runtime error:/);
});

test('HTTPS: a certificate without its key, or an unreadable one, stops kaskad at start', { timeout: 60000 }, async (t) => {
  const dir = await tempDir('kaskad-tls-');
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const { cert, key } = selfSigned(dir);
  const port = await freePort();
  const base = ['--data', path.join(dir, 'data'), '--http', `127.0.0.1:${port}`];

  const onlyCert = await runToExit([...base, '--tls_cert', cert]);
  assert.notEqual(onlyCert.code, 0);
  assert.match(onlyCert.stderr, /tls_cert and tls_key must be given together/);

  const onlyKey = await runToExit([...base, '--tls_key', key]);
  assert.notEqual(onlyKey.code, 0);
  assert.match(onlyKey.stderr, /tls_cert and tls_key must be given together/);

  const missing = await runToExit([...base, '--tls_cert', path.join(dir, 'nope.pem'), '--tls_key', key]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /tls_cert: cannot read .*nope\.pem/);

  const swapped = await runToExit([...base, '--tls_cert', cert, '--tls_key', cert]);
  assert.notEqual(swapped.code, 0);
  assert.match(swapped.stderr, /tls_key: .* no unencrypted PEM private key/);
});

test('admin_http: the operator API and /metrics only on the admin listener', { timeout: 60000 }, async (t) => {
  const adminPort = await freePort();
  const k = new Kaskad({ args: ['--admin_http', `127.0.0.1:${adminPort}`] });
  const smsc = await startSmsc();
  t.after(async () => { await k.cleanup(); await smsc.close(); });
  await k.start();
  const admin = new Kaskad({ adminKey: k.adminKey });
  admin.url = `http://127.0.0.1:${adminPort}`;
  await admin.putRoute('main', smsc.routeConfig());

  const pub = await k.request('POST', '/v1/accounts', { body: { name: 'nope' } });
  assert.equal(pub.status, 404, 'the operator API is absent on the public listener');
  assert.equal(pub.json.error.code, 'not_found');
  assert.equal((await k.request('GET', '/metrics')).status, 404);
  assert.equal((await k.request('GET', '/v1/routes')).status, 404);
  assert.equal((await k.request('PUT', '/v1/prices', { body: { prices: { sms: 1 } } })).status, 404);

  const acc = await admin.call('POST', '/v1/accounts', { body: { name: 'split' } }, 201);
  const key = (await admin.call('POST', `/v1/accounts/${acc.id}/keys`, { body: {} }, 201)).key;
  const m = await admin.metrics();
  assert.ok(m.has('kaskad_api_messages_accepted_total'));
  assert.equal((await admin.request('GET', '/healthz', { key: null })).status, 200);

  const sent = await k.request('POST', '/v1/messages', { key, body: { to: '79161234567', text: 'public' } });
  assert.equal(sent.status, 202, sent.text);
  assert.equal((await admin.request('POST', '/v1/messages', { key, body: { to: '79161234567', text: 'x' } })).status, 404,
    'account keys are refused on the admin listener');
  assert.equal((await admin.request('POST', '/v1/hooks/vk/0', { key: null, body: {} })).status, 404,
    'provider hooks are not on the admin listener');
  assert.equal((await k.request('GET', '/v1/account', { key })).status, 200);
  await k.stopClean();
});

test('without admin_http the operator API stays on the one listener', { timeout: 60000 }, async (t) => {
  const k = new Kaskad();
  t.after(() => k.cleanup());
  await k.start();
  await k.createAccount();
  assert.equal((await k.request('GET', '/metrics')).status, 200);
  await k.stopClean();
});
