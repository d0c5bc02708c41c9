// Store faults: while another process holds the database (sqlite3 with
// BEGIN EXCLUSIVE) or commits fail with an I/O error (a hook of the test
// build), new messages get 503 store_unavailable within a bounded time, the
// metrics count it, and a send the provider accepted meanwhile is stored
// once the store works again: sent once, its attempt "sent".
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { setup, waitUntil } from './lib/harness.mjs';

const PHONE = '79161234567';
const BOUND_MS = 10000;   // a stalled store answered in about 1 s; a hang is minutes

/** Holds the database's write lock with the sqlite3 command until release(). */
async function lockDb(t, dbPath) {
  const p = spawn('sqlite3', [dbPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((r) => p.on('exit', r));
  t.after(() => p.kill('SIGKILL'));
  p.stdin.write(".timeout 10000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n");
  await waitUntil(() => out.includes('locked'), `sqlite3 to lock the database (${out})`, 15000);
  return {
    async release() {
      p.stdin.end('COMMIT;\n');
      await exited;
    },
  };
}

/** A stand-in Viber that holds the first send until answer() is called. */
async function heldViber(t) {
  const sends = [];
  let held = null;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (!req.url.includes('send_message')) {
        res.end(JSON.stringify({ status: 0, status_message: 'ok' }));
        return;
      }
      sends.push(Buffer.concat(chunks).toString());
      if (sends.length === 1) held = res;
      else res.end(JSON.stringify({ status: 0, status_message: 'ok', message_token: 900 + sends.length }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => { held?.destroy(); server.close(); });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    sends,
    answer() { held.end(JSON.stringify({ status: 0, status_message: 'ok', message_token: 901 })); },
  };
}

/**
 * Points kaskad's Viber at a held stand-in, sends a message whose first step
 * is Viber, and waits until its request arrives (held). Returns { viber, m }.
 */
async function sendHeldByViber(t, k, key, text, viberId) {
  const viber = await heldViber(t);
  await k.call('PUT', '/v1/channels/viber', { body: { base_url: viber.url, token: 'held-viber-token-1', sender: 'Kaskad' } }, 200);
  const m = await k.send(key, {
    to: PHONE, text, viber_id: viberId,
    cascade: [{ channel: 'viber', wait: 'delivered', timeout: '60s' }, { channel: 'sms' }],
  });
  await waitUntil(() => viber.sends.length === 1, 'the Viber request to arrive', 10000);
  return { viber, m };
}

async function metric(k, series) {
  return (await k.metrics()).get(series);
}

/** POST /v1/messages timed: { r, ms }. */
async function timedSend(k, key, body) {
  const t0 = Date.now();
  const r = await k.request('POST', '/v1/messages', { key, body, timeoutMs: 60000 });
  return { r, ms: Date.now() - t0 };
}

test('a locked database: 503 within a bounded time, counted, and the same POST succeeds after', { timeout: 90000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  const lock = await lockDb(t, path.join(k.dataDir, 'kaskad.db'));
  const body = { to: PHONE, text: 'while locked', idempotency_key: 'locked-1' };

  const first = await timedSend(k, key, body);
  assert.equal(first.r.status, 503, first.r.text);
  assert.equal(first.r.json.error.code, 'store_unavailable');
  assert.ok(first.ms < BOUND_MS, `answered in ${first.ms} ms`);
  const again = await timedSend(k, key, body);
  assert.equal(again.r.status, 503);
  assert.ok(again.ms < BOUND_MS, `answered in ${again.ms} ms`);

  assert.ok(await metric(k, 'kaskad_store_errors_total{kind="busy"}') >= 1);
  assert.equal(await metric(k, 'kaskad_store_degraded'), 1);
  assert.equal((await k.request('GET', '/healthz', { key: null })).status, 503);

  await lock.release();
  const ok = await waitUntil(async () => {
    const r = await k.request('POST', '/v1/messages', { key, body });
    return r.status === 202 ? r : null;
  }, 'the POST to succeed once the lock is gone', BOUND_MS, 100);
  assert.equal(ok.json.status, 'accepted');
  assert.equal(await metric(k, 'kaskad_store_degraded'), 0);
  assert.equal((await k.request('GET', '/healthz', { key: null })).status, 200);
  await k.waitStatus(key, ok.json.id, 'sent');
  await finish();
});

test('a send accepted while the database is locked is stored once the lock goes, sent once', { timeout: 90000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t);
  const { viber, m } = await sendHeldByViber(t, k, key, 'accepted while locked', 'vb-1');
  const lock = await lockDb(t, path.join(k.dataDir, 'kaskad.db'));
  viber.answer();
  await waitUntil(async () => (await metric(k, 'kaskad_store_retrying')) >= 1,
    'the result to wait for the store', BOUND_MS, 50);
  const during = await timedSend(k, key, { to: PHONE, text: 'meanwhile' });
  assert.equal(during.r.status, 503, during.r.text);
  assert.ok(during.ms < BOUND_MS, `answered in ${during.ms} ms`);
  // A few more tries while locked: each one is a commit that failed as busy.
  const busy = await metric(k, 'kaskad_store_errors_total{kind="busy"}');
  await waitUntil(async () => (await metric(k, 'kaskad_store_errors_total{kind="busy"}')) >= busy + 2,
    'two more tries while locked', BOUND_MS, 50);
  assert.notEqual((await k.message(key, m.id)).attempts[0].status, 'sent', 'nothing is stored while locked');

  await lock.release();
  const done = await k.waitStatus(key, m.id, 'sent', 15000);
  assert.equal(done.attempts[0].channel, 'viber');
  assert.equal(done.attempts[0].status, 'sent');
  assert.equal(done.attempts[0].provider_id, '901');
  // The step waits for a delivery that never comes, so the message does not
  // finish: once the store has nothing waiting, stop kaskad; after that it
  // cannot ask anyone again, and what it asked is final.
  await k.settled(key);
  assert.equal(await metric(k, 'kaskad_store_retrying'), 0);
  await finish();
  assert.equal(viber.sends.length, 1, 'Viber was asked once');
  assert.equal(smsc.submits.length, 0);
});

test('I/O errors on commit (test hook): 503 and counted; a result of a send is kept until they stop', { timeout: 90000 }, async (t) => {
  // The test build's hook: while this file exists every commit fails as with EIO.
  const faultDir = await fs.mkdtemp('/tmp/kaskad-ioerr-');
  t.after(() => fs.rm(faultDir, { recursive: true, force: true }));
  const flag = path.join(faultDir, 'on');
  process.env.KASKAD_TEST_STORE_IOERR = flag;   // the daemon inherits the environment
  t.after(() => { delete process.env.KASKAD_TEST_STORE_IOERR; });
  const { k, key, smsc, finish } = await setup(t);
  const { viber, m } = await sendHeldByViber(t, k, key, 'accepted during I/O errors', 'vb-2');
  await fs.writeFile(flag, '');
  viber.answer();
  await waitUntil(async () => (await metric(k, 'kaskad_store_retrying')) >= 1,
    'the result to wait for the store', BOUND_MS, 50);
  const during = await timedSend(k, key, { to: PHONE, text: 'meanwhile' });
  assert.equal(during.r.status, 503, during.r.text);
  assert.equal(during.r.json.error.code, 'store_unavailable');
  assert.ok(during.ms < BOUND_MS);
  assert.ok(await metric(k, 'kaskad_store_errors_total{kind="io"}') >= 1);

  await fs.rm(flag);
  const done = await k.waitStatus(key, m.id, 'sent', 15000);
  assert.equal(done.attempts[0].status, 'sent');
  // As above: settled, then stopped, then nothing more can be asked.
  await k.settled(key);
  await finish();
  assert.equal(viber.sends.length, 1, 'Viber was asked once');
  assert.equal(smsc.submits.length, 0);
});

test('SIGTERM while the database stays locked: kaskad stops within its shutdown_timeout, no hang', { timeout: 90000 }, async (t) => {
  const { k, key } = await setup(t, { args: ['--shutdown_timeout', '2s'] });
  const { viber } = await sendHeldByViber(t, k, key, 'stopping while locked', 'vb-3');
  await lockDb(t, path.join(k.dataDir, 'kaskad.db'));
  viber.answer();
  await waitUntil(async () => (await metric(k, 'kaskad_store_retrying')) >= 1,
    'the result to wait for the store', BOUND_MS, 50);
  const t0 = Date.now();
  const r = await k.stop('SIGTERM', 60000);
  const ms = Date.now() - t0;
  k.checkSanitizer();
  assert.equal(r.signal, null, `exited by itself (${JSON.stringify(r)}):\n${k.tail()}`);
  assert.ok(ms < 15000, `stopped in ${ms} ms`);
  assert.match(k.stderr, /giving up on writes the database refuses/);
});
